// Satisfaction in the widget (desk-api.md, "Rating"): once an agent closes
// the conversation, the widget asks for 1 to 5 stars (radio buttons, each
// named) and an optional comment; Send posts /chatplugin.rate, the widget
// thanks the visitor and never asks again for that conversation, after a
// reload too (remembered per conversation; a 409 already-rated from another
// device counts as rated). The agent's REST and console show the rating.
// axe finds nothing serious with the card shown, light and dark, desktop and
// phone. Screenshots in $RATING_SHOTS (when set) or target/screenshots/:
// rating-<device>-<scheme>.png, rating-thanks-<device>.png, console-rating-*.png.

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
  sendText,
  startHostServer,
  until,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const OUT = process.env.RATING_SHOTS || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

let browser;
let host;
let admin;

const card = (page) => widget(page).locator('.rc');
const thanks = (page) => widget(page).locator('p[role=status]', { hasText: /feedback|avis/ });
const shown = async (loc) => (await loc.count()) === 1 && (await loc.isVisible());

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

async function closeRoom(room) {
  const res = await rest('PUT', `${CHATD}/users/me/rooms/${room}/state`, { token: admin, body: { state: 'closed' } });
  assert.equal(res.status, 200, res.text);
}

async function roomRating(room) {
  const res = await rest('GET', `${CHATD}/rooms/${room}`, { token: admin });
  assert.equal(res.status, 200, res.text);
  return res.body.rating;
}

