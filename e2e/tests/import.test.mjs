// (d) The import page: the chosen file is uploaded, and the job block that appears follows the
// import to its end — "succeeded" with the counts, or "failed" naming the bad line.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { columnTexts, env, fixture, launchBrowser, openPage, signIn, url } from '../lib/browser.mjs';

const lines = (name) => readFileSync(fixture(name), 'utf8').trim().split('\n').length;

async function upload(page, file) {
  await page.goto(url(`/p/${env.importProject}/import`));
  const form = page.locator('#import-form');
  await form.getByLabel('File', { exact: true }).setInputFiles(fixture(file));
  await form.getByLabel('Contains').selectOption('items');
  await form.getByRole('button', { name: 'Upload and import' }).click();
  await page.locator('#job-slot .job').waitFor();
  // The block polls itself (htmx, every second) until the job has finished. Its class names
  // the status; htmx gives a swapped-in block its final attributes only once it has settled.
  const job = page.locator('#job-slot .job:is(.succeeded, .failed):not(.htmx-settling)');
  await job.waitFor({ timeout: 30_000 });
  assert.equal(await form.locator('.error').isHidden(), true, 'the upload itself was accepted');
  return job;
}

describe('the import page', () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('a valid JSONL file is imported and the job block ends "succeeded" with the counts', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      const count = lines('upload-valid.jsonl');
      const job = await upload(page, 'upload-valid.jsonl');
      assert.equal((await job.locator('.status').textContent()).trim(), 'succeeded');
      assert.match(await job.getAttribute('class'), /\bsucceeded\b/);
      assert.equal(await job.getAttribute('hx-get'), null, 'a finished job stops polling');
      assert.match(
        (await job.textContent()).replace(/\s+/g, ' '),
        new RegExp(`Read ${count}, added ${count}, updated 0, skipped 0\\.`),
      );

      await page.goto(url(`/p/${env.importProject}/items?q=e2e-upload`));
      assert.equal((await columnTexts(page, 1)).length, count, 'the items are in the project');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('a file with a bad line ends "failed", names the line, and imports nothing', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      const job = await upload(page, 'upload-bad-line.jsonl');
      assert.equal((await job.locator('.status').textContent()).trim(), 'failed');
      const message = job.locator('p.message');
      assert.match(await message.getAttribute('class'), /\berror\b/);
      const text = await message.textContent();
      assert.match(text, /upload-bad-line\.jsonl:3\b/, `the message names file and line: ${text}`);
      assert.match(text, /item_type/, `and the field: ${text}`);
      assert.doesNotMatch((await job.textContent()).replace(/\s+/g, ' '), /Read \d+, added/);

      await page.goto(url(`/p/${env.importProject}/items?q=e2e-broken`));
      assert.deepEqual(await columnTexts(page, 1), ['No items match.'], 'nothing from the file was imported');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
