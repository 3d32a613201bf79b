// (b) The guideline editor: markdown and examples are published as version 1; a second
// version needs a note saying what changed; the history and the comparison show both.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { env, launchBrowser, openPage, signIn, url } from '../lib/browser.mjs';

const KEPT_LINE = 'Review every item against the catalog-safety policy.';
const OLD_LINE = 'Escalate anything you are unsure about to a QA expert.';
const NEW_LINE = 'Escalate borderline items to a QA expert with a short rationale.';
const EXAMPLE = 'A fictional podcast episode that reads out an invented phone number';

const bodyV1 = `## Reviewing catalog items\n\n${KEPT_LINE}\n\n${OLD_LINE}\n`;
const bodyV2 = `## Reviewing catalog items\n\n${KEPT_LINE}\n\n${NEW_LINE}\n`;

describe('the guideline editor', () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('publishes version 1, refuses version 2 without a change note, then publishes it with one', async () => {
    const session = await openPage(browser);
    const { page } = session;
    session.expectStatus(422); // the editor is served again with 422 when publishing is refused
    const guidelines = url(`/p/${env.project}/guidelines`);
    try {
      await signIn(page, env.manager);
      await page.goto(guidelines);
      assert.match(await page.locator('article.guideline').textContent(), /No guideline has been published/);

      // Version 1: markdown and one example in a row added with "Add example".
      await page.getByRole('link', { name: 'Edit guidelines' }).click();
      await page.waitForURL(url(`/p/${env.project}/guidelines/edit`));
      await page.getByLabel('Guideline (Markdown)').fill(bodyV1);
      const rows = page.locator('#example-rows tr');
      const before = await rows.count();
      await page.getByRole('button', { name: 'Add example' }).click();
      assert.equal(await rows.count(), before + 1, '"Add example" adds a row');
      const row = rows.last();
      assert.equal(await row.getByLabel('Category').inputValue(), '', 'the new row starts empty');
      assert.equal(await row.getByLabel('Example text').inputValue(), '');
      const category = await page.locator('#categories option').first().getAttribute('value');
      assert.ok(category, 'the schema offers categories to pick from');
      await row.getByLabel('Category').fill(category);
      await row.getByLabel('Scope').selectOption('out_of_scope');
      await row.getByLabel('Example text').fill(EXAMPLE);
      await page.getByRole('button', { name: 'Publish' }).click();
      await page.waitForURL(url(`/p/${env.project}/guidelines/v/1`));
      assert.match(await page.getByRole('heading', { level: 1 }).textContent(), /version 1/);
      const article = page.locator('article.guideline');
      assert.equal(await article.getByRole('heading', { name: 'Reviewing catalog items' }).count(), 1, 'the markdown is rendered');
      assert.match(await article.textContent(), new RegExp(OLD_LINE));
      const examples = article.locator('section.examples', { hasText: category });
      assert.deepEqual(
        await examples.locator('.scopes > div', { has: page.getByRole('heading', { name: 'Out of scope' }) }).locator('li').allTextContents(),
        [EXAMPLE],
        'the example is listed under its category, out of scope',
      );

      // Version 2 without a note: refused, with the error on the page; nothing is published.
      await page.getByRole('link', { name: 'Edit guidelines' }).click();
      await page.waitForURL(url(`/p/${env.project}/guidelines/edit`));
      assert.equal(await page.getByLabel('Guideline (Markdown)').inputValue(), bodyV1, 'editing starts from version 1');
      await page.getByLabel('Guideline (Markdown)').fill(bodyV2);
      await page.getByLabel('What changed').fill('');
      await page.getByRole('button', { name: 'Publish' }).click();
      await page.getByRole('alert').waitFor();
      assert.match(await page.getByRole('alert').textContent(), /version 2 needs a note saying what changed/);
      assert.equal(await page.getByLabel('Guideline (Markdown)').inputValue(), bodyV2, 'the edit is not lost');
      await page.goto(guidelines);
      assert.match(await page.getByRole('heading', { level: 1 }).textContent(), /version 1/, 'version 1 is still current');
      const published = await page.locator('ol.history li').evaluateAll((items) =>
        items.filter((li) => !/\bdraft\b/.test(li.textContent)).map((li) => li.querySelector('a').textContent.trim()));
      assert.deepEqual(published, ['Version 1'], 'no version 2 was published');
      await page.goto(url(`/p/${env.project}`));
      assert.match(await page.locator('section.card', { hasText: 'Guidelines' }).textContent(), /Version 1, published/);

      // Version 2 with a note.
      await page.goto(url(`/p/${env.project}/guidelines/edit`));
      await page.getByLabel('Guideline (Markdown)').fill(bodyV2);
      await page.getByLabel('What changed').fill('Borderline items are escalated with a rationale.');
      await page.getByRole('button', { name: 'Publish' }).click();
      await page.waitForURL(url(`/p/${env.project}/guidelines/v/2`));
      assert.match(await page.getByRole('heading', { level: 1 }).textContent(), /version 2/);
      assert.match(await page.locator('p.note').textContent(), /Borderline items are escalated with a rationale\./);

      // The history lists both, newest first, version 2 current.
      await page.goto(guidelines);
      const history = (await page.locator('ol.history li').allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim());
      assert.equal(history.length, 2, `two versions in the history: ${JSON.stringify(history)}`);
      assert.match(history[0], /^Version 2 current Borderline items are escalated/);
      assert.match(history[1], /^Version 1 First version/);

      // Compare versions 1 → 2: one line removed, one added, the rest unchanged.
      const compare = page.locator('form', { has: page.getByRole('heading', { name: 'Compare versions' }) });
      await compare.getByLabel('From').selectOption('1');
      await compare.getByLabel('To').selectOption('2');
      await compare.getByRole('button', { name: 'Show changes' }).click();
      await page.waitForURL((u) => u.pathname.endsWith('/guidelines/diff'));
      const query = new URL(page.url()).searchParams;
      assert.deepEqual([query.get('from'), query.get('to')], ['1', '2']);
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Changes from version 1 to 2');
      const text = page.locator('pre[aria-label="Text changes"]');
      assert.deepEqual(await text.locator('span.removed').allTextContents(), [`- ${OLD_LINE}`]);
      assert.deepEqual(await text.locator('span.added').allTextContents(), [`+ ${NEW_LINE}`]);
      assert.ok((await text.locator('span.same').allTextContents()).includes(`  ${KEPT_LINE}`), 'unchanged lines stay');
      const gaps = await text.locator('span').evaluateAll((spans) =>
        spans.slice(1).map((span, i) => span.getBoundingClientRect().top - spans[i].getBoundingClientRect().bottom));
      assert.ok(gaps.every((gap) => Math.abs(gap) < 1), `each line of the diff follows the one before, no blank lines between: ${gaps}`);
      assert.equal(await page.locator('pre[aria-label="Example changes"] span:not(.same)').count(), 0, 'the examples did not change');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
