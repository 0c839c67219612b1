// Identified visitors, several conversations, blocking (desk-api.md,
// "Support desk") in the widget and the console:
// - a site signs its customer's id (data-identity-id / -hash / -name on the
//   script tag); the customer finds the conversation from another browser;
// - once closed: "New conversation" starts another, "Previous
//   conversations" lists the others and opens one to read;
// - a blocked visitor is told so, and the composer goes;
// - the console shows "verified" beside the visitor and a Block / Unblock
//   action.
// axe finds nothing serious; screenshots in $IDENTITY_SHOTS or
// target/screenshots/: identity-*.png, console-identity-*.png.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  CHATD,
  adminLogin,
  answer,
  hostPage,
  launchBrowser,
  openPanel,
  queuedRoom,
  rest,
  rowTexts,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const OUT = process.env.IDENTITY_SHOTS || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

let browser;
let host;
let admin;
let secret;

const sign = (id) => crypto.createHmac('sha256', secret).update(id).digest('hex');
const shown = async (loc) => (await loc.count()) === 1 && (await loc.isVisible());
const button = (page, name) => widget(page).getByRole('button', { name, exact: true });

async function setState(room, state) {
  const res = await rest('PUT', `${CHATD}/users/me/rooms/${room}/state`, { token: admin, body: { state } });
  assert.equal(res.status, 200, res.text);
}

async function getRoom(room) {
  const res = await rest('GET', `${CHATD}/rooms/${room}`, { token: admin });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/** Sends `text` from the page's widget; the queued room, answered by the admin. */
async function asks(page, text) {
  await sendText(page, text);
  await waitTick(page, text, 'sent');
  const room = (await queuedRoom(admin, server.demoChannelId, text)).uuid;
  await answer(admin, room);
  return room;
}

async function screenshots(page, name) {
  for (const [device, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(OUT, `${name}-${device}.png`) });
  }
  await page.setViewportSize(SIZES.desktop);
}

