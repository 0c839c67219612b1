// Screenshots of the demo shop with the widget closed and open, light and
// dark, desktop (1280 px) and phone (375 px), in target/screenshots/ (not
// committed): for people to look at. The test checks that the panel fits
// the viewport and is full screen on the phone.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { adminLogin, agentSays, answer, launchBrowser, openPanel, queuedRoom, rest, sendText, until, waitRow, waitTick, widget } from './widget_helpers.mjs';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 375, height: 740 } };

let browser;

describe('widget screenshots', { timeout: 90_000 }, () => {
  before(async () => {
    await startServer();
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('closed and open, light and dark, desktop and phone', withServerLogs(async () => {
    const admin = await adminLogin();
    const update = await rest('POST', '/channels.update', {
      token: admin,
      body: {
        channel_id: server.demoChannelId,
        name: 'Kettle & Crane',
        color: '#2f6b4f',
        welcome_message: 'Hi! Questions about a tea, brewing or your order? Our tasters are happy to help.',
      },
    });
    assert.equal(update.status, 200, update.text);

    // One conversation, shared by every screenshot through the resume token.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.baseUrl}/demo?channel_id=${server.demoChannelId}`);
    await openPanel(page);
    const question = 'Hello! Is the First Flush Darjeeling good for cold brew?';
    await sendText(page, question);
    await waitTick(page, question, 'sent');
    const room = (await queuedRoom(admin, server.demoChannelId, question)).uuid;
    await answer(admin, room);
    await agentSays(admin, room, 'It is lovely cold-brewed: 8 g per litre, 8 hours in the fridge.');
    await agentSays(admin, room, 'Our guide: https://example.com/cold-brew');
    await waitRow(page, 'Our guide: https://example.com/cold-brew');
    await sendText(page, 'Perfect, thank you!');
    await waitTick(page, 'Perfect, thank you!', 'sent');
    await rest('PUT', `/api/chatd/1.0/users/me/rooms/${room}/read`, { token: admin });
    await waitTick(page, 'Perfect, thank you!', 'read');
    const state = await context.storageState();
    await context.close();

    // Each context starts from the same stored state: the replies sent since are unread.
    let unread = 0;
    for (const [device, viewport] of Object.entries(SIZES)) {
      for (const scheme of ['light', 'dark']) {
        const ctx = await browser.newContext({ viewport, colorScheme: scheme, storageState: state, reducedMotion: 'reduce' });
        const p = await ctx.newPage();
        await p.goto(`${server.baseUrl}/demo?channel_id=${server.demoChannelId}`);
        await widget(p).locator('.lc').waitFor();
        // A reply the visitor has not seen yet: the badge.
        await agentSays(admin, room, unread ? `Anything else? (${device}, ${scheme})` : 'Anything else I can do for you?');
        unread += 1;
        await until(async () => (await widget(p).locator('.bdg').textContent()) === String(unread), `the unread badge at ${unread}`);
        await p.screenshot({ path: path.join(OUT, `${device}-${scheme}-closed.png`) });
        await openPanel(p);
        await until(async () => (await widget(p).locator('.hd .nm').textContent()) === 'Kettle & Crane', 'the header');
        await p.locator('body').hover({ position: { x: 5, y: 5 } });
        await p.screenshot({ path: path.join(OUT, `${device}-${scheme}-open.png`) });
        const box = await widget(p).locator('.p').boundingBox();
        assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= viewport.width && box.y + box.height <= viewport.height, `panel inside the ${device} viewport`);
        if (device === 'phone') assert.deepEqual([box.width, box.height], [viewport.width, viewport.height], 'full screen on a phone');
        await ctx.close();
      }
    }
    for (const f of fs.readdirSync(OUT)) assert.ok(fs.statSync(path.join(OUT, f)).size > 5000, `${f} is an image`);
  }));
});
