// (g) The annotator's page: labelling by keyboard, gold feedback, the end of the queue, blind
// labelling, and answers that survive a cut connection and a server restart.
//
// The queue project (fixtures/queue.jsonl) holds one gold item and two ordinary items, overlap 2,
// gold rate 1 (gold is served first) and immediate gold feedback; its two annotators, lena and
// omar, each label all three. The tests run in order: omar's scenarios follow lena's.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { PREVIEW_HOST, env, launchBrowser, openPage, screenshot, shownAfter, signIn, url } from '../lib/browser.mjs';

/** A 1×1 PNG standing in for the catalog's cover art. */
const COVER_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

const GOLD = 'Harbour Lights (gold)';
const TRACK = 'Copper Fields';
const EPISODE = 'The Night Shift, episode 4';

/** Serves cover art from the preview host and records every request made to it. */
async function previewHost(page) {
  const requested = [];
  await page.route(`https://${PREVIEW_HOST}/**`, (route) => {
    requested.push(new URL(route.request().url()).pathname);
    return route.fulfill({ status: 200, contentType: 'image/png', body: COVER_PNG });
  });
  return requested;
}

async function checkedValues(page) {
  return page.locator('#answer-form input:checked').evaluateAll((inputs) => inputs.map((i) => i.value));
}

async function keys(page, ...sequence) {
  for (const key of sequence) await page.keyboard.press(key);
}

