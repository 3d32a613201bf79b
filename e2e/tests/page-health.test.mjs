// (e) Every page loads without console errors, uncaught exceptions or Content-Security-Policy
// violations. (Each scenario also checks the pages it visits; this walks all of them.)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { env, launchBrowser, openPage, screenshot, signIn, url } from '../lib/browser.mjs';

describe('page health', () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('the sign-in page is clean before anyone signs in', async () => {
    const session = await openPage(browser);
    try {
      const response = await session.page.goto(url('/login'));
      assert.equal(response.status(), 200);
      await session.page.waitForLoadState('networkidle');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test("every page of a project manager's tour is free of console errors and CSP violations", async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      const p = `/p/${env.project}`;
      const paths = [
        '/',
        p,
        `${p}/guidelines`,
        `${p}/guidelines/edit`,
        `${p}/items`,
        `${p}/items?type=track&q=amber`,
        `${p}/import`,
        `${p}/settings`,
        `${p}/my-work`,
        `${p}/team`,
        `${p}/dashboard`,
        `${p}/quality`,
        `${p}/escalations`,
        `${p}/precedents`,
        `${p}/releases`,
        `${p}/feedback`,
        `${p}/escalation-rules`,
        `${p}/guidelines/revision`,
        `/p/${env.qaProject}/dashboard`,
        `/p/${env.qaProject}/quality`,
        `/p/${env.qaProject}/feedback`,
        `/p/${env.qaProject}/escalations?status=resolved`,
        '/account',
      ];
      for (const path of paths) {
        const response = await page.goto(url(path));
        assert.equal(response.status(), 200, `${path} answers 200`);
        await page.waitForLoadState('networkidle');
        // The scripts really ran (a CSP that blocked them would leave no htmx either).
        assert.equal(await page.evaluate(() => typeof window.htmx), 'object', `htmx loaded on ${path}`);
        await screenshot(page, `page${path.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '') || '-home'}`);
      }
      await page.goto(url(`${p}/items`));
      await page.locator('#items tbody a').first().click();
      await page.waitForURL((u) => /\/items\/\d+$/.test(u.pathname));
      await page.waitForLoadState('networkidle');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