describe('widget: identified visitors, conversations, blocking', { timeout: 240_000 }, () => {
  before(async () => {
    await startServer();
    admin = await adminLogin();
    const info = await rest('POST', '/channels.info', { token: admin, body: { channel_id: server.demoChannelId } });
    assert.equal(info.status, 200, info.text);
    secret = info.body.identity_secret;
    host = await startHostServer({
      '/': () => hostPage({ channels: [server.demoChannelId] }),
      '/me': (q) => {
        const id = q.get('id');
        const hash = q.get('hash') || sign(id);
        return hostPage({
          channels: [server.demoChannelId],
          attrs: `data-identity-id="${id}" data-identity-hash="${hash}" data-identity-name="Ada Lovelace" data-identity-email="ada@example.com"`,
        });
      },
    });
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('a signed-in customer finds the conversation on another browser, starts a new one, reopens the old', withServerLogs(async () => {
    const id = `customer-${crypto.randomUUID().slice(0, 8)}`;
    const laptop = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const one = await laptop.newPage();
    await one.goto(`${host.origin}/me?id=${id}`);
    await openPanel(one);
    assert.equal(await button(one, 'New conversation').isVisible(), false, 'nothing to start anew yet');
    assert.equal(await button(one, 'Previous conversations').isVisible(), false);
    const question = `Where is my parcel? ${id}`;
    const first = await asks(one, question);
    const room = await getRoom(first);
    assert.equal(room.verified, true, 'agents see a verified visitor');

    // Another browser (nothing stored): the same conversation, by identity alone.
    const phone = await browser.newContext({ viewport: SIZES.phone, reducedMotion: 'reduce' });
    const two = await phone.newPage();
    await two.goto(`${host.origin}/me?id=${id}`);
    await openPanel(two);
    await waitRow(two, question);

    // Closed: New conversation and Previous conversations are offered.
    await setState(first, 'closed');
    await until(() => shown(button(two, 'New conversation')), 'New conversation once closed');
    assert.equal(await shown(button(two, 'Previous conversations')), true);
    await assertAccessible(two, 'widget: a closed conversation with its actions', 'chatgate-widget');
    await screenshots(two, 'identity-closed');

    await button(two, 'New conversation').click();
    await until(async () => !(await rowTexts(two)).includes(question), 'the old conversation to leave the log');
    assert.equal(await button(two, 'New conversation').isVisible(), false, 'an open conversation offers no new one');
    const again = `Another question ${id}`;
    const second = await asks(two, again);
    assert.notEqual(second, first);
    assert.equal((await getRoom(second)).verified, true);

    // Closed too: the previous one is listed and opens, to read.
    await setState(second, 'closed');
    await until(() => shown(button(two, 'Previous conversations')), 'Previous conversations');
    await button(two, 'Previous conversations').click();
    const listed = widget(two).locator('.cv button');
    await until(async () => (await listed.count()) === 1, 'one previous conversation listed');
    await assertAccessible(two, 'widget: the previous conversations', 'chatgate-widget');
    await screenshots(two, 'identity-list');
    await listed.first().click();
    await waitRow(two, question);
    assert.equal((await rowTexts(two)).includes(again), false, 'only the opened conversation shows');
    await laptop.close();
    await phone.close();
  }));

  test('a wrongly signed identity gets no conversation', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    const refused = page.waitForResponse((r) => r.url().endsWith('/chatplugin.authenticate'));
    await page.goto(`${host.origin}/me?id=victim&hash=${'0'.repeat(64)}`);
    const reply = await refused;
    assert.equal(reply.status(), 401);
    assert.equal((await reply.json()).error_id, 'identity-not-verified');
    await context.close();
  }));

  test('a blocked visitor is told, and the console shows verified and Block / Unblock', withServerLogs(async () => {
    const id = `troll-${crypto.randomUUID().slice(0, 8)}`;
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(`${host.origin}/me?id=${id}`);
    await openPanel(page);
    const words = `Hello ${id}`;
    const room = await asks(page, words);

    // The console: "verified" beside the visitor, then Block.
    const consolePage = await context.newPage();
    await consolePage.goto(server.baseUrl + '/console/login');
    await consolePage.fill('input[name=email]', server.adminEmail);
    await consolePage.fill('input[name=password]', server.adminPassword);
    await Promise.all([consolePage.waitForURL('**/console/inbox'), consolePage.click('button[type=submit]')]);
    await consolePage.goto(`${server.baseUrl}/console/rooms/${room}`);
    const title = consolePage.locator('.conv-title h1');
    assert.equal(await title.locator('.verified').textContent(), 'verified');
    assert.equal(await consolePage.locator(`[data-room="${room}"] .verified`).count() >= 1, true, 'the list row says verified too');
    await assertAccessible(consolePage, 'console: a verified visitor');
    await consolePage.getByRole('button', { name: 'Block', exact: true }).click();
    await consolePage.waitForURL(`**/console/rooms/${room}?notice=blocked*`);
    assert.equal(await consolePage.locator('.conv-title .blocked').textContent(), 'blocked');
    assert.equal(await consolePage.getByRole('button', { name: 'Unblock', exact: true }).count(), 1);
    assert.equal((await getRoom(room)).blocked, true);
    await assertAccessible(consolePage, 'console: a blocked visitor');
    for (const colorScheme of ['light', 'dark']) {
      await consolePage.emulateMedia({ colorScheme });
      await screenshots(consolePage, `console-identity-blocked-${colorScheme}`);
    }

    // The widget: the next message is refused and the visitor is told.
    await sendText(page, 'let me in');
    const note = widget(page).locator('.note', { hasText: 'You can no longer send messages in this chat.' });
    await until(() => note.isVisible(), 'the blocked note');
    assert.equal(await widget(page).locator('textarea').isVisible(), false, 'no composer');
    await assertAccessible(page, 'widget: blocked', 'chatgate-widget');
    await screenshots(page, 'identity-blocked');
    // After a reload too (the authenticate is refused).
    await page.reload();
    await openPanel(page);
    await until(() => note.isVisible(), 'the blocked note after a reload');
    const texts = (await rest('GET', `${CHATD}/users/me/rooms/${room}/messages?direction=asc&limit=100`, { token: admin })).body.items.map((m) => m.content);
    assert.equal(texts.includes('let me in'), false, texts.join(' | '));

    // Unblock: the console shows Block again, and the visitor writes again.
    await consolePage.getByRole('button', { name: 'Unblock', exact: true }).click();
    await consolePage.waitForURL(`**/console/rooms/${room}?notice=unblocked*`);
    assert.equal(await consolePage.getByRole('button', { name: 'Block', exact: true }).count(), 1);
    assert.equal((await getRoom(room)).blocked, false);
    await page.reload();
    await openPanel(page);
    await sendText(page, 'sorry');
    await waitTick(page, 'sorry', 'sent');
    await context.close();
  }));

  test('the channel settings show the identity secret, and Rotate makes a new one', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(server.baseUrl + '/console/login');
    await page.fill('input[name=email]', server.adminEmail);
    await page.fill('input[name=password]', server.adminPassword);
    await Promise.all([page.waitForURL('**/console/inbox'), page.click('button[type=submit]')]);
    await page.goto(`${server.baseUrl}/console/admin/channels/${server.demoChannelId}`);
    const shownSecret = page.locator('#identity-secret');
    assert.equal((await shownSecret.textContent()).trim(), secret);
    await assertAccessible(page, 'console: channel settings with the identity secret');
    page.once('dialog', (d) => d.accept());
    await Promise.all([
      page.waitForURL('**?rotated=1'),
      page.getByRole('button', { name: 'Rotate secret' }).click(),
    ]);
    const rotated = (await shownSecret.textContent()).trim();
    assert.notEqual(rotated, secret);
    assert.match(rotated, /^[0-9a-f]{64}$/);
    assert.equal(await page.getByRole('status').filter({ hasText: 'previous one still works' }).count(), 1);
    const info = await rest('POST', '/channels.info', { token: admin, body: { channel_id: server.demoChannelId } });
    assert.equal(info.body.identity_secret, rotated);
    await screenshots(page, 'console-identity-secret');
    await context.close();
  }));
});
