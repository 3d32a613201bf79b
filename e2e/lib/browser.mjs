// Shared set-up for the browser suite: the server and accounts the Rust runner prepared, a
// headless Chromium, and a page that records every console error, uncaught exception and
// Content-Security-Policy violation so a test can insist there were none.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run this suite through \`cargo test -p concord-cli --test cli browser\`, ` +
        'which starts a server and passes its address and accounts in CONCORD_E2E_* variables',
    );
  }
  return value;
}

/** What the runner (crates/cli/tests/cli/browser.rs, browser_end_to_end_suite_passes) set up. */
export const env = {
  get baseUrl() {
    return required('CONCORD_E2E_BASE_URL').replace(/\/$/, '');
  },
  /** The project holding the imported fixture catalog (fixtures/catalog.jsonl). */
  get project() {
    return required('CONCORD_E2E_PROJECT');
  },
  get projectName() {
    return required('CONCORD_E2E_PROJECT_NAME');
  },
  /** An empty project the import scenario uploads into, so other counts stay fixed. */
  get importProject() {
    return required('CONCORD_E2E_IMPORT_PROJECT');
  },
  get itemCount() {
    return Number(required('CONCORD_E2E_ITEM_COUNT'));
  },
  get manager() {
    return { username: required('CONCORD_E2E_MANAGER'), password: required('CONCORD_E2E_MANAGER_PASSWORD') };
  },
  /** The administrator (every page, the users page). */
  get admin() {
    return { username: required('CONCORD_E2E_ADMIN'), password: required('CONCORD_E2E_ADMIN_PASSWORD') };
  },
  get annotator() {
    return { username: required('CONCORD_E2E_ANNOTATOR'), password: required('CONCORD_E2E_ANNOTATOR_PASSWORD') };
  },
  /** The work-queue project (fixtures/queue.jsonl, fixtures/queue-settings.json). */
  get queueProject() {
    return required('CONCORD_E2E_QUEUE_PROJECT');
  },
  /** The two annotators of the queue project; nobody else takes work there. */
  get labellers() {
    return [1, 2].map((n) => ({
      username: required(`CONCORD_E2E_LABELLER_${n}`),
      password: required(`CONCORD_E2E_LABELLER_${n}_PASSWORD`),
    }));
  },
  /** A second queue project (fixtures/skip.jsonl) and its one annotator. */
  get skipProject() {
    return required('CONCORD_E2E_SKIP_PROJECT');
  },
  get skipper() {
    return { username: required('CONCORD_E2E_SKIPPER'), password: required('CONCORD_E2E_SKIPPER_PASSWORD') };
  },
  /** The QA project (fixtures/qa-items.jsonl, fixtures/qa-labels.jsonl), consensus computed. */
  get qaProject() {
    return required('CONCORD_E2E_QA_PROJECT');
  },
  /** The QA expert of the QA project; labelled nothing there. */
  get expert() {
    return { username: required('CONCORD_E2E_EXPERT'), password: required('CONCORD_E2E_EXPERT_PASSWORD') };
  },
  /** The project of the automated-annotators scenario (fixtures/models.jsonl), no model yet. */
  get modelProject() {
    return required('CONCORD_E2E_MODEL_PROJECT');
  },
  get modelItemCount() {
    return Number(required('CONCORD_E2E_MODEL_ITEM_COUNT'));
  },
  /** The `concord` binary and the suite's database, for scenarios that run their own server. */
  get binary() {
    return required('CONCORD_E2E_BINARY');
  },
  get database() {
    return required('CONCORD_E2E_DATABASE');
  },
};

/** Saves a full-page screenshot as e2e/output/NAME.png (the folder is not in git). */
export async function screenshot(page, name) {
  const file = fileURLToPath(new URL(`../output/${name}.png`, import.meta.url));
  await mkdir(dirname(file), { recursive: true });
  await page.screenshot({ path: file, fullPage: true });
}