describe('widget: rating a closed conversation', { timeout: 240_000 }, () => {
  before(async () => {
    await startServer();
    admin = await adminLogin();
    host = await startHostServer({
      '/': () => hostPage({ channels: [server.demoChannelId] }),
      '/fr': () => hostPage({ channels: [server.demoChannelId], lang: 'fr' }),
    });
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('closed by the agent, rated 4 with a comment, thanked, never asked again', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    const room = await conversation(page);
    assert.equal(await card(page).isVisible(), false, 'not asked while open');

    await closeRoom(room);
    await until(() => shown(card(page)), 'the rating card once closed');
    // Five radio buttons, each named; Send waits for a choice.
    const names = ['Very bad', 'Bad', 'Okay', 'Good', 'Excellent'];
    for (const name of names) {
      assert.equal(await card(page).getByRole('radio', { name, exact: true }).count(), 1, name);
    }
    assert.equal(await card(page).getByRole('group', { name: 'How was this conversation?' }).count(), 1);
    const send = card(page).getByRole('button', { name: 'Send' });
    assert.equal(await send.isDisabled(), true);

    // By keyboard: the first star, then arrows to the fourth.
    await card(page).getByRole('radio', { name: 'Very bad' }).focus();
    await page.keyboard.press('Space');
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
    assert.equal(await card(page).getByRole('radio', { name: 'Good' }).isChecked(), true);
    const ring = await page.evaluate(() => {
      const a = document.activeElement.shadowRoot.activeElement;
      return getComputedStyle(a.parentElement).outlineStyle;
    });
    assert.equal(ring, 'solid', 'the focused star shows a ring');
    assert.equal(await send.isDisabled(), false);
    await card(page).getByRole('textbox', { name: 'Add a comment (optional)' }).fill('Quick and kind, thanks!');
    await send.click();
    await until(() => shown(thanks(page)), 'the thanks');
    assert.equal(await thanks(page).textContent(), 'Thanks for your feedback');
    assert.equal(await card(page).isVisible(), false, 'the card goes');
    await page.screenshot({ path: path.join(OUT, 'rating-thanks-desktop.png') });

    // The agent's REST shows it.
    const rating = await roomRating(room);
    assert.equal(rating.rating, 4);
    assert.equal(rating.comment, 'Quick and kind, thanks!');

    // A reload: the closed conversation comes back, and is not asked about again.
    await page.reload();
    await openPanel(page);
    await until(() => widget(page).locator('.note', { hasText: 'This conversation was closed' }).isVisible(), 'the closed note after a reload');
    assert.equal(await card(page).isVisible(), false, 'not asked again after a reload');

    // Another device (the widget's memory of it gone): asked, and the
    // server's 409 already-rated counts as rated.
    await page.evaluate(() => {
      for (const k of Object.keys(localStorage)) if (k.endsWith(':r')) localStorage.removeItem(k);
    });
    await page.reload();
    await openPanel(page);
    await until(() => shown(card(page)), 'the card without the memory of a rating');
    await card(page).locator('label').nth(0).click();
    await card(page).getByRole('button', { name: 'Send' }).click();
    await until(() => shown(thanks(page)), 'the thanks after already-rated');
    assert.equal((await roomRating(room)).rating, 4, 'the first rating stays');

    // The console shows it: stars and comment in the conversation, stars in the Closed list.
    const consolePage = await context.newPage();
    await consolePage.goto(server.baseUrl + '/console/login');
    await consolePage.fill('input[name=email]', server.adminEmail);
    await consolePage.fill('input[name=password]', server.adminPassword);
    await Promise.all([consolePage.waitForURL('**/console/inbox'), consolePage.click('button[type=submit]')]);
    await consolePage.goto(`${server.baseUrl}/console/rooms/${room}`);
    const shownRating = consolePage.locator('.conv-rating');
    assert.equal(await shownRating.getByRole('img', { name: 'Rated 4 out of 5' }).textContent(), '★★★★☆');
    assert.equal(await shownRating.locator('.rating-comment').textContent(), 'Quick and kind, thanks!');
    const closedRow = consolePage.locator(`[data-list=closed] [data-room="${room}"]`);
    assert.equal(await closedRow.getByRole('img', { name: 'Rated 4 out of 5' }).count(), 1);
    await assertAccessible(consolePage, 'console: a rated conversation');
    for (const colorScheme of ['light', 'dark']) {
      await consolePage.emulateMedia({ colorScheme });
      for (const [device, viewport] of Object.entries(SIZES)) {
        await consolePage.setViewportSize(viewport);
        await consolePage.waitForTimeout(100);
        await consolePage.screenshot({ path: path.join(OUT, `console-rating-${device}-${colorScheme}.png`) });
      }
    }
    await context.close();
  }));

  test('a second tab of the conversation stops asking once the first rated', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const one = await context.newPage();
    await one.goto(host.origin + '/');
    const room = await conversation(one);
    const two = await context.newPage();
    await two.goto(host.origin + '/');
    await openPanel(two);
    await closeRoom(room);
    await until(() => shown(card(one)), 'the card in the first tab');
    await until(() => shown(card(two)), 'the card in the second tab');
    await card(one).locator('label').nth(4).click();
    await card(one).getByRole('button', { name: 'Send' }).click();
    await until(() => shown(thanks(one)), 'the thanks in the first tab');
    await until(async () => !(await card(two).isVisible()), 'the card to go in the second tab');
    assert.equal((await roomRating(room)).rating, 5);
    await context.close();
  }));

  test('in French', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce', locale: 'fr-FR' });
    const page = await context.newPage();
    await page.goto(host.origin + '/fr');
    const room = await conversation(page);
    await closeRoom(room);
    await until(() => shown(card(page)), 'the card');
    assert.equal(await card(page).getByRole('group', { name: "Comment s'est passée cette conversation ?" }).count(), 1);
    assert.equal(await card(page).getByRole('radio', { name: 'Très mauvais' }).count(), 1);
    await card(page).locator('label').nth(2).click();
    await card(page).getByRole('button', { name: 'Envoyer' }).click();
    await until(() => shown(thanks(page)), 'the thanks');
    assert.equal(await thanks(page).textContent(), 'Merci pour votre avis');
    await context.close();
  }));

  for (const [device, viewport] of Object.entries(SIZES)) {
    test(`axe and screenshots with the card shown (${device})`, withServerLogs(async () => {
      const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
      const page = await context.newPage();
      await page.goto(host.origin + '/');
      const room = await conversation(page);
      await closeRoom(room);
      await until(() => shown(card(page)), 'the card');
      // Wholly inside the panel.
      const inside = await widget(page).locator('.p').evaluate((p) => {
        const box = p.getBoundingClientRect();
        const r = p.querySelector('.rc').getBoundingClientRect();
        return r.left >= box.left && r.right <= box.right && r.bottom <= box.bottom;
      });
      assert.ok(inside, 'the card inside the panel');
      await card(page).locator('label').nth(3).hover();
      for (const colorScheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme });
        await assertAccessible(page, `${device} ${colorScheme}: rating card shown`);
        await page.screenshot({ path: path.join(OUT, `rating-${device}-${colorScheme}.png`) });
      }
      await context.close();
    }));
  }
});
