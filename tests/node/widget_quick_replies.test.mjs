// Quick replies in the widget (desk-api.md, "Quick replies"): the buttons of
// the latest agent message show under it as real <button>s (keyboard
// reachable, a visible focus ring, text at 4.5:1); a click sends the title
// as the visitor's message with the payload as postback, and the buttons go;
// they go too when the visitor types something else, or when a newer agent
// message offers none. axe finds nothing serious with the buttons shown,
// light and dark, desktop and phone. Screenshots in $QR_SHOTS (when set)
// or target/screenshots/ (not committed): qr-<device>-<scheme>.png.

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
  agentSays,
  answer,
  hostPage,
  launchBrowser,
  openPanel,
  queuedRoom,
  rest,
  roomMessages,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const OUT = process.env.QR_SHOTS || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const BUTTONS = [
  { title: 'Yes, track my order', payload: 'track' },
  { title: 'No', payload: 'no' },
  { title: 'Talk to a person', payload: '{"route":"human"}' },
];

let browser;
let host;
let admin;

/** WCAG contrast ratio of two computed CSS colours (rgb() or rgba(), opaque). */
function contrast(a, b) {
  const lum = (css) => {
    const [r, g, b2] = css.match(/[\d.]+/g).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b2;
  };
  const [x, y] = [lum(a), lum(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

const buttons = (page) => widget(page).locator('.log .qr button');

async function offer(room, content, quickReplies = BUTTONS) {
  const res = await rest('POST', `${CHATD}/users/me/rooms/${room}/messages`, {
    token: admin,
    body: { content, quick_replies: quickReplies },
  });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** A visitor who wrote, and the admin who answered: the room's uuid. */
async function conversation(page) {
  await openPanel(page);
  const question = `Where is my order? ${crypto.randomUUID().slice(0, 8)}`;
  await sendText(page, question);
  await waitTick(page, question, 'sent');
  const room = (await queuedRoom(admin, server.demoChannelId, question)).uuid;
  await answer(admin, room);
  return room;
}

const titles = (page) => buttons(page).allTextContents();

describe('widget: quick replies', { timeout: 180_000 }, () => {
  before(async () => {
    await startServer();
    admin = await adminLogin();
    host = await startHostServer({ '/': () => hostPage({ channels: [server.demoChannelId] }) });
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('a click sends the title with the payload as postback, and the buttons go', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    const room = await conversation(page);
    const question = 'Would you like me to track your order?';
    await offer(room, question);
    await waitRow(page, question);
    await until(async () => (await buttons(page).count()) === BUTTONS.length, 'the quick reply buttons');
    assert.deepEqual(await titles(page), BUTTONS.map((b) => b.title));
    for (const b of await buttons(page).all()) {
      assert.equal(await b.getAttribute('type'), 'button');
      const [fg, bg] = await b.evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
      assert.ok(contrast(fg, bg) >= 4.5, `button text contrast ${contrast(fg, bg)}`);
    }
    // Right under the question: the row before the buttons is the question.
    const before = await widget(page).locator('.log .qr').evaluate((d) => d.previousElementSibling.textContent);
    assert.ok(before.includes(question), before);

    // Keyboard: Shift+Tab from the text box reaches the last button, with a focus ring.
    await widget(page).locator('textarea').focus();
    await page.keyboard.press('Shift+Tab');
    const focused = await page.evaluate(() => {
      const a = document.activeElement.shadowRoot.activeElement;
      const s = getComputedStyle(a);
      return { text: a.textContent, tag: a.tagName, outline: s.outlineStyle, width: s.outlineWidth };
    });
    assert.deepEqual(focused, { text: BUTTONS[2].title, tag: 'BUTTON', outline: 'solid', width: '2px' });
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter'); // the middle one: "No"
    await waitTick(page, 'No', 'sent');
    await until(async () => (await buttons(page).count()) === 0, 'the buttons to go after a choice');
    let stored = (await roomMessages(admin, room)).at(-1);
    assert.equal(stored.content, 'No');
    assert.equal(stored.postback, 'no');
    assert.deepEqual(stored.quick_replies, []);
    const focusInWidget = await page.evaluate(() => document.activeElement.shadowRoot?.activeElement?.className);
    assert.equal(focusInWidget, 'log', 'focus stays in the conversation');

    // Offered again: a mouse click on the first one.
    await offer(room, 'Shall I track it after all?');
    await until(async () => (await buttons(page).count()) === BUTTONS.length, 'the buttons again');
    await buttons(page).first().click();
    await waitTick(page, BUTTONS[0].title, 'sent');
    await until(async () => (await buttons(page).count()) === 0, 'the buttons to go after a click');
    stored = (await roomMessages(admin, room)).at(-1);
    assert.equal(stored.content, BUTTONS[0].title);
    assert.equal(stored.postback, 'track');

    // Typing something else takes them away too, and sends no postback.
    await offer(room, 'Anything else?');
    await until(async () => (await buttons(page).count()) === BUTTONS.length, 'the buttons once more');
    await sendText(page, 'Actually, a question about tea');
    await until(async () => (await buttons(page).count()) === 0, 'the buttons to go when the visitor types');
    await waitTick(page, 'Actually, a question about tea', 'sent');
    stored = (await roomMessages(admin, room)).at(-1);
    assert.equal(stored.postback, null);

    // Only the latest agent message's buttons show: a newer plain message hides them.
    await offer(room, 'Green or black?', [{ title: 'Green', payload: 'g' }, { title: 'Black', payload: 'b' }]);
    await until(async () => (await buttons(page).count()) === 2, 'two buttons');
    await agentSays(admin, room, 'Take your time.');
    await waitRow(page, 'Take your time.');
    await until(async () => (await buttons(page).count()) === 0, 'no buttons under a newer plain message');

    // A returning visitor sees the buttons of the latest message from history.
    await offer(room, 'Green or black, then?', [{ title: 'Green', payload: 'g' }, { title: 'Black', payload: 'b' }]);
    await until(async () => (await buttons(page).count()) === 2, 'two buttons again');
    await page.reload();
    await openPanel(page);
    await until(async () => (await titles(page)).join() === 'Green,Black', 'the buttons after a reload');
    await context.close();
  }));

  for (const [device, viewport] of Object.entries(SIZES)) {
    test(`axe and screenshots with buttons shown (${device})`, withServerLogs(async () => {
      const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
      const page = await context.newPage();
      await page.goto(host.origin + '/');
      const room = await conversation(page);
      await offer(room, 'Happy to help! Would you like me to track your order?');
      await until(async () => (await buttons(page).count()) === BUTTONS.length, 'the quick reply buttons');
      for (const colorScheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme });
        await assertAccessible(page, `${device} ${colorScheme}: quick replies shown`);
        for (const b of await buttons(page).all()) {
          const [fg, bg] = await b.evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
          assert.ok(contrast(fg, bg) >= 4.5, `${colorScheme}: button text contrast ${contrast(fg, bg)}`);
        }
        // Every button wholly inside the panel (they wrap, never overflow).
        const inside = await widget(page).locator('.log').evaluate((log) => {
          const box = log.getBoundingClientRect();
          return [...log.querySelectorAll('.qr button')].every((b) => {
            const r = b.getBoundingClientRect();
            return r.left >= box.left && r.right <= box.right;
          });
        });
        assert.ok(inside, `${colorScheme}: buttons inside the conversation`);
        await page.screenshot({ path: path.join(OUT, `qr-${device}-${colorScheme}.png`) });
      }
      await context.close();
    }));
  }
});
