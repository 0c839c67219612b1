// The widget never hides a message: it follows the conversation while the
// visitor is at the bottom (long messages included), shows a "new message"
// marker when the visitor reads further up, and keeps the last message in
// view when the conversation closes (one status line, not stacked notes).
// Headless Chromium against a real chatgate; the agent answers through REST.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  adminLogin,
  agentSays,
  answer,
  hostPage,
  launchBrowser,
  openPanel,
  queuedRoom,
  rest,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 375, height: 740 } };

let browser;
let host;
let admin;

/** The message row showing exactly `text`. */
const row = (page, text) =>
  widget(page).locator('.log .m[data-seq]').filter({ has: page.locator('.b, .sys', { hasText: text }) }).last();

/** Whether the whole of `locator` lies inside the visible part of the conversation. */
const inView = (locator) =>
  locator.evaluate((el) => {
    const a = el.getBoundingClientRect();
    const b = el.closest('.log').getBoundingClientRect();
    return a.height > 0 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  });

/** Scrolls the conversation to `where` ('top' or 'bottom') and waits for its scroll event. */
const scrollLog = (page, where) =>
  widget(page)
    .locator('.log')
    .evaluate(
      (l, w) =>
        new Promise((resolve) => {
          const to = w === 'top' ? 0 : l.scrollHeight - l.clientHeight;
          if (Math.abs(l.scrollTop - to) < 1) return resolve();
          l.addEventListener('scroll', resolve, { once: true });
          l.scrollTop = to;
        }),
      where,
    );

