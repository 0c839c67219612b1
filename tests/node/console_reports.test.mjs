// Reports in the console: an admin reads the figures of the last 30 days
// (conversations made through the API, then spread over the period in the
// server's SQLite file), filters them by channel with the GET form,
// downloads the CSV, and an agent sees its own figures. axe on each page;
// screenshots at 1280 and 375 px wide.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  SHOTS, adminPage, adminToken, chatd, launchChromium, logIn, newAgent, newPage, newVisitor, post, visitorSays,
} from './console_browser.mjs';

let browser;

const DAY = 86_400_000;
const MIN = 60_000;

/**
 * Screenshots of the whole page at 1280 and 375 px wide (the viewport as
 * tall as the page, so that the sticky top bar stays on top).
 */
async function widths(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(SHOTS, `console-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** Writes a conversation's times in the server's SQLite file. */
function setTimes(id, created, firstResponse, closed) {
  const db = path.join(server.tmpDir, 'chatgate.db');
  const sql = `UPDATE conversations SET created_at = ${created}, queued_at = ${created}, `
    + `first_response_at = ${firstResponse ?? 'NULL'}, closed_at = ${closed ?? 'NULL'} WHERE id = '${id}'`;
  execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, sql]);
}

/**
 * A conversation answered by the agent of `token`, replied to, closed and
 * rated `rating` (none when null); its id.
 */
async function conversation(token, rating, channelId) {
  const visitor = channelId
    ? await post('/chatplugin.authenticate', { channel_id: channelId })
    : await newVisitor();
  await visitorSays(visitor, 'Where is my order?');
  const id = visitor.conversation_id;
  await chatd('PUT', `/queues/${id}/answer`, token);
  await chatd('POST', `/users/me/rooms/${id}/messages`, token, { content: 'Let me check.' });
  await chatd('PUT', `/users/me/rooms/${id}/state`, token, { state: 'closed' });
  if (rating) {
    await post('/chatplugin.rate', { rating }, { authorization: `Bearer ${visitor.token}` });
  }
  return id;
}

describe('console: reports', () => {
  before(async () => {
    // 26 visitors from this one address in a few seconds: over the
    // default burst (this file runs in a process of its own).
    process.env.CHATGATE_AUTHENTICATE_BURST = '100';
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test('an admin reads the figures, filters them and downloads the CSV; an agent sees its own', { timeout: 2 * TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const admin = await adminToken();
    const bea = await newAgent('Bea');
    const beaToken = (await post('/api/auth/0.1/token', {}, {
      authorization: `Basic ${Buffer.from(`${bea.email}:${bea.password}`).toString('base64')}`,
    })).data.token;
    const shop = (await post('/channels.chatplugin.connect', { name: 'Shop' }, { authorization: `Bearer ${admin}` })).id;

    // 24 conversations over the last 20 days, at office hours, most on
    // weekdays; Bea has a third of them, the shop a quarter.
    const now = Date.now();
    const today = now - (now % DAY);
    const ratings = [5, 4, 5, 3, 5, 4, 2, 5, 4, 5, 1, 4];
    for (let k = 0; k < 24; k += 1) {
      const token = k % 3 === 0 ? beaToken : admin;
      const id = await conversation(token, ratings[k % ratings.length], k % 4 === 0 ? shop : null);
      const created = today - (k % 20) * DAY + (9 + (k * 5) % 9) * 60 * MIN + (k * 7 % 60) * MIN;
      const start = Math.min(created, now - 10 * MIN);
      setTimes(id, start, start + (15 + (k * 37) % 150) * 1000, start + (20 + (k * 13) % 90) * MIN);
    }
    // One the visitor is still waiting for, since an hour.
    const waiting = await newVisitor();
    await visitorSays(waiting, 'Hello?');
    setTimes(waiting.conversation_id, now - 60 * MIN, null, null);

    const { page, problems } = await adminPage(browser);
    await page.goto(`${server.baseUrl}/console/reports`);
    await page.locator('h1', { hasText: 'Reports' }).waitFor();
    const cards = page.locator('.kpi');
    assert.equal(await cards.count(), 5);
    assert.match(await cards.nth(0).textContent(), /25\s+24 answered · 24 closed/);
    assert.match(await page.locator('.kpi', { hasText: 'Average rating' }).textContent(), /3\.9 \/ 5/);
    assert.equal(await page.locator('svg[role=img]').count(), 3);
    assert.equal(await page.locator('svg[role=img] rect.bar').count(), 30 + 5);
    await assertAccessible(page, 'the reports page');
    // The tables behind the charts, opened, are accessible too.
    for (const summary of await page.locator('details.chart-data summary').all()) await summary.click();
    await assertAccessible(page, 'the reports page with its tables open');
    for (const summary of await page.locator('details.chart-data summary').all()) await summary.click();
    await widths(page, 'reports');

    // The form filters with a plain GET.
    await page.selectOption('select[name=channel]', shop);
    await Promise.all([page.waitForNavigation(), page.locator('button', { hasText: 'Show' }).click()]);
    assert.match(page.url(), new RegExp(`channel=${shop}`));
    assert.match(await cards.nth(0).textContent(), /^\s*Conversations\s+6\s/);
    assert.match(await page.locator('.report-head').textContent(), /Shop · All agents/);

    // The CSV carries the page's filters.
    const href = await page.locator('a', { hasText: 'Download CSV' }).getAttribute('href');
    assert.match(href, new RegExp(`channel=${shop}`));
    const csv = await page.request.get(server.baseUrl + href);
    assert.equal(csv.status(), 200);
    assert.equal(csv.headers()['content-type'], 'text/csv; charset=utf-8');
    assert.match(csv.headers()['content-disposition'], /^attachment; filename="chatgate-report-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv"$/);
    const lines = (await csv.text()).trim().split('\r\n');
    assert.equal(lines.length, 1 + 30 + 1);
    assert.match(lines.at(-1), /^total,6,6,6,/);

    // A bad period: the form says what to fix.
    await page.fill('input[name=from]', '2026-12-31');
    await page.fill('input[name=to]', '2026-01-01');
    await Promise.all([page.waitForNavigation(), page.locator('button', { hasText: 'Show' }).click()]);
    await page.locator('.alert.error', { hasText: 'from must not be after to' }).waitFor();
    await assertAccessible(page, 'the reports page refusing a period');
    // The refusal's 400 is the one error the browser logs.
    assert.deepEqual(problems.filter((p) => !/status of 400/.test(p)), []);

    // Bea: her own figures, no agent filter.
    const opened = await newPage(browser);
    await logIn(opened.page, bea.email, bea.password);
    await opened.page.goto(`${server.baseUrl}/console/reports`);
    await opened.page.locator('.report-head', { hasText: 'All channels · Bea' }).waitFor();
    assert.equal(await opened.page.locator('select[name=agent]').count(), 0);
    assert.match(await opened.page.locator('.kpi').nth(0).textContent(), /^\s*Conversations\s+8\s/);
    await assertAccessible(opened.page, 'an agent\'s reports page');
    await widths(opened.page, 'reports-agent');
    assert.deepEqual(opened.problems, []);
  }));
});