/** Signs in on another server than the suite's (the restart scenario runs its own). */
async function signInAt(page, base, { username, password }) {
  await page.goto(`${base}/login`);
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** `concord serve` on the suite's database, on `port` (0: any free port). */
async function startServer(port = 0) {
  const child = spawn(env.binary, ['serve', '--listen', `127.0.0.1:${port}`, '--database-url', env.database], {
    env: { ...process.env, CONCORD_TEST_FAST_PASSWORD_HASH: '1', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`concord serve exited early with ${code}`);
  });
  const [line] = await Promise.race([once(createInterface({ input: child.stdout }), 'line'), exited]);
  const match = /^listening on (\S+)/.exec(line);
  assert.ok(match, `concord serve said ${JSON.stringify(line)}`);
  return { child, url: match[1].replace(/\/$/, ''), port: Number(new URL(match[1]).port) };
}

async function stopServer(server) {
  if (server.child.exitCode !== null) return;
  const exited = once(server.child, 'exit');
  server.child.kill('SIGKILL');
  await exited;
}

describe('the label page', { timeout: 120_000 }, () => {
  let browser;
  const [lena, omar] = env.labellers;
  const labelUrl = () => url(`/p/${env.queueProject}/label`);

  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('an annotator labels three items with the keyboard, gets gold feedback and reaches the end', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      const previews = await previewHost(page);
      await signIn(page, lena);
      await page.goto(url(`/p/${env.queueProject}`));
      await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Label' }).click();
      assert.equal(await shownAfter(page, ''), GOLD, 'gold rate 1: the gold item comes first');
      assert.match(await page.locator('.reservation').textContent(), /Reserved for you for (10|9) more minutes/, 'lease 600 s');
      const shortcuts = await page.getByRole('region', { name: 'Keyboard shortcuts' }).textContent();
      for (const key of ['Enter', 'U', 'S', 'V', 'P']) assert.ok(shortcuts.includes(key), `the ${key} shortcut is shown`);

      // Wellbeing: the cover is blurred until revealed, the preview is not even fetched.
      const cover = page.getByRole('img', { name: `Cover art of ${GOLD}` });
      await cover.waitFor();
      assert.match(await cover.getAttribute('class'), /blurred/);
      await screenshot(page, 'label-gold-item');
      await keys(page, 'v');
      assert.doesNotMatch((await cover.getAttribute('class')) || '', /blurred/);
      assert.equal(await page.locator('audio').count(), 0, 'no player until asked');
      assert.deepEqual(previews.filter((p) => p.endsWith('.mp3')), [], 'the preview is not fetched');

      // 3 = Violating (moves on to the categories), 3 = DG.HATE, ↓ to severity, 4 = S3.
      await keys(page, '3', '3', 'ArrowDown', '4');
      assert.deepEqual(await checkedValues(page), ['VIOLATING', 'DG.HATE', 'S3']);
      await keys(page, 'Enter');
      assert.equal(await shownAfter(page, GOLD), TRACK, 'the higher-priority ordinary item is next');
      const feedback = page.locator('#gold-feedback');
      assert.match(await feedback.textContent(), /Gold check on “Harbour Lights \(gold\)”: your answer matched/);
      assert.match(await page.locator('#save-status').textContent(), /^Saved ✓ \d{1,2}:\d{2}.* — Undo/);
      assert.deepEqual(await checkedValues(page), [], 'the form starts empty for the next item');
      await screenshot(page, 'label-gold-feedback');

      // 1 = Not violating, ↓ past the optional categories, 1 = S0.
      await keys(page, '1', 'ArrowDown', '1', 'Enter');
      assert.equal(await shownAfter(page, TRACK), EPISODE);
      assert.ok(await feedback.isHidden(), 'no gold feedback for an ordinary item');
      assert.match(await page.locator('.transcript').textContent(), /Welcome back to the night shift/);

      // Enter with nothing chosen names the missing answer and sends nothing.
      await keys(page, 'Enter');
      assert.match(await page.locator('fieldset.question.active .field-error').textContent(), /needs an answer/);
      assert.equal(await page.locator('#item-slot h1').textContent(), EPISODE);

      // 2 = Borderline, ↓, 3 = S2, R to write a rationale, Ctrl+Enter submits from it.
      await keys(page, '2', 'ArrowDown', '3', 'r');
      await page.keyboard.type('Host jokes about a slur; quoted, not endorsed.');
      await keys(page, 'Control+Enter');
      await shownAfter(page, EPISODE);
      assert.equal(await page.locator('#item-slot [data-status]').getAttribute('data-status'), 'empty');
      assert.match(await page.locator('#item-slot').textContent(), /No more items for you/);
      assert.ok(await page.locator('#answer-form').isHidden(), 'no answer form without an item');
      await screenshot(page, 'label-end-of-queue');

      await page.getByRole('link', { name: 'My work' }).first().click();
      assert.equal((await page.locator('#done-today').textContent()).trim(), '3');
      const rows = page.locator('#my-annotations tbody tr');
      assert.equal(await rows.count(), 3);
      assert.match(await rows.filter({ hasText: GOLD }).textContent(), /matched/);
      assert.match(await rows.filter({ hasText: EPISODE }).textContent(), /decision: BORDERLINE/);
      await screenshot(page, 'my-work');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('a second annotator sees none of the first one\'s labels and gets the reference answer for a wrong gold', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await previewHost(page);
      await signIn(page, omar);
      await page.goto(labelUrl());
      assert.equal(await shownAfter(page, ''), GOLD);
      assert.deepEqual(await checkedValues(page), [], 'nothing is pre-filled');
      await keys(page, '1', 'ArrowDown', '1', 'Enter');
      assert.equal(await shownAfter(page, GOLD), TRACK, 'the item lena labelled is served again (overlap 2)');
      assert.match(
        await page.locator('#gold-feedback').textContent(),
        /did not match\. Reference answer — decision: Violating; severity: S3 violating\./,
      );
      assert.deepEqual(await checkedValues(page), [], 'lena\'s answer is not shown');
      const html = await page.content();
      for (const secret of [lena.username, 'Host jokes']) {
        assert.ok(!html.includes(secret), `the page does not reveal ${secret}`);
      }
      const work = await page.request.get(url(`/api/v1/projects/${env.queueProject}/queue/mine`));
      const mine = await work.json();
      assert.deepEqual(mine.annotations.map((a) => a.title), [GOLD], 'my work holds only omar\'s own answer');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('a submit whose response is lost is retried by the page and stored once', async () => {
    const session = await openPage(browser);
    const { page } = session;
    session.expectNetworkFailures();
    try {
      await previewHost(page);
      await signIn(page, omar);
      await page.goto(labelUrl());
      assert.equal(await shownAfter(page, ''), TRACK, 'the lease omar holds is resumed');
      let attempts = 0;
      await page.route('**/label/submit', async (route) => {
        attempts += 1;
        if (attempts === 1) {
          // The server commits, then the connection drops before the page hears back.
          await route.fetch();
          await route.abort('connectionreset');
        } else {
          await route.continue();
        }
      });
      await keys(page, '2', 'ArrowDown', '3', 'Enter');
      assert.equal(await shownAfter(page, TRACK), EPISODE);
      assert.equal(attempts, 2, 'the page sent the answer again');
      assert.match(await page.locator('#save-status').textContent(), /the server already had this answer/);
      const mine = await (await page.request.get(url(`/api/v1/projects/${env.queueProject}/queue/mine`))).json();
      assert.equal(mine.annotations.filter((a) => a.title === TRACK).length, 1, 'stored exactly once');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('an answer given while the server is down is kept, and stored once after the restart', async () => {
    let server = await startServer();
    const session = await openPage(browser);
    const { page } = session;
    session.expectNetworkFailures();
    try {
      await previewHost(page);
      await signInAt(page, server.url, omar);
      await page.goto(`${server.url}/p/${env.queueProject}/label`);
      assert.equal(await shownAfter(page, ''), EPISODE);

      // A half-given answer survives a reload.
      await keys(page, '2');
      await page.reload();
      assert.equal(await shownAfter(page, ''), EPISODE);
      assert.match(await page.locator('#item-slot').textContent(), /already working on this one/);
      assert.deepEqual(await checkedValues(page), ['BORDERLINE'], 'the draft is restored');

      await stopServer(server);
      // The restored page highlights the first question without an answer: the categories.
      await keys(page, 'ArrowDown', '2', 'Enter');
      await page.locator('#save-status', { hasText: 'cannot be reached' }).waitFor();
      assert.ok(
        await page.evaluate(() => Object.keys(localStorage).some((k) => k.startsWith('concord.pending.'))),
        'the unsent answer is kept in the browser',
      );
      await screenshot(page, 'label-server-down');
      server = await startServer(server.port);
      await shownAfter(page, EPISODE);
      assert.match(await page.locator('#item-slot').textContent(), /No more items for you/);
      assert.match(await page.locator('#save-status').textContent(), /^Saved/);
      const mine = await (await page.request.get(`${server.url}/api/v1/projects/${env.queueProject}/queue/mine`)).json();
      assert.deepEqual(
        mine.annotations.map((a) => a.title).sort(),
        [EPISODE, GOLD, TRACK].sort(),
        'each of omar\'s answers is stored exactly once',
      );
      session.assertNoProblems();
    } finally {
      await session.close();
      await stopServer(server);
    }
  });

  test('the project manager sees the team: progress, gold accuracy with its interval, limits', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.queueProject}`));
      await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Team' }).click();
      const row = (name) => page.locator(`#team tr[data-username="${name}"]`);
      assert.match(await row(lena.username).textContent(), /100 %/);
      assert.match(await row(omar.username).textContent(), /0 %/);
      assert.match(await row(lena.username).textContent(), /\(\d+–100 %, 1\/1\)/, 'a Wilson interval is shown');
      const limits = row(omar.username).locator('form', { hasText: 'Daily cap' });
      await limits.getByLabel('Daily cap').fill('40');
      await limits.getByLabel('Excluded categories').fill('DG.SELF');
      await limits.getByRole('button', { name: 'Save' }).click();
      await page.waitForLoadState();
      assert.equal(await row(omar.username).getByLabel('Daily cap').inputValue(), '40');
      assert.equal(await row(omar.username).getByLabel('Excluded categories').inputValue(), 'DG.SELF');
      assert.match(await row(omar.username).textContent(), /\/ 40/);
      await screenshot(page, 'team');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });
});
