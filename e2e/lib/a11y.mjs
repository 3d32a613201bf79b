// Accessibility checks with axe-core (Deque's rules engine) run inside the page under test.
//
// The engine's source is evaluated through the DevTools protocol rather than added as a
// <script> tag: the pages' Content-Security-Policy allows only their own scripts, and the
// suite keeps that policy on (it checks that nothing violates it).

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let source;

/** The impacts a page may not have: axe's two highest. */
export const BLOCKING_IMPACTS = ['serious', 'critical'];

async function axeSource() {
  source ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  return source;
}

/**
 * Runs axe on the page as it is now (WCAG 2.x A and AA rules and axe's best practices) and
 * returns its serious and critical violations, each as `{ id, impact, help, helpUrl, nodes }`
 * with `nodes` the CSS selectors and a short summary of what is wrong at each.
 */
export async function blockingViolations(page) {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) await page.evaluate(await axeSource());
  const violations = await page.evaluate(async () => {
    const results = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary || '' })),
    }));
  });
  return violations.filter((v) => BLOCKING_IMPACTS.includes(v.impact));
}

/**
 * A readable account of violations found on several pages: one block per page and rule,
 * with up to five of the elements and what axe says is wrong with the first.
 * `found` is a list of `{ where, violations }`.
 */
export function describeViolations(found) {
  const lines = [];
  for (const { where, violations } of found) {
    for (const v of violations) {
      lines.push(`${where}: [${v.impact}] ${v.id}: ${v.help} (${v.nodes.length} element(s); ${v.helpUrl})`);
      for (const node of v.nodes.slice(0, 5)) lines.push(`    ${node.target}`);
      const first = v.nodes[0]?.summary.replace(/\s+/g, ' ').trim();
      if (first) lines.push(`    → ${first}`);
    }
  }
  return lines.join('\n');
}
