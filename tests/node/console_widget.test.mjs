// The whole product in two browsers: a visitor writes in the widget on the
// demo page; an agent in the console sees the visitor queue up live,
// answers, replies; the visitor sees the reply; the agent sees it
// delivered, then read, and sees the visitor's page and name beside the
// conversation. Real chatgate, real Chromium (Debian's), no mocks.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import {
  SHUTDOWN_TIMEOUT_MS,
  STARTUP_TIMEOUT_MS,
  TEST_TIMEOUT_MS,
  WAIT_MS,
  server,
  startServer,
  stopServer,
  withServerLogs,
} from './chatgate_server.mjs';
import { CHROMIUM, launchBrowser, openPanel, sendText, until, waitRow, widget } from './widget_helpers.mjs';

let browser;
const SHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');

/** Screenshots of `page` at desktop and phone widths, for people to look at. */
async function shots(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const [width, height] of [[1280, 800], [375, 740]]) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

describe('the widget on the demo page and the agent console', () => {
  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
    }
    await startServer();
    browser = await launchBrowser();
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('a visitor is queued live, answered and replied to; delivered, then read; the agent sees the page', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    // The agent is in the console first, as on a normal day.
    const agentContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const console_ = await agentContext.newPage();
    console_.setDefaultTimeout(WAIT_MS);
    const problems = [];
    console_.on('pageerror', (err) => problems.push(err.message));
    await console_.goto(server.baseUrl + '/console/login');
    await console_.fill('input[name=email]', server.adminEmail);
    await console_.fill('input[name=password]', server.adminPassword);
    await Promise.all([console_.waitForURL('**/console/inbox'), console_.click('button[type=submit]')]);
    await console_.waitForSelector('html[data-live=true]', { state: 'attached' });
    await console_.evaluate(() => { window.__sameDocument = true; });

    // The visitor, on the demo shop page, says who they are and writes.
    const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const shop = await visitorContext.newPage();
    const demoUrl = `${server.baseUrl}/demo?channel_id=${server.demoChannelId}`;
    await shop.goto(demoUrl);
    await widget(shop).locator('.lc').waitFor();
    await shop.evaluate(() => window.chatgate.setVisitor({ name: 'Ana Tester', email: 'ana@example.com' }));
    await openPanel(shop);
    const question = `Is the sencha in stock? ${crypto.randomUUID().slice(0, 8)}`;
    await sendText(shop, question);

    // The console shows the visitor waiting, without a reload.
    const queued = console_.locator('[data-list=queue] .row', { hasText: question });
    await queued.waitFor();
    assert.match(await queued.textContent(), /Ana Tester/, 'the name the site gave');
    assert.equal(await console_.evaluate(() => window.__sameDocument), true, 'no reload');
    const room = await queued.getAttribute('data-room');
    await Promise.all([
      console_.waitForURL(new RegExp(`/console/rooms/${room}(#latest)?$`)),
      queued.locator('button[data-answer]').click(),
    ]);
    await console_.waitForSelector('html[data-live=true]', { state: 'attached' });

    // Beside the conversation: the page the visitor is on.
    const link = console_.locator('.visitor-info [data-visitor-url]');
    assert.equal(await link.getAttribute('href'), demoUrl);
    assert.match(await console_.locator('.visitor-info').textContent(), /ana@example\.com/);

    // The reply reaches the widget, on the left.
    const reply = `Yes, 40 tins left. ${crypto.randomUUID().slice(0, 8)}`;
    await console_.locator('[data-reply]').fill(reply);
    await console_.locator('[data-reply]').press('Enter');
    await waitRow(shop, reply);
    assert.equal(await widget(shop).locator('.m.l').filter({ hasText: reply }).count(), 1);

    // The agent sees it delivered, then read (the panel is open and visible).
    const mine = console_.locator('.msg.mine', { hasText: reply });
    await until(async () => (await mine.locator('.tick.delivered, .tick.read').count()) === 1, 'a delivered tick');
    await until(async () => (await mine.locator('.tick.read').count()) === 1, 'the read tick');
    await shots(console_, 'console-conversation-with-visitor');
    await shots(shop, 'demo-with-reply');
    assert.deepEqual(problems, [], 'no script errors in the console');
    await agentContext.close();
    await visitorContext.close();
  }));
});
