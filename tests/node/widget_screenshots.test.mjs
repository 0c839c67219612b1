// Screenshots of the demo shop with the widget, desktop (1280 px) and phone
// (375 px), light and dark, English and French, in target/screenshots/ (not
// committed): for people to look at. Per combination:
//   <device>-<scheme>-<lang>-launcher.png      closed, with an unread badge
//   <device>-<scheme>-<lang>-open.png          a new visitor opens the panel
//   <device>-<scheme>-<lang>-conversation.png  visitor and agent messages, notices
//   <device>-<scheme>-<lang>-marker.png        read back when a reply came
//   <device>-<scheme>-<lang>-ended.png         the conversation was closed
// The test checks that the panel fits the viewport, is full screen on the
// phone, and that the newest message is in view.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { adminLogin, agentSays, answer, launchBrowser, openPanel, queuedRoom, rest, sendText, until, waitRow, waitTick, widget } from './widget_helpers.mjs';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 375, height: 740 } };
const NAME = 'Kettle & Crane';

let browser;

/** The newest message row is wholly inside the visible part of the conversation. */
const newestInView = (page) =>
  widget(page)
    .locator('.log')
    .evaluate((log) => {
      const rows = log.querySelectorAll('.m[data-seq]');
      const a = rows[rows.length - 1].getBoundingClientRect();
      const b = log.getBoundingClientRect();
      return a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
    });

describe('widget screenshots', { timeout: 180_000 }, () => {
  before(async () => {
    await startServer();
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('launcher, open, conversation and ended; light and dark; en and fr; desktop and phone', withServerLogs(async () => {
    const admin = await adminLogin();
    const update = await rest('POST', '/channels.update', {
      token: admin,
      body: {
        channel_id: server.demoChannelId,
        name: NAME,
        color: '#2f6b4f',
        welcome_message: 'Hi! Questions about a tea, brewing or your order? Our tasters are happy to help.',
      },
    });
    assert.equal(update.status, 200, update.text);
    const demo = (lang) => `${server.baseUrl}/demo?channel_id=${server.demoChannelId}&lang=${lang}`;

    /** A visitor's conversation through the demo page, kept as a browser storage state. */
    async function conversation(script) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(demo('en'));
      await openPanel(page);
      const room = await script(page);
      const state = await context.storageState();
      await context.close();
      return { room, state };
    }
    async function ask(page, question) {
      await sendText(page, question);
      await waitTick(page, question, 'sent');
      const room = (await queuedRoom(admin, server.demoChannelId, question)).uuid;
      await answer(admin, room);
      return room;
    }

    const ongoing = await conversation(async (page) => {
      const room = await ask(page, 'Hello! Is the First Flush Darjeeling good for cold brew?');
      await agentSays(admin, room, 'It is lovely cold-brewed: 8 g per litre, 8 hours in the fridge, then strain.');
      await agentSays(admin, room, 'Our guide: https://example.com/cold-brew');
      await waitRow(page, 'Our guide: https://example.com/cold-brew');
      await sendText(page, 'Perfect, thank you!');
      await waitTick(page, 'Perfect, thank you!', 'sent');
      await rest('PUT', `/api/chatd/1.0/users/me/rooms/${room}/read`, { token: admin });
      await waitTick(page, 'Perfect, thank you!', 'read');
      return room;
    });
    const ended = await conversation(async (page) => {
      const room = await ask(page, 'Can I change the address of order 1042?');
      await agentSays(admin, room, 'Done: order 1042 now ships to 12 rue des Lilas, Lyon. Anything else?');
      await waitRow(page, 'Done: order 1042 now ships to 12 rue des Lilas, Lyon. Anything else?');
      await sendText(page, 'No, that is all. Thanks!');
      await waitTick(page, 'No, that is all. Thanks!', 'sent');
      await agentSays(admin, room, 'Have a lovely day!');
      const closed = await rest('PUT', `/api/chatd/1.0/users/me/rooms/${room}/state`, { token: admin, body: { state: 'closed' } });
      assert.equal(closed.status, 200, closed.text);
      await until(() => widget(page).locator('.note', { hasText: 'closed' }).isVisible(), 'the closed note');
      return room;
    });

    let first = true;
    for (const [device, viewport] of Object.entries(SIZES)) {
      for (const colorScheme of ['light', 'dark']) {
        for (const lang of ['en', 'fr']) {
          const shot = (page, state) => page.screenshot({ path: path.join(OUT, `${device}-${colorScheme}-${lang}-${state}.png`) });
          const options = { viewport, colorScheme, reducedMotion: 'reduce' };
          const fits = async (page) => {
            const box = await widget(page).locator('.p').boundingBox();
            assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= viewport.width && box.y + box.height <= viewport.height, `panel inside the ${device} viewport`);
            if (device === 'phone') assert.deepEqual([box.width, box.height], [viewport.width, viewport.height], 'full screen on a phone');
          };

          // A new visitor opens the panel.
          const fresh = await browser.newContext(options);
          const p1 = await fresh.newPage();
          await p1.goto(demo(lang));
          await openPanel(p1);
          await until(async () => (await widget(p1).locator('.hd .nm').textContent()) === NAME, 'the header');
          await p1.locator('body').hover({ position: { x: 5, y: 5 } });
          await shot(p1, 'open');
          await fits(p1);
          await fresh.close();

          // A returning visitor with a reply not seen yet: the badge, then the conversation.
          const back = await browser.newContext({ ...options, storageState: ongoing.state });
          const p2 = await back.newPage();
          await p2.goto(demo(lang));
          await widget(p2).locator('.lc').waitFor();
          const reply = first ? 'Anything else I can do for you?' : `Anything else? (${device}, ${colorScheme}, ${lang})`;
          first = false;
          await agentSays(admin, ongoing.room, reply);
          await waitRow(p2, reply);
          await until(() => widget(p2).locator('.bdg').isVisible(), 'the unread badge');
          await shot(p2, 'launcher');
          await openPanel(p2);
          await until(async () => (await widget(p2).locator('.hd .nm').textContent()) === NAME, 'the header');
          await p2.locator('body').hover({ position: { x: 5, y: 5 } });
          assert.ok(await newestInView(p2), 'the newest message in view');
          await shot(p2, 'conversation');
          await fits(p2);
          // Reading back when a reply comes: the "new message" marker.
          await widget(p2)
            .locator('.log')
            .evaluate((l) => new Promise((resolve) => {
              l.addEventListener('scroll', resolve, { once: true });
              l.scrollTop = 0;
            }));
          await agentSays(admin, ongoing.room, lang === 'fr' ? 'Voici aussi notre guide des infusions à froid.' : 'Here is our cold brew guide as well.');
          await until(() => widget(p2).locator('.more').isVisible(), 'the new message marker');
          await shot(p2, 'marker');
          await back.close();

          // The conversation was closed.
          const over = await browser.newContext({ ...options, storageState: ended.state });
          const p3 = await over.newPage();
          await p3.goto(demo(lang));
          await openPanel(p3);
          await until(() => widget(p3).locator('.note').isVisible(), 'the closed status line');
          await waitRow(p3, 'Have a lovely day!');
          await p3.locator('body').hover({ position: { x: 5, y: 5 } });
          assert.ok(await newestInView(p3), 'the newest message in view');
          await shot(p3, 'ended');
          await over.close();
        }
      }
    }
    for (const f of fs.readdirSync(OUT)) assert.ok(fs.statSync(path.join(OUT, f)).size > 5000, `${f} is an image`);
  }));
});