/** A new agent of the tenant, logged in: `{uuid, token}`. */
async function newAgent(name) {
  const email = `${name.toLowerCase()}-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const password = `pw-${crypto.randomUUID()}`;
  const made = await rest('POST', '/api/chatd/1.0/agents', { token: admin, body: { email, display_name: name, password, role: 'agent' } });
  assert.ok(made.status === 200 || made.status === 201, made.text);
  const basic = Buffer.from(`${email}:${password}`).toString('base64');
  const login = await rest('POST', '/api/auth/0.1/token', { body: { expiration: 3600 }, headers: { authorization: `Basic ${basic}` } });
  assert.equal(login.status, 200, login.text);
  return { uuid: made.body.uuid, token: login.body.data.token };
}

/** A visitor who wrote, and an agent who answered: the room's uuid. */
async function conversation(page) {
  await openPanel(page);
  const question = `A question ${crypto.randomUUID()}`;
  await sendText(page, question);
  await waitTick(page, question, 'sent');
  const room = (await queuedRoom(admin, server.demoChannelId, question)).uuid;
  await answer(admin, room);
  return room;
}

describe('widget: following the conversation', { timeout: 90_000 }, () => {
  before(async () => {
    await startServer();
    admin = await adminLogin();
    host = await startHostServer({
      '/': () => hostPage({ channels: [server.demoChannelId] }),
      '/fr': () => hostPage({ channels: [server.demoChannelId], lang: 'fr' }),
    });
    browser = await launchBrowser();
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('after a long agent message the next reply is in view; read further up, a marker', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    const room = await conversation(page);

    const long = Array.from({ length: 16 }, (_, i) => `Step ${i + 1} of the long answer.`).join('\n');
    await agentSays(admin, room, long);
    await waitRow(page, long);
    const next = `The next reply ${crypto.randomUUID()}`;
    await agentSays(admin, room, next);
    await waitRow(page, next);
    assert.ok(await inView(row(page, next)), 'the reply after a long message is in view');
    const more = widget(page).locator('.more');
    assert.equal(await more.isVisible(), false, 'no marker while following');

    // The visitor reads back: a new message does not pull them away; a marker shows.
    await scrollLog(page, 'top');
    const unseen = `While you read back ${crypto.randomUUID()}`;
    await agentSays(admin, room, unseen);
    await waitRow(page, unseen);
    await until(() => more.isVisible(), 'the new message marker');
    assert.equal(await widget(page).locator('.log').evaluate((l) => l.scrollTop), 0, 'still where the visitor reads');
    assert.equal(await inView(row(page, unseen)), false);
    assert.match(await more.textContent(), /New message/);
    assert.equal(await more.getAttribute('type'), 'button');
    assert.ok(await more.evaluate((b) => !!b.closest('[role="status"], [aria-live="polite"]')), 'announced politely');
    await more.click();
    await until(() => inView(row(page, unseen)), 'the marker to bring the new message into view');
    assert.equal(await more.isVisible(), false, 'marker gone at the bottom');

    // Reaching the bottom by scrolling clears it too.
    await scrollLog(page, 'top');
    const again = `One more ${crypto.randomUUID()}`;
    await agentSays(admin, room, again);
    await waitRow(page, again);
    await until(() => more.isVisible(), 'the marker again');
    await scrollLog(page, 'bottom');
    await until(async () => !(await more.isVisible()), 'the marker to go at the bottom');

    // Following again: the next message comes into view by itself.
    const last = `Following again ${crypto.randomUUID()}`;
    await agentSays(admin, room, last);
    await waitRow(page, last);
    assert.ok(await inView(row(page, last)));
    assert.equal(await more.isVisible(), false);
    await context.close();
  }));

  test('system notices in the visitor\'s language (French page)', withServerLogs(async () => {
    const context = await browser.newContext({ reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/fr');
    const room = await conversation(page);
    const notices = () => widget(page).locator('.log .sys').allTextContents();
    await until(async () => (await notices()).length === 1, 'the notice of the agent joining');
    const [joined] = await notices();
    assert.match(joined, /^\S.* a rejoint la conversation$/, 'agent_joined in French');
    const stored = (await rest('GET', `/api/chatd/1.0/users/me/rooms/${room}/messages?direction=asc&limit=100`, { token: admin })).body.items;
    const notice = stored.find((m) => m.notice?.type === 'agent_joined');
    assert.ok(notice, 'the server sent a structured notice');
    assert.equal(joined, `${notice.notice.params.agent} a rejoint la conversation`);
    assert.notEqual(joined, notice.content, 'not the English content');

    // Handed to a colleague, who closes it.
    const bruno = await newAgent('Bruno');
    const moved = await rest('POST', `/api/chatd/1.0/users/me/rooms/${room}/transfers`, { token: admin, body: { user_uuid: bruno.uuid } });
    assert.equal(moved.status, 200, moved.text);
    const handed = `${notice.notice.params.agent} a confié la conversation à Bruno`;
    await until(async () => (await notices()).includes(handed), 'the transfer notice in French');
    const closed = await rest('PUT', `/api/chatd/1.0/users/me/rooms/${room}/state`, { token: bruno.token, body: { state: 'closed' } });
    assert.equal(closed.status, 200, closed.text);
    await until(async () => (await notices()).includes('Conversation fermée'), 'the closed notice in French');
    await until(() => widget(page).locator('.note', { hasText: 'Cette conversation a été fermée' }).isVisible(), 'the French status line');
    assert.deepEqual(await notices(), [joined, handed, 'Conversation fermée']);

    // The same history on an English page reads in English.
    await page.goto(host.origin + '/');
    await until(async () => (await notices()).length === 3, 'the history on the English page');
    const who = notice.notice.params.agent;
    assert.deepEqual(await notices(), [`${who} joined the conversation`, `${who} handed the conversation to Bruno`, 'Conversation closed']);
    await context.close();
  }));

  for (const [device, viewport] of Object.entries(SIZES)) {
    test(`closing (${device}): one status line, the last agent message stays in view`, withServerLogs(async () => {
      const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
      const page = await context.newPage();
      await page.goto(host.origin + '/');
      const room = await conversation(page);
      for (let i = 1; i <= 4; i++) await agentSays(admin, room, `Answer number ${i}, with a few words to fill a line.`);
      const lastWords = `Last words before closing ${crypto.randomUUID()}`;
      await agentSays(admin, room, lastWords);
      await waitRow(page, lastWords);
      // No agent is connected: the widget says the team is away.
      const note = (text) => widget(page).locator('.note', { hasText: text });
      await until(() => note('We are away').isVisible(), 'the away note');
      assert.ok(await inView(row(page, lastWords)), 'in view before closing');

      const closed = await rest('PUT', `/api/chatd/1.0/users/me/rooms/${room}/state`, { token: admin, body: { state: 'closed' } });
      assert.equal(closed.status, 200, closed.text);
      await until(() => note('This conversation was closed').isVisible(), 'the closed note');
      const notes = await widget(page).locator('.note').evaluateAll((els) => els.filter((e) => e.getClientRects().length).map((e) => e.textContent));
      assert.deepEqual(notes, ['This conversation was closed. Write to us again to reopen it.'], 'one status line');
      assert.ok(await inView(row(page, lastWords)), 'the last agent message stays in view');
      const [log, status] = await Promise.all([widget(page).locator('.log').boundingBox(), note('closed').boundingBox()]);
      assert.ok(status.y >= log.y + log.height - 0.5, 'the status line covers no message');

      // Back later: the conversation still reads as closed.
      await page.reload();
      await openPanel(page);
      await waitRow(page, lastWords);
      await until(() => note('This conversation was closed').isVisible(), 'the closed note after a reload');
      assert.ok(await inView(row(page, lastWords)), 'the last agent message in view after a reload');

      // Writing again reopens it: the status line goes back to "away".
      await sendText(page, 'Actually, one more thing');
      await until(() => note('We are away').isVisible(), 'the away note after reopening');
      assert.equal(await widget(page).locator('.note:visible').count(), 1);
      await context.close();
    }));
  }
});
