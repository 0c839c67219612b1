// Accessibility checks with axe-core, shared by the browser tests: every
// console page and every widget state runs `assertAccessible`, which fails
// on any violation of impact "serious" or "critical" (the standing check of
// README "Accessibility").
//
// axe is evaluated through the DevTools protocol (page.evaluate), so the
// console's Content-Security-Policy (no inline script) does not stop it; it
// walks open shadow roots, so the widget is checked inside its host page.
//
// This file is not a test file itself (its name matches none of node
// --test's patterns).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Impacts that fail a test. */
export const FAILING_IMPACTS = ['serious', 'critical'];

/**
 * The serious and critical axe violations of the page as it is now, each
 * as `rule (impact): target -> summary`. `context` is an axe context (a
 * selector or `{include, exclude}`); the whole document by default.
 */
export async function axeViolations(page, context) {
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!loaded) {
    await page.evaluate(AXE_SOURCE);
  }
  const violations = await page.evaluate(async (ctx) => {
    const result = await window.axe.run(ctx || document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => ({
        target: n.target.map((t) => (Array.isArray(t) ? t.join(' >> ') : t)).join(' >> '),
        summary: (n.failureSummary || '').replace(/\s+/g, ' ').trim(),
        impact: n.impact,
      })),
    }));
  }, context ?? null);
  const lines = [];
  for (const v of violations) {
    for (const n of v.nodes) {
      const impact = n.impact || v.impact;
      if (FAILING_IMPACTS.includes(impact)) {
        lines.push(`${v.id} (${impact}): ${n.target} -> ${n.summary}`);
      }
    }
  }
  return lines;
}

/** Fails with every serious or critical violation, named by `label`. */
export async function assertAccessible(page, label, context) {
  const lines = await axeViolations(page, context);
  assert.deepEqual(lines, [], `${label}: axe found serious or critical violations:\n${lines.join('\n')}`);
}
