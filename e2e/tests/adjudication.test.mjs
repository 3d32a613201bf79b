// (i) The QA expert's day: an item the consensus run escalated is decided on the
// adjudication page (annotator names hidden), leaves the queue, and is found in the precedent
// library by its rationale and its category.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { env, launchBrowser, openPage, screenshot, signIn, url } from '../lib/browser.mjs';

describe('adjudication', { timeout: 120_000 }, () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('an expert decides an escalated item and finds it in the precedent library', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.expert);
      await page.goto(url(`/p/${env.qaProject}/escalations`));
      const rows = page.locator('#escalations tbody tr');
      assert.equal(await rows.count(), 1, 'only the split item is waiting');
      const row = rows.first();
      assert.match(await row.innerText(), /Cinder Road/);
      assert.match(await row.locator('.reasons').innerText(), /tied/);
      await screenshot(page, 'expert-queue');

      await row.getByRole('link', { name: 'Adjudicate' }).click();
      await page.waitForURL(/\/adjudicate\/\d+$/);
      const labels = await page.locator('#labels').innerText();
      assert.match(labels, /A direct threat to someone's life/);
      assert.match(labels, /Annotator A/);
      assert.doesNotMatch(labels, /rater-kim|rater-lou/, 'annotator names are hidden');
      // Blind adjudication (the default): the consensus waits until the expert asks for it.
      assert.equal(await page.locator('#consensus').count(), 0, 'the consensus is hidden at first');
      await page.getByRole('link', { name: 'Show the consensus' }).click();
      await page.waitForURL(/reveal=1/);
      assert.match(await page.locator('#consensus').innerText(), /tie/);

      const form = page.locator('#adjudication');
      await form.locator('input[name="q.decision"][value="VIOLATING"]').check();
      await form.locator('input[name="q.category"][value="DG.VIOL"]').check();
      await form.locator('input[name="q.severity"][value="S4"]').check();
      await form.locator('textarea[name="rationale"]').fill('Names where the target sleeps: a credible threat to life.');
      await form.locator('input[name="guideline_clause"]').fill('§2.1 credible threats');
      await form.locator('select[name="example_scope"]').selectOption('in_scope');
      await form.locator('input[name="example_category"]').fill('DG.VIOL');
      await screenshot(page, 'adjudication-form');
      await form.getByRole('button', { name: 'Record the decision' }).click();

      await page.waitForURL(/\/escalations\?done=\d+$/);
      assert.match(await page.locator('#decided').innerText(), /Decision recorded for Cinder Road/);
      assert.match(await page.locator('main').innerText(), /Nothing is waiting for an expert/);

      await page.locator('#decided').getByRole('link', { name: 'precedent library' }).click();
      await page.fill('input[name="q"]', 'credible threat');
      await page.fill('input[name="code"]', 'DG.VIOL');
      await page.getByRole('button', { name: 'Search' }).click();
      const found = page.locator('#precedents tbody tr');
      assert.equal(await found.count(), 1);
      const text = await found.first().innerText();
      assert.match(text, /Cinder Road/);
      assert.match(text, /S4/);
      assert.match(text, /§2\.1 credible threats/);
      assert.match(text, /guideline example/);
      await screenshot(page, 'precedent-library');

      // A search that matches nothing says so.
      await page.fill('input[name="q"]', 'gardening');
      await page.getByRole('button', { name: 'Search' }).click();
      assert.match(await page.locator('main').innerText(), /No precedent matches/);
    } finally {
      await session.close();
    }
  });
});
