// (a) Signing in: the project manager lands on the projects list and the project page shows
// the item counts; a wrong password keeps the user on the sign-in page with an error.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { env, launchBrowser, openPage, signIn, url } from '../lib/browser.mjs';

describe('signing in', () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('the project manager lands on the projects list and the project page counts the items', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await page.goto(url('/'));
      assert.equal(new URL(page.url()).pathname, '/login', 'signed-out visitors are sent to the sign-in page');

      await signIn(page, env.manager);
      assert.equal(new URL(page.url()).pathname, '/', 'signing in lands on the projects list');
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Projects');
      const row = page.locator('table.list tbody tr', { hasText: env.project });
      assert.equal(await row.count(), 1, 'the project is listed');
      assert.match(await row.textContent(), /Project manager/i, 'with the manager role');

      await row.getByRole('link', { name: env.projectName }).click();
      await page.waitForURL(url(`/p/${env.project}`));
      const card = page.locator('section.card', { has: page.getByRole('heading', { name: 'Items' }) });
      assert.match(
        (await card.locator('p').first().textContent()).replace(/\s+/g, ' '),
        new RegExp(`^${env.itemCount} items, 0 annotations\\.$`),
      );
      const counts = await card.locator('table.counts td').allTextContents();
      assert.ok(counts.length > 0, 'the counts per state are shown');
      assert.equal(counts.map(Number).reduce((a, b) => a + b, 0), env.itemCount, 'the states add up to the total');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('a wrong password shows the error and signs nobody in', async () => {
    const session = await openPage(browser);
    const { page } = session;
    session.expectStatus(401); // the form is served again with 401 Unauthorized
    try {
      await page.goto(url('/login'));
      await page.getByLabel('User name').fill(env.manager.username);
      await page.getByLabel('Password').fill(`${env.manager.password}-but-wrong`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      assert.equal(await page.getByRole('alert').textContent(), 'Wrong user name or password.');
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(await page.getByLabel('User name').inputValue(), env.manager.username, 'the user name is kept');
      assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password is not echoed back');

      await page.goto(url('/'));
      assert.equal(new URL(page.url()).pathname, '/login', 'still signed out');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
