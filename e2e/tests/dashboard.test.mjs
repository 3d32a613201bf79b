// (j) The analyst's dashboard: its charts are drawn from the same numbers an ML engineer gets
// by running `concord agreement` and `concord aggregate` on a release exported from the
// database (an independent path: the export, the file reader and the CLI, not the page's code).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { concord as concordCli, env, launchBrowser, openPage, screenshot, signIn, url } from '../lib/browser.mjs';

/** A platform command on the suite's database. */
function concordDb(...args) {
  return concord(...args, '--database-url', env.database);
}

function concord(...args) {
  return execFileSync(env.binary, args, {
    encoding: 'utf8',
    env: { ...process.env, CONCORD_TEST_FAST_PASSWORD_HASH: '1' },
  });
}

describe('dashboard', { timeout: 120_000 }, () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('the charts show the α and consensus that the CLI computes from the exported release', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.qaProject}/dashboard`));
      const alpha = Number(await page.locator('#alpha-severity').getAttribute('data-value'));
      assert.ok(Number.isFinite(alpha), 'the dashboard shows α for severity');
      const bars = page.locator('#chart-consensus-severity rect.bar');
      const shown = {};
      for (const bar of await bars.all()) {
        shown[await bar.getAttribute('data-label')] = Number(await bar.getAttribute('data-value'));
      }
      for (const id of ['#chart-states', '#chart-volume', '#chart-annotators', '#chart-alpha-severity']) {
        assert.ok(await page.locator(id).isVisible(), `${id} is drawn`);
      }
      assert.equal(await page.locator('#chart-annotators rect.bar').count(), 2, 'two annotators labelled');
      await screenshot(page, 'dashboard');

      // The independent path: a release, its labels exported, the engine's CLI on the file.
      const dir = mkdtempSync(join(tmpdir(), 'concord-e2e-release-'));
      const labels = join(dir, 'severity.csv');
      concordDb('release', 'create', env.qaProject, 'dashboard-check');
      concordDb('release', 'export', env.qaProject, 'dashboard-check', '--labels', '--question', 'severity',
        '--format', 'csv', '--out', labels);
      assert.match(readFileSync(labels, 'utf8'), /^item,annotator,label\n/);
      const agreement = JSON.parse(concord('agreement', labels, '--level', 'ordinal',
        '--categories', 'S0,S1,S2,S3,S4', '--metric', 'alpha', '--format', 'json'));
      assert.ok(Math.abs(agreement.metrics[0].value - alpha) < 1e-9,
        `dashboard α ${alpha} vs concord agreement ${agreement.metrics[0].value}`);
      const aggregate = JSON.parse(concord('aggregate', labels, '--method', 'mv', '--format', 'json'));
      const counted = {};
      for (const item of aggregate.items) counted[item.label] = (counted[item.label] ?? 0) + 1;
      const nonZero = Object.fromEntries(Object.entries(shown).filter(([, n]) => n > 0));
      assert.deepEqual(nonZero, counted, 'consensus bars = labels chosen by concord aggregate');

      // The release is on the releases page with its download links.
      await page.goto(url(`/p/${env.qaProject}/releases`));
      const row = page.locator('#release-dashboard-check');
      assert.match(await row.innerText(), /3/);
      const download = page.waitForEvent('download');
      await row.getByRole('link', { name: 'severity.csv' }).click();
      const file = await (await download).path();
      assert.equal(readFileSync(file, 'utf8'), readFileSync(labels, 'utf8'), 'the page serves the same file');
    } finally {
      await session.close();
    }
  });

  test('a bar tells its number in a tooltip on hover and on keyboard focus', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.qaProject}/dashboard`));
      const tip = page.locator('#chart-tip');
      const [first, second] = await page.locator('#chart-annotators rect.bar').all();
      const said = async (bar) => `${await bar.getAttribute('data-label')}: ${await bar.getAttribute('data-value')}`;
      await first.hover();
      await tip.waitFor({ state: 'visible' });
      assert.equal(await tip.innerText(), await said(first), 'hovering a bar shows its annotator and count');
      await page.mouse.move(0, 0);
      await tip.waitFor({ state: 'hidden' });
      await second.focus();
      await tip.waitFor({ state: 'visible' });
      assert.equal(await tip.innerText(), await said(second), 'focusing a bar shows its number too');
      assert.equal(await second.evaluate((bar) => bar.querySelector('title').textContent), await said(second),
        'the number is also the bar’s accessible name');
    } finally {
      await session.close();
    }
  });

  test('a fresh project’s charts say what will appear in them', async () => {
    const slug = 'chart-empty';
    await concordCli(['project', 'create', slug, '--name', 'Chart empty', '--manager', env.manager.username]);
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${slug}/dashboard`));
      const annotators = page.locator('#chart-annotators');
      assert.equal(await annotators.getAttribute('class'), 'chart-empty');
      assert.equal(await annotators.innerText(),
        'No labels yet: the labels per annotator appear here once annotators submit.');
      assert.match(await page.locator('#chart-states').innerText(), /^No items yet: .* once items are imported\.$/);
      assert.equal(await page.locator('svg.chart').count(), 0, 'no empty axes are drawn');
      session.assertNoProblems();
    } finally {
      await session.close();
    }
  });

  test('the quality report weighs severity by its cost and the expert queue is ranked by expected cost', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.qaProject}/quality`));
      // Severity is ordinal without a matrix of its own: confusions cost the levels apart.
      const costs = page.locator('#question-severity table.costs[data-cost-source="ordinal_default"]');
      assert.ok(await costs.isVisible(), 'the cost matrix is shown');
      assert.match(await costs.locator('tbody tr').first().locator('td').last().innerText(), /^4(\.0)?$/);
      assert.match(await page.locator('#question-severity tr[data-metric="cost_alpha"]').innerText(), /cost distance/);
      await page.goto(url(`/p/${env.qaProject}/escalations`));
      const rows = page.locator('#escalations tbody tr');
      const ranked = [];
      for (const row of await rows.all()) {
        const priority = await row.locator('td').first().innerText();
        const cost = await row.locator('td.expected-cost').getAttribute('data-expected-cost');
        ranked.push([priority.split('\n')[0], cost === '' ? -1 : Number(cost)]);
      }
      for (let i = 1; i < ranked.length; i++) {
        if (ranked[i][0] === ranked[i - 1][0]) {
          assert.ok(ranked[i][1] <= ranked[i - 1][1], `ranked by expected cost within a priority: ${JSON.stringify(ranked)}`);
        }
      }
    } finally {
      await session.close();
    }
  });

  test('the project feedback report downloads as Markdown', async () => {
    const session = await openPage(browser);
    const { page } = session;
    try {
      await signIn(page, env.manager);
      await page.goto(url(`/p/${env.qaProject}/feedback`));
      assert.match(await page.locator('h1').innerText(), /Feedback: the whole project/);
      assert.ok(await page.locator('table.heat[data-question="severity"]').isVisible(), 'the confusion heat map is drawn');
      await screenshot(page, 'feedback');
      const download = page.waitForEvent('download');
      await page.locator('#download-md').click();
      const file = await download;
      assert.equal(file.suggestedFilename(), `${env.qaProject}-feedback.md`);
      const text = readFileSync(await file.path(), 'utf8');
      assert.match(text, /^# Feedback: QA review\n/);
      assert.match(text, /## Most frequent confusions/);
      assert.match(text, /## Guidelines that need work/);
    } finally {
      await session.close();
    }
  });
});
