// (k) Automated annotators: a project manager adds a rules model on the project's
// "Automated annotators" page, runs it, and sees every item of the project labelled by it;
// a rules file that does not parse is refused with its problem named.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { env, launchBrowser, openPage, screenshot, signIn, url } from '../lib/browser.mjs';

const RULES = JSON.stringify({
  default: { decision: 'NOT_VIOLATING', severity: 'S0' },
  rules: [{ name: 'threats', keywords: ['kill you'], answer: { decision: 'VIOLATING', category: ['DG.VIOL'], severity: 'S3' } }],
});

describe('automated annotators', { timeout: 120_000 }, () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('a rules model added on the page runs and its labels are counted', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.modelProject}`));
      await Promise.all([
        page.waitForURL((u) => u.pathname.endsWith('/models')),
        page.getByRole('link', { name: 'Automated annotators' }).click(),
      ]);
      assert.ok(await page.locator('#no-models').isVisible(), 'no model yet');

      // A rules file that does not parse: refused, the problem named, nothing added.
      const form = page.locator('#add-model form');
      await form.getByLabel('Name', { exact: true }).fill('keywords');
      await form.getByLabel('Kind').selectOption('rules');
      await form.getByLabel('Rules file (JSON)').fill('{"default": ');
      session.expectStatus(422);
      const refused = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/models'));
      await form.getByRole('button', { name: 'Add model' }).click();
      assert.equal((await refused).status(), 422);
      await page.waitForLoadState('load');
      await page.locator('#model-error').waitFor();
      assert.match(await page.locator('#model-error').textContent(), /rules file/);
      assert.ok(await page.locator('#no-models').isVisible(), 'nothing was added');

      await form.getByLabel('Name', { exact: true }).fill('keywords');
      await form.getByLabel('Kind').selectOption('rules');
      await form.getByLabel('Rules file (JSON)').fill(RULES);
      await Promise.all([
        page.waitForURL((u) => u.hash === '#model-keywords'),
        form.getByRole('button', { name: 'Add model' }).click(),
      ]);
      const row = page.locator('#model-keywords');
      assert.equal((await row.locator('.state').textContent()).trim(), 'enabled');
      assert.equal(await row.locator('.labels').getAttribute('data-count'), '0');
      assert.match(await row.locator('.last-run').textContent(), /never run/);

      const started = page.waitForResponse((r) => r.url().endsWith('/models/keywords/run'));
      await row.getByRole('button', { name: 'Run' }).click();
      await started;
      await page.waitForLoadState('load');
      // The run is a background job: reload until the count shows every item labelled.
      let labels = '0';
      for (let attempt = 0; attempt < 100 && labels !== String(env.modelItemCount); attempt += 1) {
        await page.waitForTimeout(200);
        await page.reload();
        labels = await page.locator('#model-keywords .labels').getAttribute('data-count');
      }
      assert.equal(labels, String(env.modelItemCount), 'every item labelled by the model');
      // The run's own counters are written as it goes: reload until its row says it is done.
      const done = `${env.modelItemCount} labelled, 0 failed`;
      let lastRun = '';
      for (let attempt = 0; attempt < 100 && !lastRun.includes(done); attempt += 1) {
        await page.waitForTimeout(200);
        await page.reload();
        lastRun = await page.locator('#model-keywords .last-run').textContent();
      }
      assert.match(lastRun, new RegExp(`finished[\\s\\S]*${done}`), 'the last run finished, every item labelled');
      await screenshot(page, 'models');

      const disabled = page.waitForResponse((r) => r.url().endsWith('/models/keywords/disable'));
      await page.locator('#model-keywords').getByRole('button', { name: 'Disable' }).click();
      await disabled;
      await page.locator('#model-keywords .state', { hasText: 'disabled' }).waitFor();
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
