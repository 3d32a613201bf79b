// (f) An annotator sees the project and its guidelines but none of the managers' pages.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { env, launchBrowser, openPage, signIn, url } from '../lib/browser.mjs';

describe('an annotator', () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('sees no Items, Import or Settings links and gets a 403 page for the settings', async () => {
    const session = await openPage(browser);
    const { page } = session;
    session.expectStatus(403);
    try {
      await signIn(page, env.annotator);
      await page.goto(url(`/p/${env.project}`));
      assert.match(await page.locator('main').textContent(), /Your role: Annotator\./);
      const nav = page.getByRole('navigation', { name: 'Project' });
      assert.deepEqual(
        (await nav.getByRole('link').allTextContents()).map((t) => t.trim()),
        [env.projectName, 'Label', 'My work', 'Guidelines', 'Precedents'],
        'only the project, its guidelines and the precedent library are offered',
      );
      for (const hidden of ['Items', 'Import', 'Settings']) {
        assert.equal(await page.getByRole('link', { name: hidden, exact: true }).count(), 0, `no ${hidden} link`);
      }
      assert.equal(await page.locator('section.card', { hasText: 'items,' }).count(), 0, 'no item counts');

      const response = await page.goto(url(`/p/${env.project}/settings`));
      assert.equal(response.status(), 403);
      assert.match(await page.getByRole('heading', { level: 1 }).textContent(), /^403 · Forbidden$/);
      assert.ok((await page.getByRole('alert').textContent()).trim().length > 0, 'the page says why');
      assert.equal(await page.locator('textarea[name="settings"]').count(), 0, 'no settings are shown');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
