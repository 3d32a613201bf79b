// Issue 28, the label page and the lists: undo of the last answer (a correction kept in the
// history), the visible "saved" state and a failed save, and bulk actions on the item browser
// with their confirmation step.
//
// The scenarios work in a project of their own ("ui-work", fixtures/ui-items.jsonl) made with
// the `concord` CLI, so the other scenarios' counts stay fixed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiToken, concord, env, fixture, launchBrowser, openPage, screenshot, shownAfter, signIn, url } from '../lib/browser.mjs';

const SLUG = 'ui-work';
const LABELLER = { username: 'wes', password: 'wes-e2e-password' };
const [FIRST, SECOND] = ['Lantern Street', 'Salt and Ember'];

async function api(token, method, path, body) {
  const response = await fetch(url(`/api/v1${path}`), {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

async function checkedValues(page) {
  return page.locator('#answer-form input:checked').evaluateAll((inputs) => inputs.map((i) => i.value));
}

/** Picks an answer by clicking its options (decision, then severity). */
async function answer(page, decision, severity) {
  await page.locator(`#answer-form input[value="${decision}"]`).check();
  await page.locator(`#answer-form input[value="${severity}"]`).check();
}

describe('issue 28: undo, saved state and bulk actions', { timeout: 120_000 }, () => {
  let browser;
  let token;

  before(async () => {
    await concord(['project', 'create', SLUG, '--name', 'UI work', '--manager', env.manager.username]);
    await concord(['user', 'add', LABELLER.username, '--password-stdin'], `${LABELLER.password}\n`);
    await concord(['project', 'member', SLUG, LABELLER.username, '--role', 'annotator']);
    await concord(['import', SLUG, fixture('ui-items.jsonl')]);
    token = await apiToken(env.manager.username);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('an annotator sees each answer saved, undoes the last one with Z and corrects it', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, LABELLER);
      await page.goto(url(`/p/${SLUG}/label`));
      assert.equal(await shownAfter(page, ''), FIRST);
      await answer(page, 'NOT_VIOLATING', 'S0');
      await page.getByRole('button', { name: /^Submit/ }).click();
      assert.equal(await shownAfter(page, FIRST), SECOND);
      const status = page.locator('#save-status');
      assert.equal(await status.getAttribute('aria-live'), 'polite', 'the saved state is announced');
      assert.match(await status.textContent(), /^Saved ✓ \d{1,2}:\d{2}.* — Undo/);
      await screenshot(page, 'label-saved-with-undo');

      // Z reopens the answer just given, filled in; unsure and skip belong to new items.
      await page.keyboard.press('z');
      await page.locator('#item-slot [data-status="correcting"]').waitFor();
      assert.equal(await page.locator('#item-slot h1').textContent(), FIRST);
      assert.deepEqual(await checkedValues(page), ['NOT_VIOLATING', 'S0'], 'the earlier answer is filled in');
      assert.ok(await page.locator('#unsure').isHidden());
      assert.ok(await page.locator('#skip').isHidden());
      await screenshot(page, 'label-correcting');

      await answer(page, 'VIOLATING', 'S3');
      await page.getByRole('button', { name: /^Submit/ }).click();
      assert.equal(await shownAfter(page, FIRST), SECOND, 'back to the item that was next');
      assert.match(await status.textContent(), /^Corrected ✓ .* — Undo/);

      // The history keeps both answers; the correction names what it replaces.
      const items = await api(token, 'GET', `/projects/${SLUG}/items?q=ui-001`);
      const itemId = items.body.items[0].id;
      const history = await api(token, 'GET', `/projects/${SLUG}/items/${itemId}/annotations`);
      const rows = history.body.annotations.filter((a) => a.annotator === LABELLER.username);
      assert.deepEqual(rows.map((a) => a.answer.decision), ['NOT_VIOLATING', 'VIOLATING']);
      assert.equal(rows[1].supersedes, rows[0].id);
      assert.equal(rows[1].source, 'correction');

      // The shortcut overlay lists the undo key.
      await page.keyboard.press('?');
      assert.match(await page.locator('#shortcut-help').textContent(), /undo your last answer/);
      await page.keyboard.press('Escape');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('a failed save shows the error and keeps the answer on screen', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, LABELLER);
      await page.goto(url(`/p/${SLUG}/label`));
      assert.equal(await shownAfter(page, ''), SECOND, 'the lease resumes');
      session.expectStatus(422);
      await page.route('**/label/submit', (route) => route.fulfill({
        status: 422,
        contentType: 'application/json',
        body: JSON.stringify({ error: { status: 422, message: 'the test refused this answer' } }),
      }));
      await answer(page, 'BORDERLINE', 'S2');
      await page.getByRole('button', { name: /^Submit/ }).click();
      const error = page.locator('#answer-form .form-error');
      await error.waitFor();
      assert.match(await error.textContent(), /Not saved: the test refused this answer/);
      assert.equal(await page.locator('#save-status').getAttribute('data-kind'), 'error');
      assert.equal(await page.locator('#item-slot h1').textContent(), SECOND, 'the item stays');
      assert.deepEqual(await checkedValues(page), ['BORDERLINE', 'S2'], 'the answer stays');

      await page.unroute('**/label/submit');
      await page.getByRole('button', { name: /^Submit/ }).click();
      await shownAfter(page, SECOND);
      assert.match(await page.locator('#save-status').textContent(), /^Saved ✓/);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('a list\'s search lives in the URL: reloading or sharing it restores the view', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, LABELLER);
      await page.goto(url(`/p/${SLUG}/my-work`));
      await page.getByLabel('Find item or answer').fill('Lantern');
      await page.getByRole('button', { name: 'Find' }).click();
      await page.waitForURL((u) => u.searchParams.get('q') === 'Lantern');
      const rows = page.locator('#my-annotations tbody tr');
      assert.equal(await rows.count(), 2, 'the answer and its correction');
      await page.reload();
      assert.equal(await rows.count(), 2, 'a reload keeps the search');
      assert.equal(await page.getByLabel('Find item or answer').inputValue(), 'Lantern');
      const shared = page.url();

      // The same address opened by someone else's browser shows the same view.
      const other = await openPage(browser);
      try {
        await signIn(other.page, LABELLER);
        await other.page.goto(shared);
        assert.match(await other.page.locator('#my-work-count').textContent(), /2 answers matching “Lantern”/);
        other.assertNoProblems();
      } finally {
        await other.close();
      }
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('a manager selects items, reviews the change and applies it; gold needs a settled answer', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${SLUG}/items?type=track`));
      await page.getByLabel('Select all on this page').check();
      assert.match(await page.locator('[data-selected-count]').textContent(), /3 selected/);
      await page.getByLabel('Action').selectOption('set_priority');
      await page.getByLabel('Priority', { exact: true }).fill('7');
      await page.getByRole('button', { name: 'Review the change…' }).click();
      assert.match(await page.locator('[data-bulk-summary]').textContent(), /set the priority to 7 on 3 items/);
      await screenshot(page, 'items-bulk-confirm');
      const before = await api(token, 'GET', `/projects/${SLUG}/items?min_priority=7`);
      assert.equal(before.body.items.length, 0, 'nothing changes before the confirmation');
      await page.getByRole('button', { name: /^Confirm/ }).click();
      assert.match(await page.locator('[data-bulk-done]').textContent(), /3 items changed/);
      await page.getByRole('link', { name: 'Back to the items' }).click();
      assert.equal(new URL(page.url()).searchParams.get('type'), 'track', 'back to the same view');
      const priorities = await page.locator('#items tbody tr td:nth-child(6)').allTextContents();
      assert.deepEqual(priorities.map((p) => p.trim()), ['7', '7', '7']);

      // ui-003 was never labelled, adjudicated or computed: it cannot become gold.
      await page.getByLabel('Select ui-003').check();
      await page.getByLabel('Action').selectOption('mark_gold');
      await page.getByRole('button', { name: 'Review the change…' }).click();
      session.expectStatus(422);
      await page.getByRole('button', { name: /^Confirm/ }).click();
      assert.match(await page.locator('[data-bulk-error]').textContent(), /Nothing was changed: .*ui-003/);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