export function fixture(name) {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/** Where the item pages point their previews; nothing may be fetched from it unasked. */
export const PREVIEW_HOST = 'preview.concord-e2e.invalid';

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CONCORD_E2E_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * A fresh browser context (no cookies) and page whose problems are collected:
 * console errors, uncaught page errors, and CSP violations (reported by the
 * `securitypolicyviolation` DOM event as well as Chromium's console message).
 *
 * A page served with an error status makes Chromium log "Failed to load resource: the server
 * responded with a status of N". Where a test expects such a page it calls `expectStatus(N)`.
 */
export async function openPage(browser) {
  const context = await browser.newContext();
  const problems = [];
  const visited = [];
  const expectedStatuses = new Set();
  let networkFailuresExpected = false;
  await context.exposeBinding('__concordE2eCspViolation', ({ page }, violation) => {
    problems.push(`CSP violation on ${page.url()}: ${violation}`);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const report = `${event.effectiveDirective} blocked ${event.blockedURI || '(inline)'}` +
        (event.sourceFile ? ` at ${event.sourceFile}:${event.lineNumber}` : '');
      window.__concordE2eCspViolation(report);
    });
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    const status = /responded with a status of (\d{3})/.exec(text);
    if (status && expectedStatuses.has(Number(status[1]))) return;
    if (networkFailuresExpected && /net::ERR_/.test(text)) return;
    problems.push(`console error on ${page.url()}: ${text}`);
  });
  page.on('pageerror', (error) => {
    problems.push(`uncaught exception on ${page.url()}: ${error.message}`);
  });
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) visited.push(frame.url());
  });
  return {
    context,
    page,
    problems,
    visited,
    expectStatus(status) {
      expectedStatuses.add(status);
    },
    /** The test cuts connections on purpose; Chromium logs each failed request as an error. */
    expectNetworkFailures() {
      networkFailuresExpected = true;
    },
    /** Scenario (e): every page this test visited was free of console errors and CSP violations. */
    assertNoProblems() {
      assert.deepEqual(problems, [], `problems on the visited pages:\n  ${visited.join('\n  ')}`);
    },
    async close() {
      await context.close();
    },
  };
}

export function url(path) {
  return env.baseUrl + path;
}

/** Signs in through the login form and waits for the page it lands on. */
export async function signIn(page, { username, password }) {
  await page.goto(url('/login'));
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** The text of every cell in one column of the items table. */
export async function columnTexts(page, column) {
  return page.locator(`#items tbody tr td:nth-child(${column})`).allTextContents().then((texts) => texts.map((t) => t.trim()));
}

/** On the label page: waits until it shows an item (or a queue message) titled other than
 * `previous`, and returns the new title. */
export async function shownAfter(page, previous) {
  await page.waitForFunction((prev) => {
    const slot = document.getElementById('item-slot');
    const shown = slot && slot.querySelector('[data-status]');
    if (!shown || slot.getAttribute('aria-busy') !== 'false') return false;
    const title = shown.querySelector('h1');
    return (title ? title.textContent : '') !== prev;
  }, previous);
  return page.locator('#item-slot h1').textContent();
}

/**
 * Runs a `concord` command on the suite's database (the server keeps serving it), as the
 * runner's own set-up does; returns what it printed. `input` goes to standard input.
 */
export async function concord(args, input = '') {
  const { spawn } = await import('node:child_process');
  const child = spawn(env.binary, [...args, '--database-url', env.database], {
    env: { ...process.env, CONCORD_TEST_FAST_PASSWORD_HASH: '1', NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.stdin.end(input);
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`concord ${args.join(' ')} failed (${code}): ${err}`);
  return out;
}

/** An API token for an account (created with the CLI). */
export async function apiToken(username) {
  const out = await concord(['user', 'token', username, '--name', 'e2e']);
  const token = out.trim();
  if (!token.startsWith('cnc_')) throw new Error(`no token in ${JSON.stringify(out)}`);
  return token;
}

/** The page's horizontal overflow: how far the document is wider than the window. */
export async function horizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

/** Elements wider than the window (for a useful failure message). */
export async function overflowingElements(page) {
  return page.evaluate(() => {
    const limit = window.innerWidth;
    const found = [];
    for (const el of document.querySelectorAll('body *')) {
      const box = el.getBoundingClientRect();
      if (box.right > limit + 1 && box.width > 0) {
        const path = el.tagName.toLowerCase() + (el.id ? `#${el.id}` : '') + (el.className && typeof el.className === 'string' ? `.${el.className.split(' ').join('.')}` : '');
        found.push(`${path} (right ${Math.round(box.right)})`);
      }
    }
    return found.slice(0, 8);
  });
}
