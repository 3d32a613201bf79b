// Issue 28, "done when": every page as every role, at 1366 and 390 px wide, with no console
// error, no link that answers 404, nothing wider than the window, and no serious or critical
// accessibility violation that axe-core finds.
//
// One server (the suite's), one sign-in per role. Each role walks the pages of the QA project
// (a consensus run, an escalation, feedback) and of a project of its own ("walk-review"), where
// it may also open the label page (which reserves an item) without moving the other
// scenarios' counts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { blockingViolations, describeViolations } from '../lib/a11y.mjs';
import { concord, env, fixture, launchBrowser, openPage, overflowingElements, signIn, url } from '../lib/browser.mjs';

const WALK = 'walk-review';
const WIDTHS = [1366, 390];

/** The people of the walk, by role; the walk's own accounts are made in `before`. */
function roles() {
  return [
    { role: 'administrator', account: env.admin },
    { role: 'project manager', account: env.manager },
    { role: 'QA analyst', account: { username: 'walk-analyst', password: 'walk-analyst-password' }, member: 'qa_analyst' },
    { role: 'QA expert', account: { username: 'walk-expert', password: 'walk-expert-password' }, member: 'qa_expert' },
    { role: 'annotator', account: { username: 'walk-annotator', password: 'walk-annotator-password' }, member: 'annotator' },
  ];
}

/** Every page of a project (the ones that take an id get one the walk found). */
function projectPages(slug, { itemId, username, label, calibrationRound }) {
  const p = `/p/${slug}`;
  const pages = [
    p, `${p}/guidelines`, `${p}/guidelines/edit`, `${p}/guidelines/v/1`, `${p}/guidelines/diff`,
    `${p}/guidelines/diff?from=1&to=1`, `${p}/guidelines/revision`,
    `${p}/items`, `${p}/items/${itemId}`, `${p}/import`, `${p}/settings`, `${p}/my-work`, `${p}/team`,
    `${p}/dashboard`, `${p}/quality`, `${p}/escalations`, `${p}/escalations?status=resolved`,
    `${p}/adjudicate/${itemId}`, `${p}/precedents`, `${p}/releases`, `${p}/feedback`,
    `${p}/feedback/${username}`, `${p}/escalation-rules`, `${p}/sql`, `${p}/models`, `${p}/retest`, `${p}/exposure`,
  ];
  if (label) pages.push(`${p}/label`);
  pages.push(`${p}/calibration`);
  if (calibrationRound) pages.push(`${p}/calibration/${calibrationRound}`);
  return pages;
}

/** The id of the first item of a project's item list, as its manager sees it. */
async function firstItemId(page, slug) {
  await page.goto(url(`/p/${slug}/items`));
  const href = await page.locator('#items tbody a').first().getAttribute('href');
  return /\/items\/(\d+)/.exec(href)[1];
}

describe('every page as every role', { timeout: 420_000 }, () => {
  let browser;
  const ids = {};
  before(async () => {
    browser = await launchBrowser();
    await concord(['project', 'create', WALK, '--name', 'Walk review', '--manager', env.manager.username]);
    await concord(['import', WALK, fixture('ui-items.jsonl')]);
    for (const { account, member } of roles()) {
      if (!member) continue;
      await concord(['user', 'add', account.username, '--password-stdin'], `${account.password}\n`);
      for (const slug of [WALK, env.qaProject]) {
        await concord(['project', 'member', slug, account.username, '--role', member]);
      }
    }
    // A calibration round on the walk's project (no hold: its label page still serves work).
    const opened = await concord(['calibration', 'open', WALK, '--name', 'Walk calibration', '--sample', '3', '--no-hold']);
    ids.calibrationRound = /^round (\d+) /.exec(opened)[1];
    const session = await openPage(browser);
    await signIn(session.page, env.manager);
    ids[WALK] = await firstItemId(session.page, WALK);
    ids[env.qaProject] = await firstItemId(session.page, env.qaProject);
    await session.close();
  });
  after(async () => {
    await browser?.close();
  });

  for (const { role, account } of roles()) {
    test(`as ${role}: no console error, no 404 link, no horizontal overflow, no serious accessibility violation`, async () => {
      const session = await openPage(browser);
      const { page } = session;
      // Pages a role may not open answer 403 (or 404 where the project is hidden); that is
      // their answer, not a problem of the page.
      session.expectStatus(403);
      session.expectStatus(404);
      const opened = [];
      const refused = [];
      const links = new Map();
      const overflow = [];
      const inaccessible = [];
      try {
        await signIn(page, account);
        const paths = ['/', '/account', '/admin/users'];
        for (const slug of [env.qaProject, WALK]) {
          paths.push(...projectPages(slug, {
            itemId: ids[slug], username: account.username, label: slug === WALK,
            calibrationRound: slug === WALK ? ids.calibrationRound : undefined,
          }));
        }
        for (const path of paths) {
          await page.setViewportSize({ width: WIDTHS[0], height: 900 });
          const response = await page.goto(url(path), { waitUntil: 'load' });
          const status = response.status();
          if (status === 403 || status === 404) {
            refused.push(`${path} ${status}`);
            continue;
          }
          assert.equal(status, 200, `${path} as ${role}`);
          opened.push(path);
          if (path.endsWith('/label')) {
            await page.waitForFunction(() => document.getElementById('item-slot')?.getAttribute('aria-busy') === 'false');
          }
          for (const width of WIDTHS) {
            await page.setViewportSize({ width, height: 900 });
            // One frame: the page's resize handlers run before the checks.
            await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => done())));
            const wider = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
            if (wider > 0) overflow.push(`${path} at ${width} px by ${wider} px: ${(await overflowingElements(page)).join(', ')}`);
            const violations = await blockingViolations(page);
            if (violations.length) inaccessible.push({ where: `${path} at ${width} px`, violations });
          }
          const hrefs = await page.locator('a[href]').evaluateAll((as) => as.map((a) => a.href));
          for (const href of hrefs) {
            if (!href.startsWith(env.baseUrl)) continue;
            const target = href.split('#')[0];
            if (!links.has(target)) links.set(target, path);
          }
        }
        const dead = [];
        for (const [target, from] of links) {
          const response = await page.request.get(target, { maxRedirects: 5 });
          if (response.status() === 404) dead.push(`${target} (on ${from})`);
        }
        assert.deepEqual(dead, [], `links answering 404 as ${role}`);
        assert.deepEqual(overflow, [], `pages wider than the window as ${role}`);
        assert.ok(
          inaccessible.length === 0,
          `serious or critical accessibility violations as ${role}:\n${describeViolations(inaccessible)}`,
        );
        assert.ok(opened.length >= 5, `${role} opened ${opened.length} pages; refused: ${refused.join(', ')}`);
        session.assertNoProblems();
      } finally {
        await session.close();
      }
    });
  }
});
