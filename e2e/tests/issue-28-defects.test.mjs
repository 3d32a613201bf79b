// Issue 28: the defects a QA team met in a browser walk-through, one scenario per class.
//
// The scenarios work in a project of their own ("ui-review", fixtures/ui-items.jsonl) that
// they set up with the `concord` CLI and the API, so the other scenarios' counts stay fixed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiToken, concord, env, fixture, horizontalOverflow, launchBrowser, openPage, overflowingElements, screenshot,
  shownAfter, signIn, url,
} from '../lib/browser.mjs';

const SLUG = 'ui-review';
const LABELLER = { username: 'uma', password: 'uma-e2e-password' };
/** Enough annotators that the team and settings pages need more than one page. */
const CROWD = 56;

async function api(token, method, path, body) {
  const response = await fetch(url(`/api/v1${path}`), {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** The project, its annotators and a published guideline with examples of DG.HATE. */
async function prepareProject() {
  await concord(['project', 'create', SLUG, '--name', 'UI review', '--manager', env.manager.username]);
  await concord(['user', 'add', LABELLER.username, '--password-stdin'], `${LABELLER.password}\n`);
  await concord(['project', 'member', SLUG, LABELLER.username, '--role', 'annotator']);
  for (let n = 1; n < CROWD; n += 1) {
    const name = `crowd-${String(n).padStart(2, '0')}`;
    await concord(['user', 'add', name, '--password-stdin'], `${name}-password\n`);
    await concord(['project', 'member', SLUG, name, '--role', 'annotator']);
  }
  await concord(['import', SLUG, fixture('ui-items.jsonl')]);
  const token = await apiToken(env.manager.username);
  const draft = await api(token, 'PUT', `/projects/${SLUG}/guidelines/draft`, {
    body: '# Rules\n\nJudge the words, not the genre.\n',
    change_note: 'First version',
    examples: [
      { category: 'DG.HATE', scope: 'in_scope', text: 'Slurs aimed at a protected group' },
      { category: 'DG.HATE', scope: 'out_of_scope', text: 'A documentary quoting a slur to condemn it' },
    ],
  });
  assert.equal(draft.status, 200, JSON.stringify(draft.body));
  const published = await api(token, 'POST', `/projects/${SLUG}/guidelines/publish`, { change_note: 'First version' });
  assert.equal(published.status, 200, JSON.stringify(published.body));
}

/** Every same-origin link of the page answers something other than 404. */
async function assertNoDeadLinks(page) {
  const hrefs = await page.locator('main a[href]').evaluateAll((links) => links.map((a) => a.href));
  const own = [...new Set(hrefs.filter((h) => h.startsWith(env.baseUrl)).map((h) => h.split('#')[0]))];
  for (const href of own) {
    const response = await page.request.get(href);
    assert.notEqual(response.status(), 404, `${href} (linked from ${page.url()}) answers 404`);
  }
}

describe('issue 28: the pages as a QA team lives in them', { timeout: 240_000 }, () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
    await prepareProject();
  });
  after(async () => {
    await browser?.close();
  });

  test('the label page keeps Submit, Unsure and Skip on screen, counts progress, names example categories and shows its shortcuts on ?', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await page.setViewportSize({ width: 1366, height: 900 });
      await signIn(page, LABELLER);
      await page.goto(url(`/p/${SLUG}/label`));
      const first = await shownAfter(page, '');
      for (const id of ['#submit-answer', '#unsure', '#skip']) {
        const box = await page.locator(id).boundingBox();
        assert.ok(box, `${id} is shown`);
        assert.ok(box.y >= 0 && box.y + box.height <= 900, `${id} is above the fold at 1366×900 (y ${box.y})`);
      }
      const progress = page.locator('#queue-progress');
      assert.equal((await progress.innerText()).trim(), '0 done today · 3 left in the queue');
      // The guideline panel names the category, not only its code.
      const summary = page.locator('details.examples[data-category="DG.HATE"] summary');
      assert.match(await summary.innerText(), /Hate against protected groups/);
      // "Marked explicit" says yes only for items marked explicit.
      const explicit = page.locator('dd[data-explicit]');
      const marked = await explicit.getAttribute('data-explicit');
      const expected = { explicit: 'yes', not_explicit: 'no', unknown: 'unknown' }[marked];
      assert.equal((await explicit.innerText()).trim(), expected, `explicit ${marked}`);
      await screenshot(page, 'issue28-label-page-1366');

      // "?" shows every shortcut over the page; Esc closes it.
      await page.keyboard.press('?');
      const help = page.locator('#shortcut-help');
      await help.waitFor({ state: 'visible' });
      assert.match(await help.innerText(), /unsure — send to an expert/);
      await screenshot(page, 'issue28-label-shortcuts');
      await page.keyboard.press('Escape');
      await help.waitFor({ state: 'hidden' });

      await page.locator('input[name="q-decision"][value="NOT_VIOLATING"]').check();
      await page.locator('input[name="q-severity"][value="S0"]').check();
      await page.locator('#submit-answer').click();
      await shownAfter(page, first);
      assert.match(await page.locator('#queue-progress').innerText(), /^1 done today · \d+ left in the queue$/);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('the adjudication page gives the form room, is blind by default, and links only to pages that exist', async () => {
    const expert = await openPage(browser);
    const manager = await openPage(browser);
    try {
      const { page } = expert;
      await page.setViewportSize({ width: 1366, height: 900 });
      await signIn(page, env.expert);
      // An item no expert has decided yet (the adjudication scenario decides one).
      await page.goto(url(`/p/${env.qaProject}/items`));
      const hrefs = await page.locator('#items tbody a').evaluateAll((links) => links.map((l) => l.getAttribute('href')));
      let adjudicate;
      for (const href of hrefs) {
        const candidate = url(`/p/${env.qaProject}/adjudicate/${/\/items\/(\d+)/.exec(href)[1]}`);
        await page.goto(candidate);
        if (await page.locator('#blind-note').count() === 1 && await page.locator('#labels').count() === 1) {
          adjudicate = candidate;
          break;
        }
      }
      assert.ok(adjudicate, 'an undecided item with labels');

      // Blind mode (the default): no consensus, no posterior, nothing pre-selected.
      assert.equal(await page.locator('#consensus').count(), 0, 'the consensus is hidden');
      assert.equal(await page.locator('#adjudication input:checked').count(), 0, 'nothing is pre-selected');
      assert.match(await page.locator('#blind-note').innerText(), /before seeing the consensus/);

      // The form has room: its column is wide, its labels do not wrap into many lines.
      const form = await page.locator('#adjudication').boundingBox();
      assert.ok(form.width >= 320, `the decision form is ${form.width} px wide`);
      const promote = await page.locator('#adjudication label.check').boundingBox();
      assert.ok(promote.height < 40, `"Promote to gold" takes one line (${promote.height} px)`);
      const select = await page.locator('#adjudication select[name="example_scope"]').boundingBox();
      assert.ok(select.x + select.width <= form.x + form.width + 0.5, 'the select stays inside the form');

      // One row per annotator in force; corrections are marked as replaced, not counted twice.
      const inForce = await page.locator('#labels tbody tr:not(.superseded) td:first-child').allInnerTexts();
      const who = inForce.map((t) => t.replace(/\s+(unsure|correction)$/, '').trim());
      assert.equal(new Set(who).size, who.length, `each annotator once: ${who.join(', ')}`);
      await assertNoDeadLinks(page);
      await screenshot(page, 'issue28-adjudication-blind');

      // The project can switch blind mode off; then the consensus shows and is pre-selected.
      await signIn(manager.page, env.manager);
      await manager.page.goto(url(`/p/${env.qaProject}/escalation-rules`));
      const display = await manager.page.locator('#rules').evaluate((el) => getComputedStyle(el).display);
      assert.equal(display, 'flex', 'the escalation-rules form has its layout');
      const saveRules = () => Promise.all([
        manager.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/escalation-rules')),
        manager.page.getByRole('button', { name: 'Save rules' }).click(),
      ]);
      await manager.page.getByLabel(/Blind adjudication/).uncheck();
      await saveRules();
      await manager.page.waitForLoadState();
      await page.goto(adjudicate);
      assert.equal(await page.locator('#consensus').count(), 1, 'the consensus shows when blind mode is off');
      await manager.page.getByLabel(/Blind adjudication/).check();
      await saveRules();
      await manager.page.waitForLoadState();
      await page.goto(adjudicate);
      assert.equal(await page.locator('#consensus').count(), 0, 'blind again');
      expert.assertNoProblems();
      manager.assertNoProblems();
    } finally {
      await expert.close();
      await manager.close();
    }
  });

  test('the release name field validates with its pattern and logs no error', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      // The QA project has a consensus run, so its releases page offers the release form.
      await page.goto(url(`/p/${env.qaProject}/releases`));
      const name = page.locator('input[name="name"]');
      await name.fill('not a name!');
      assert.equal(await name.evaluate((el) => el.validity.patternMismatch), true);
      await name.fill('2026-11-v1.rc_2');
      assert.equal(await name.evaluate((el) => el.validity.valid), true);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('the dashboard axis labels never overlap and the label counts are explained', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      for (const width of [1366, 390]) {
        await page.setViewportSize({ width, height: 900 });
        await page.goto(url(`/p/${env.qaProject}/dashboard`));
        for (const chart of await page.locator('svg.chart').all()) {
          const boxes = await chart.locator('text.tick[text-anchor="middle"]').evaluateAll((ticks) =>
            ticks.map((t) => { const b = t.getBoundingClientRect(); return { left: b.left, right: b.right, text: t.textContent }; }));
          for (let i = 1; i < boxes.length; i += 1) {
            assert.ok(boxes[i - 1].right <= boxes[i].left,
              `"${boxes[i - 1].text}" and "${boxes[i].text}" overlap at ${width} px`);
          }
        }
        assert.match(await page.locator('#label-counts-note').innerText(), /quality page/);
        assert.ok(await horizontalOverflow(page) <= 0, `no overflow at ${width}: ${await overflowingElements(page)}`);
        await screenshot(page, `issue28-dashboard-${width}`);
      }
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('the team and settings pages page and search a large team', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${SLUG}/team`));
      assert.equal(await page.locator('#team tbody tr').count(), 50, 'fifty annotators a page');
      assert.match(await page.locator('#team-count').innerText(), new RegExp(`${CROWD} annotators`));
      await Promise.all([page.waitForURL(/page=2/), page.getByRole('link', { name: 'Next page' }).click()]);
      assert.equal(await page.locator('#team tbody tr').count(), CROWD - 50);
      await page.getByLabel('Find annotator').fill(LABELLER.username);
      await Promise.all([page.waitForURL(/q=uma/), page.getByRole('button', { name: 'Find' }).click()]);
      assert.deepEqual(await page.locator('#team tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.username)), [LABELLER.username]);
      assert.match(page.url(), /q=uma/, 'the search is in the URL');

      await page.goto(url(`/p/${SLUG}/settings`));
      assert.ok(await page.locator('#members tbody tr').count() <= 50, 'members are paged');
      await page.getByLabel('Find member').fill('crowd-07');
      await Promise.all([page.waitForURL(/q=crowd-07/), page.getByRole('button', { name: 'Find' }).click()]);
      assert.equal(await page.locator('#members tbody tr').count(), 1);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('the guideline editor confirms a save and shows when the draft was last saved; the diff offers a chooser', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${SLUG}/guidelines/edit`));
      await page.locator('textarea[name="body"]').fill('# Rules\n\nJudge the words, not the genre.\n\nQuote marks do not excuse a slur.\n');
      await page.locator('input[name="change_note"]').fill('Quotes');
      await page.getByRole('button', { name: 'Save draft' }).click();
      await page.waitForURL(/saved=1/);
      assert.match(await page.locator('#saved-notice').innerText(), /Draft saved/);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await page.goto(url(`/p/${SLUG}/guidelines/edit`));
      assert.equal(await page.locator('#saved-notice').count(), 0, 'no confirmation without a save');
      await page.getByRole('button', { name: 'Save draft' }).click();
      await page.waitForURL(/saved=1/);
      const saved = page.locator('#last-saved');
      const [savedAt, startedAt] = [Number(await saved.getAttribute('data-saved-at')), Number(await saved.getAttribute('data-started-at'))];
      assert.ok(savedAt > startedAt, `last saved (${savedAt}) is the latest save, not the draft's start (${startedAt})`);

      const response = await page.goto(url(`/p/${SLUG}/guidelines/diff`));
      assert.equal(response.status(), 200, 'the diff without versions is a chooser, not an error');
      await page.locator('#diff-chooser').getByRole('button', { name: 'Show the changes' }).click();
      await page.waitForURL(/from=1&to=2/);
      assert.match(await page.locator('h1').innerText(), /Changes from version 1 to 2/);
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('an administrator disables a user from the page, the API and the CLI', async () => {
    const admin = await openPage(browser);
    const victim = await openPage(browser);
    try {
      await concord(['user', 'add', 'zed', '--password-stdin'], 'zed-e2e-password\n');
      const zedToken = await apiToken('zed');
      const adminToken = await apiToken(env.admin.username);
      const me = () => fetch(url('/api/v1/me'), { headers: { Authorization: `Bearer ${zedToken}` } }).then((r) => r.status);
      assert.equal(await me(), 200);

      // The page.
      await signIn(admin.page, env.admin);
      // The list is paged: the search (kept in the URL and across the change) finds zed.
      await admin.page.goto(url('/admin/users?q=zed'));
      await admin.page.getByRole('button', { name: 'Disable zed' }).click();
      assert.match(await admin.page.locator('p.note[role="status"]').innerText(), /Disabled zed/);
      assert.match(await admin.page.locator('#users tr[data-username="zed"]').innerText(), /disabled/);
      assert.equal(await me(), 401, 'a disabled user\'s token stops working');
      victim.expectStatus(401);
      victim.expectStatus(403);
      await victim.page.goto(url('/login'));
      await victim.page.getByLabel('User name').fill('zed');
      await victim.page.getByLabel('Password').fill('zed-e2e-password');
      await victim.page.getByRole('button', { name: 'Sign in' }).click();
      await victim.page.locator('.error').waitFor();
      assert.match(victim.page.url(), /\/login/, 'a disabled user cannot sign in');

      // The API.
      const enabled = await api(adminToken, 'PUT', '/users/zed/disabled', { disabled: false });
      assert.equal(enabled.status, 200);
      assert.equal(enabled.body.user.disabled, false);
      assert.equal(await me(), 200);

      // The CLI.
      // Another process's change reaches the server's remembered token lookups within their
      // time to live (a few seconds).
      assert.match(await concord(['user', 'disable', 'zed']), /zed is disabled/);
      const deadline = Date.now() + 10_000;
      while (await me() !== 401 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
      assert.equal(await me(), 401);
      assert.match(await concord(['user', 'list']), /zed\t.*\tdisabled/);
      assert.match(await concord(['user', 'enable', 'zed']), /zed is enabled/);
      admin.assertNoProblems();
    } finally {
      await admin.close();
      await victim.close();
    }
  });

  test('the feedback report names each example item once', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.qaProject}/feedback`));
      for (const row of await page.locator('#confusions tbody tr').all()) {
        const items = await row.locator('td:last-child a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
        assert.equal(new Set(items).size, items.length, `repeated example in ${await row.innerText()}`);
      }
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('the adjudication, escalation, quality and dashboard pages fit a 390 px screen', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await page.setViewportSize({ width: 390, height: 844 });
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.qaProject}/items`));
      const href = await page.locator('#items tbody a').first().getAttribute('href');
      const id = /\/items\/(\d+)/.exec(href)[1];
      for (const path of ['dashboard', 'quality', 'escalations', 'escalations?status=resolved', `adjudicate/${id}`]) {
        await page.goto(url(`/p/${env.qaProject}/${path}`));
        const overflow = await horizontalOverflow(page);
        assert.ok(overflow <= 0, `${path} overflows by ${overflow} px: ${await overflowingElements(page)}`);
        await screenshot(page, `issue28-390-${path.replace(/[^a-z0-9]+/gi, '-')}`);
      }
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
