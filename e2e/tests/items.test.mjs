// (c) The item browser: filters by type and by text, keyset pages, and the item page, which
// shows catalog text as text and fetches the third-party preview only when asked.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { PREVIEW_HOST, columnTexts, env, fixture, launchBrowser, openPage, signIn, url } from '../lib/browser.mjs';

const catalog = readFileSync(fixture('catalog.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
const ofType = (type) => catalog.filter((item) => item.item_type === type);
const markup = catalog.find((item) => item.text?.description?.includes('<a href='));
// The manager's item browser opens with a selection column (bulk actions), then id, type, title.
const COL = { id: 2, type: 3, title: 4 };

describe('the item browser', () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('filters by type and by text search', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.project}`));
      await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Items' }).click();
      await page.waitForURL(url(`/p/${env.project}/items`));

      const filters = page.getByRole('search');
      await filters.getByLabel('Type').selectOption('episode');
      await filters.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL((u) => u.searchParams.get('type') === 'episode');
      const types = await columnTexts(page, COL.type);
      assert.equal(types.length, ofType('episode').length, 'every episode is listed');
      assert.ok(types.every((t) => t === 'episode'), `only episodes: ${types}`);
      assert.deepEqual(
        (await columnTexts(page, COL.id)).sort(),
        ofType('episode').map((i) => i.id).sort(),
      );
      assert.equal(await filters.getByLabel('Type').inputValue(), 'episode', 'the filter stays selected');

      await filters.getByLabel('Type').selectOption('');
      const wanted = catalog.find((item) => item.title.startsWith('Zephyrine'));
      await filters.getByLabel('Search').fill(wanted.title.split(' ')[0].toLowerCase());
      await filters.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL((u) => u.searchParams.get('q') === 'zephyrine');
      assert.deepEqual(await columnTexts(page, COL.title), [wanted.title], 'the search is case-insensitive on the title');
      assert.deepEqual(await columnTexts(page, COL.id), [wanted.id]);

      await filters.getByLabel('Search').fill('no-such-title-anywhere');
      await filters.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL((u) => u.searchParams.get('q') === 'no-such-title-anywhere');
      assert.deepEqual(await columnTexts(page, 1), ['No items match.']);
      assert.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('"Next page" shows the following items, keeping the filters', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.project}/items`));
      const seen = new Set();
      const pages = [];
      for (;;) {
        const ids = await columnTexts(page, COL.id);
        assert.ok(ids.length > 0);
        for (const id of ids) {
          assert.ok(!seen.has(id), `${id} appears on two pages`);
          seen.add(id);
        }
        pages.push(ids.length);
        const next = page.getByRole('link', { name: 'Next page' });
        if ((await next.count()) === 0) break;
        const before = page.url();
        await next.click();
        await page.waitForURL((u) => u.href !== before && u.searchParams.has('after'));
        assert.equal(await page.getByRole('link', { name: 'First page' }).count(), 1);
      }
      assert.ok(pages.length >= 3, `~120 items take several pages: ${pages}`);
      assert.equal(seen.size, catalog.length, 'every imported item is on exactly one page');

      // With a filter, the next page keeps it.
      await page.goto(url(`/p/${env.project}/items?type=track`));
      const first = await columnTexts(page, COL.id);
      await page.getByRole('link', { name: 'Next page' }).click();
      await page.waitForURL((u) => u.searchParams.has('after'));
      assert.equal(new URL(page.url()).searchParams.get('type'), 'track');
      const second = await columnTexts(page, COL.id);
      assert.ok(second.length > 0);
      assert.ok(second.every((id) => !first.includes(id)), 'the second page shows different items');
      assert.ok((await columnTexts(page, COL.type)).every((t) => t === 'track'));
      assert.equal(first.length + second.length, ofType('track').length);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('the item page shows catalog text escaped and loads the preview only on request', async () => {
    const session = await openPage(browser);
    const { page } = session;
    const previewRequests = [];
    page.on('request', (request) => {
      if (new URL(request.url()).hostname === PREVIEW_HOST) previewRequests.push(request.url());
    });
    // Should the audio element fetch anyway, answer locally instead of leaving the machine.
    await page.route(`https://${PREVIEW_HOST}/**`, (route) => route.fulfill({ status: 204 }));
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.project}/items?q=${encodeURIComponent(markup.id)}`));
      await page.getByRole('link', { name: markup.id }).click();
      await page.waitForURL((u) => /\/items\/\d+$/.test(u.pathname));
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), markup.title);

      const description = page.locator('section', { has: page.getByRole('heading', { name: 'Description' }) });
      assert.equal(await description.locator('p.plain').textContent(), markup.text.description, 'shown verbatim, as text');
      assert.equal(await description.locator('a, b, script').count(), 0, 'no markup from the catalog became elements');
      assert.equal(await page.locator('a[href="https://example.com/liner-notes"]').count(), 0, 'the URL in the text is not a link');
      assert.notEqual(await page.title(), 'pwned', 'no script from the catalog ran');
      assert.match(await page.locator('dl.facts').textContent(), new RegExp(markup.source_ids.isrc));

      assert.equal(await page.locator('audio').count(), 0, 'no audio element before the click');
      await page.waitForLoadState('networkidle');
      assert.deepEqual(previewRequests, [], 'nothing is requested from the preview host before the click');

      await page.getByRole('button', { name: 'Load preview' }).click();
      const audio = page.locator('section.media audio');
      await audio.waitFor({ state: 'attached' });
      assert.equal(await audio.getAttribute('src'), markup.preview_url);
      assert.equal(await audio.evaluate((el) => el.controls), true);
      assert.equal(await page.getByRole('button', { name: 'Load preview' }).isHidden(), true);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
