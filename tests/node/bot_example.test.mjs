// Applications (desk-api.md, "Integrations") end to end: the example FAQ
// bot of examples/faq-bot runs as a child process with an application
// token made through the API; the demo channel names it as its bot. A
// visitor asks in the widget (Chromium), the bot answers with quick replies
// and a "Bot" marker, the visitor clicks "Talk to a human", and the bot
// hands over: the admin's console shows the room queued with the bot's
// messages. The Apps admin page creates an application (its token shown
// once) and passes axe. Screenshots at 1280 and 375 px wide in
// target/screenshots/: bot-widget-<width>.png, console-applications-<width>.png.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { SHOTS, adminPage, live } from './console_browser.mjs';
import { CHATD, adminLogin, hostPage, launchBrowser, openPanel, rest, sendText, startHostServer, until, waitRow, widget } from './widget_helpers.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BOT = path.join(REPO_ROOT, 'examples', 'faq-bot', 'bot.mjs');
const HOURS = 'We are open Monday to Friday, 9:00 to 17:30.';

let browser;
let host;
let bot;
let botLog = '';

/** Screenshots of `page` at 1280 and 375 px wide. */
async function widths(page, name, fullPage = false) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: width === 375 ? 740 : 800 });
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

describe('applications: the example FAQ bot', () => {
  before(async () => {
    await startServer();
    browser = await launchBrowser();
    host = await startHostServer({ '/': () => hostPage({ channels: [server.demoChannelId] }) });
  });

  after(async () => {
    if (bot && bot.exitCode === null) {
      const exited = new Promise((resolve) => bot.once('exit', resolve));
      bot.kill('SIGTERM');
      await exited;
    }
    await browser?.close();
    await host?.close();
    await stopServer();
  });

  test('the bot answers in the widget and hands over to the queue the console shows', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async (t) => {
    t.after(() => { if (!t.passed) console.error(`--- faq-bot output ---\n${botLog}`); });
    const admin = await adminLogin();
    const created = await rest('POST', `${CHATD}/applications`, {
      token: admin,
      body: { name: 'FAQ bot', scopes: ['conversations:read', 'conversations:write', 'messages:write'] },
    });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.token, /^cga_/);
    const set = await rest('POST', '/channels.update', {
      token: admin,
      body: { channel_id: server.demoChannelId, bot: created.body.uuid },
    });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.bot, created.body.uuid);

    bot = spawn(process.execPath, [BOT], {
      env: { ...process.env, CHATGATE_URL: server.baseUrl, CHATGATE_APP_TOKEN: created.body.token, POLL_MS: '200' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bot.stdout.on('data', (d) => { botLog += d; });
    bot.stderr.on('data', (d) => { botLog += d; });
    await until(() => botLog.includes('polling'), 'the bot to start');

    // The admin's console is open on the inbox meanwhile.
    const { page: consolePage, problems } = await adminPage(browser);

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    await openPanel(page);
    await sendText(page, 'What are your opening hours?');
    await waitRow(page, HOURS);
    // The bot's message: its name, marked "Bot", with its quick replies.
    const row = widget(page).locator('.log .m.l', { hasText: HOURS });
    const who = widget(page).locator('.log .m.l .who').last();
    assert.match(await who.textContent(), /FAQ bot/);
    assert.equal((await who.locator('.bot').textContent()).trim(), 'Bot');
    assert.equal(await row.count(), 1);
    const human = widget(page).locator('.log .qr button', { hasText: 'Talk to a human' });
    await human.waitFor();
    await widths(page, 'bot-widget');

    await human.click();
    await waitRow(page, 'Connecting you with a member of our team…');
    // Handed over: the room waits in the queue, the bot's messages in it.
    const queued = await until(async () => {
      const res = await rest('GET', `${CHATD}/queues`, { token: admin });
      return res.body.items[0];
    }, 'the room to return to the queue');
    assert.equal(queued.assignee_uuid, null);
    assert.ok(queued.users.every((u) => u.uuid !== created.body.uuid), 'the bot left');

    await live(consolePage);
    const link = consolePage.locator(`[data-list=queue] [data-room="${queued.uuid}"] a.queue-link`);
    await Promise.all([consolePage.waitForURL(`**/console/queue/${queued.uuid}`), link.click()]);
    const botMessage = consolePage.locator('.msg', { hasText: HOURS });
    await botMessage.waitFor();
    assert.match(await botMessage.locator('.sender').textContent(), /FAQ bot/);
    assert.equal((await botMessage.locator('.bot-tag').textContent()).trim(), 'Bot');
    // The visitor's choice, and the bot leaving.
    await consolePage.locator('.msg .qr-chosen code', { hasText: 'human' }).waitFor();
    await consolePage.locator('.msg .notice', { hasText: 'FAQ bot' }).waitFor();
    await widths(consolePage, 'console-bot-queued');

    // The Apps page: the bot listed; a new application's token shown once.
    await consolePage.goto(`${server.baseUrl}/console/admin/applications`);
    await consolePage.locator('tr[data-application-row]', { hasText: 'FAQ bot' }).waitFor();
    await consolePage.fill('input[name=name]', 'Order status bot');
    await consolePage.uncheck('input[name=scopes][value="conversations:write"]');
    await Promise.all([consolePage.waitForNavigation(), consolePage.locator('button', { hasText: 'Create application' }).click()]);
    const token = (await consolePage.locator('code[data-app-token]').textContent()).trim();
    assert.match(token, /^cga_[A-Za-z0-9]{43}$/);
    const mine = await rest('GET', `${CHATD}/users/me/rooms`, { token });
    assert.equal(mine.status, 200, mine.text);
    const listed = consolePage.locator('tr[data-application-row]', { hasText: 'Order status bot' });
    assert.match(await listed.textContent(), /conversations:read, messages:write/);
    await assertAccessible(consolePage, 'the applications page with a new token');
    await widths(consolePage, 'console-applications', true);
    await consolePage.goto(`${server.baseUrl}/console/admin/applications`);
    assert.equal(await consolePage.locator('code[data-app-token]').count(), 0, 'shown once');
    // Revoked from the page: the token stops working at once.
    await Promise.all([
      consolePage.waitForNavigation(),
      consolePage.locator('button[aria-label="Revoke Order status bot"]').click(),
    ]);
    assert.match(await listed.textContent(), /revoked/);
    const refused = await rest('GET', `${CHATD}/users/me/rooms`, { token });
    assert.equal(refused.status, 401, refused.text);
    await assertAccessible(consolePage, 'the applications page with a revoked application');
    assert.deepEqual(problems, []);
    await context.close();
  }));
});
