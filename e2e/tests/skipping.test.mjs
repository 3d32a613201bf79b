// (h) Skip with a reason and "unsure — escalate", by keyboard: a skipped item is not served to
// the same annotator again, and an unsure answer is stored and shown as escalated.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { env, launchBrowser, openPage, screenshot, shownAfter, signIn, url } from '../lib/browser.mjs';

const TRACK = 'Lantern Street';
const EPISODE = 'Borderlands, episode 12';

describe('skipping and escalating', { timeout: 120_000 }, () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  before(async () => {
    // The project manager publishes guidelines with examples for two categories.
    const manager = await openPage(browser);
    try {
      await signIn(manager.page, env.manager);
      await manager.page.goto(url(`/p/${env.skipProject}`));
      const csrf = await manager.page.evaluate(() => document.body.dataset.csrf);
      const api = (path) => url(`/api/v1/projects/${env.skipProject}/guidelines/${path}`);
      const draft = await manager.page.request.put(api('draft'), {
        headers: { 'X-CSRF-Token': csrf },
        data: {
          body: '# Review\n\nJudge the item as a whole.',
          change_note: 'First version',
          examples: [
            { category: 'DG.HATE', scope: 'in_scope', text: 'Lyrics calling for violence against a religious group.' },
            { category: 'DG.HATE', scope: 'out_of_scope', text: 'A documentary quoting a slur to explain its history.' },
            { category: 'DC.SPAM', scope: 'in_scope', text: 'The same track uploaded forty times under new titles.' },
          ],
        },
      });
      assert.equal(draft.status(), 200, await draft.text());
      const published = await manager.page.request.post(api('publish'), { headers: { 'X-CSRF-Token': csrf }, data: {} });
      assert.equal(published.status(), 200, await published.text());
    } finally {
      await manager.close();
    }
  });

  test('S skips with a reason, U escalates, and the skipped item does not come back', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.skipper);
      await page.goto(url(`/p/${env.skipProject}/label`));
      assert.equal(await shownAfter(page, ''), TRACK);

      // S opens the reason form; Escape goes back to the answer.
      await page.keyboard.press('s');
      const skipForm = page.locator('#skip-form');
      assert.ok(await skipForm.isVisible(), 'the reason form opens');
      assert.ok(await page.locator('#answer-form').isHidden());
      await page.keyboard.press('Escape');
      assert.ok(await skipForm.isHidden());
      assert.ok(await page.locator('#answer-form').isVisible());

      // "Other…" needs a written reason.
      await page.keyboard.press('s');
      await skipForm.getByLabel('Why skip this item?').selectOption('other');
      await skipForm.getByLabel('Reason').fill('');
      await page.keyboard.press('Enter');
      assert.match(await skipForm.locator('.form-error').textContent(), /Say why you skip this item/);
      await skipForm.getByLabel('Why skip this item?').selectOption('I cannot judge this language');
      await screenshot(page, 'label-skip-reason');
      await page.keyboard.press('Enter');
      assert.equal(await shownAfter(page, TRACK), EPISODE);
      assert.match(await page.locator('#save-status').textContent(), /^Skipped\./);

      // The guideline examples of the categories chosen open beside the answer.
      const hate = page.locator('#guideline-panel details[data-category="DG.HATE"]');
      const spam = page.locator('#guideline-panel details[data-category="DC.SPAM"]');
      assert.equal(await hate.getAttribute('open'), null, 'closed until the category is chosen');
      await page.keyboard.press('3'); // Violating; the categories question is next
      await page.keyboard.press('3'); // DG.HATE
      assert.notEqual(await hate.getAttribute('open'), null, 'DG.HATE examples open');
      assert.ok(await hate.getByText('Lyrics calling for violence').isVisible());
      assert.equal(await spam.getAttribute('open'), null, 'DC.SPAM stays closed');
      await page.keyboard.press('3'); // DG.HATE again: unticked
      assert.equal(await hate.getAttribute('open'), null);
      await page.keyboard.press('ArrowUp');

      // 3 = Violating, then U: unsure, with that best guess.
      await page.keyboard.press('3');
      await page.keyboard.press('u');
      await shownAfter(page, EPISODE);
      assert.match(await page.locator('#item-slot').textContent(), /No more items for you/, 'the skipped item is not served again');

      await page.goto(url(`/p/${env.skipProject}/my-work`));
      const rows = page.locator('#my-annotations tbody tr');
      assert.equal(await rows.count(), 1, 'a skip is not an annotation');
      assert.match(await rows.first().textContent(), /Borderlands, episode 12.*unsure — escalated.*decision:\s*VIOLATING/s);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
