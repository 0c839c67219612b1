// Accessibility of the widget as a standing check (issue 16): axe-core finds
// no serious or critical violation with the widget closed, open, and with a
// conversation (visitor and agent messages, a system notice, the "new
// message" marker), in light and dark, English and French, desktop and
// phone. Plus what axe does not see: the full-screen panel on a phone is a
// modal dialog that keeps the keyboard inside (Tab and Shift+Tab cycle,
// Escape returns to the launcher), it has a name before any connection,
// focus rings are 2 px at 3:1, the text box does not make iOS zoom, and
// system notices read at 4.5:1.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
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
  rowTexts,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 375, height: 740 } };
const LANGS = { en: 'Chat with us', fr: 'Discutons' };

let browser;
let host;
let admin;

/** WCAG contrast ratio of two computed CSS colours (opaque rgb(), rgba() or color(srgb ...)). */
function contrast(a, b) {
  const lum = (css) => {
    const scale = css.startsWith('color(srgb') ? 1 : 255;
    const [r, g, b2] = css.match(/[\d.]+/g).slice(0, 3).map((v) => {
      const c = Number(v) / scale;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b2;
  };
  const [x, y] = [lum(a), lum(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

/** Where the focus is: the class (or tag) of the element focused inside the widget, or `page:<tag>`. */
const focused = (page) =>
  page.evaluate(() => {
    const a = document.activeElement;
    const inner = a?.shadowRoot?.activeElement;
    if (!inner) return `page:${a?.tagName}`;
    return inner.closest('.p') ? `panel:${inner.className || inner.tagName}` : inner.className || inner.tagName;
  });

describe('widget accessibility', { timeout: 180_000 }, () => {
  let conversation; // a browser storage state whose visitor has a conversation

  before(async () => {
    await startServer();
    admin = await adminLogin();
    host = await startHostServer({
      '/en': () => hostPage({ channels: [server.demoChannelId], lang: 'en' }),
      '/fr': () => hostPage({ channels: [server.demoChannelId], lang: 'fr' }),
    });
    browser = await launchBrowser();
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('axe: closed, open and with a conversation; light and dark; en and fr; desktop and phone', withServerLogs(async () => {
    // One conversation, shared by every state below through the resume token.
    const setup = await browser.newContext();
    const page = await setup.newPage();
    await page.goto(host.origin + '/en');
    await openPanel(page);
    const question = 'Hello, can I pay by bank transfer?';
    await sendText(page, question);
    await waitTick(page, question, 'sent');
    const room = (await queuedRoom(admin, server.demoChannelId, question)).uuid;
    await answer(admin, room); // a system notice: the agent joined
    await agentSays(admin, room, 'Yes, you can: the details are on https://example.com/pay');
    await waitRow(page, 'Yes, you can: the details are on https://example.com/pay');
    await sendText(page, 'Great, thanks!');
    await waitTick(page, 'Great, thanks!', 'sent');
    assert.equal(await widget(page).locator('.log .sys').count(), 1, 'a system notice in the conversation');
    conversation = await setup.storageState();
    await setup.close();

    let n = 0;
    for (const [lang, title] of Object.entries(LANGS)) {
      for (const [device, viewport] of Object.entries(SIZES)) {
        for (const colorScheme of ['light', 'dark']) {
          const label = `${lang} ${device} ${colorScheme}`;

          // A new visitor: closed, then open.
          const fresh = await browser.newContext({ viewport, reducedMotion: 'reduce' });
          const p1 = await fresh.newPage();
          await p1.emulateMedia({ colorScheme });
          await p1.goto(`${host.origin}/${lang}`);
          await widget(p1).locator('.lc').waitFor();
          await assertAccessible(p1, `${label}: closed`);
          await openPanel(p1);
          await until(async () => (await widget(p1).locator('.hd .nm').textContent()) !== title, 'the channel name');
          await assertAccessible(p1, `${label}: open`);
          await fresh.close();

          // A returning visitor with a conversation and a reply not seen yet (badge).
          const back = await browser.newContext({ viewport, reducedMotion: 'reduce', storageState: conversation });
          const p2 = await back.newPage();
          await p2.emulateMedia({ colorScheme });
          await p2.goto(`${host.origin}/${lang}`);
          n += 1;
          const unseen = `Anything else? (${n})`;
          await agentSays(admin, room, unseen);
          await waitRow(p2, unseen);
          await until(() => widget(p2).locator('.bdg').isVisible(), 'the unread badge');
          await assertAccessible(p2, `${label}: closed, with a conversation`);
          await openPanel(p2);
          await assertAccessible(p2, `${label}: conversation`);

          // The visitor reads back when a message comes: the "new message" marker.
          await widget(p2)
            .locator('.log')
            .evaluate((l) => new Promise((resolve) => {
              if (l.scrollTop === 0) return resolve();
              l.addEventListener('scroll', resolve, { once: true });
              l.scrollTop = 0;
            }));
          const more = `One more thing (${n})`;
          await agentSays(admin, room, more);
          await waitRow(p2, more);
          if (device === 'phone') {
            // The phone's conversation is taller than its panel: the marker shows.
            await until(() => widget(p2).locator('.more').isVisible(), 'the new message marker');
          }
          await assertAccessible(p2, `${label}: conversation, new message marker`);

          // System notices read at 4.5:1 or more.
          const sys = await widget(p2).locator('.log .sys').first().evaluate((e) => {
            const s = getComputedStyle(e);
            return [s.color, s.backgroundColor];
          });
          assert.ok(contrast(...sys) >= 4.5, `${label}: system notice contrast ${contrast(...sys).toFixed(2)}:1`);
          assert.ok((await rowTexts(p2)).length >= 4);
          await back.close();
        }
      }
    }
  }));

  test('phone: a modal dialog, named from the start; Tab and Shift+Tab stay inside; Escape returns to the launcher', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.phone, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/fr');
    const panel = widget(page).locator('.p');
    await widget(page).locator('.lc').waitFor();
    // Not connected yet (a new visitor connects when opening): named anyway.
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.equal(await panel.getAttribute('role'), 'dialog');
    assert.equal(await panel.getAttribute('aria-label'), 'Discutons');

    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'lc');
    await page.keyboard.press('Enter');
    await until(async () => (await focused(page)) === 'panel:TEXTAREA', 'focus in the text box');
    assert.equal(await panel.getAttribute('aria-modal'), 'true', 'modal while full screen');
    await page.keyboard.type('Bonjour');

    // Forward: every stop is inside the panel, and the cycle comes back to the text box.
    const forward = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      forward.push(await focused(page));
    }
    assert.ok(forward.every((f) => f.startsWith('panel:')), `Tab stays in the panel: ${forward.join(', ')}`);
    assert.ok(forward.includes('panel:TEXTAREA') && forward.includes('panel:sd') && forward.includes('panel:cl'), forward.join(', '));
    // Backward from the first stop (the minimize button): to the last (send).
    await widget(page).locator('.cl').focus();
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(page), 'panel:sd', 'Shift+Tab from the first stop goes to the last');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'panel:cl', 'Tab from the last stop goes to the first');
    const backward = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Shift+Tab');
      backward.push(await focused(page));
    }
    assert.ok(backward.every((f) => f.startsWith('panel:')), `Shift+Tab stays in the panel: ${backward.join(', ')}`);

    await page.keyboard.press('Escape');
    await until(async () => (await focused(page)) === 'lc', 'focus back on the launcher');
    assert.equal(await widget(page).locator('.lc').getAttribute('aria-expanded'), 'false');
    assert.equal(await panel.getAttribute('aria-modal'), 'false');
    assert.ok(await widget(page).locator('.lc').isVisible());
    await context.close();

    // On a desktop the panel sits beside the page: not modal.
    const desk = await browser.newContext({ viewport: SIZES.desktop });
    const dp = await desk.newPage();
    await dp.goto(host.origin + '/en');
    await openPanel(dp);
    assert.equal(await widget(dp).locator('.p').getAttribute('aria-modal'), 'false');
    await desk.close();
  }));

  test('the text box: a 2 px focus ring at 3:1, and 16 px on a phone (no iOS zoom)', withServerLogs(async () => {
    for (const [device, viewport] of Object.entries(SIZES)) {
      for (const colorScheme of ['light', 'dark']) {
        const context = await browser.newContext({ viewport, colorScheme, reducedMotion: 'reduce' });
        const page = await context.newPage();
        await page.goto(host.origin + '/en');
        await openPanel(page);
        const ta = widget(page).locator('textarea');
        await until(async () => (await focused(page)) === 'panel:TEXTAREA', 'focus in the text box');
        const ring = await ta.evaluate((e) => {
          const s = getComputedStyle(e);
          return {
            style: s.outlineStyle,
            width: parseFloat(s.outlineWidth),
            color: s.outlineColor,
            around: getComputedStyle(e.closest('.cmp')).backgroundColor,
            fontSize: parseFloat(s.fontSize),
          };
        });
        const label = `${device} ${colorScheme}`;
        assert.notEqual(ring.style, 'none', `${label}: a focus ring`);
        assert.ok(ring.width >= 2, `${label}: ring ${ring.width} px`);
        assert.ok(contrast(ring.color, ring.around) >= 3, `${label}: ring contrast ${contrast(ring.color, ring.around).toFixed(2)}:1`);
        if (device === 'phone') assert.ok(ring.fontSize >= 16, `${label}: text box at ${ring.fontSize} px`);
        await context.close();
      }
    }
  }));

  test('a channel colour too light for a ring on white still gets a visible ring', withServerLogs(async () => {
    const res = await rest('POST', '/channels.chatplugin.connect', { token: admin, body: { name: 'Lemon shop', color: '#ffe14d' } });
    assert.equal(res.status, 200, res.text);
    const pages = await startHostServer({ '/': () => hostPage({ channels: [res.body.id] }) });
    try {
      for (const colorScheme of ['light', 'dark']) {
        const context = await browser.newContext({ colorScheme });
        const page = await context.newPage();
        await page.goto(pages.origin + '/');
        await openPanel(page);
        await until(async () => (await widget(page).locator('.hd .nm').textContent()) === 'Lemon shop', 'the channel');
        const [style, width, color, around] = await widget(page)
          .locator('textarea')
          .evaluate((e) => {
            const s = getComputedStyle(e);
            return [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor, getComputedStyle(e.closest('.cmp')).backgroundColor];
          });
        assert.ok(style !== 'none' && width >= 2, `${colorScheme}: a 2 px ring (${style} ${width} px)`);
        assert.ok(contrast(color, around) >= 3, `${colorScheme}: ring contrast ${contrast(color, around).toFixed(2)}:1`);
        await assertAccessible(page, `lemon ${colorScheme}: open`);
        await context.close();
      }
    } finally {
      await pages.close();
    }
  }));
});
