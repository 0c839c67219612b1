// The chat widget (/widget.js) in headless Chromium, on a page of another
// origin, against a real chatgate; the agent answers through the REST API.

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
  roomMessages,
  rowTexts,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const HOSTILE_CSS = `<style>
  * { display: none !important; }
  html, body { display: block !important; }
  div { font-size: 40px !important; color: red !important; }
  button { background: lime !important; width: 500px !important; }
  chatgate-widget { opacity: 0 !important; transform: scale(0) !important; }
</style>`;

let browser;
let host;
let admin;
let secondChannel;
let fencedChannel;

describe('chat widget', { timeout: 90_000 }, () => {
  before(async () => {
    await startServer();
    admin = await adminLogin();
    const res = await rest('POST', '/channels.chatplugin.connect', {
      token: admin,
      body: { name: 'Second shop', color: '#0f766e', welcome_message: 'Second channel here.' },
    });
    assert.equal(res.status, 200, res.text);
    secondChannel = res.body.id;
    const fenced = await rest('POST', '/channels.chatplugin.connect', {
      token: admin,
      body: { name: 'Fenced shop', allowed_origins: ['https://shop.example.com'] },
    });
    assert.equal(fenced.status, 200, fenced.text);
    fencedChannel = fenced.body.id;
    const one = server.demoChannelId;
    host = await startHostServer({
      '/': () => hostPage({ channels: [one] }),
      '/fr': () => hostPage({ channels: [one], lang: 'fr-FR' }),
      '/hostile': () => hostPage({ channels: [one], head: HOSTILE_CSS }),
      '/two': () => hostPage({ channels: [one, secondChannel] }),
      '/fenced': () => hostPage({ channels: [fencedChannel] }),
    });
    browser = await launchBrowser();
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('loads quietly, then chats with an agent: ticks, delivery, read, typing', withServerLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('websocket', (ws) => requests.push(ws.url()));
    await page.goto(host.origin + '/');
    await widget(page).locator('.lc').waitFor();
    await page.waitForLoadState('networkidle');
    const foreign = requests.filter((u) => !u.startsWith(host.origin));
    assert.deepEqual(foreign, [`${server.baseUrl}/widget.js`], 'only widget.js before the panel opens');
    assert.equal(await page.evaluate(() => localStorage.length + document.cookie.length), 0, 'no storage, no cookie');
    assert.equal(await widget(page).locator('textarea').isVisible(), false, 'panel closed');

    await openPanel(page);
    const header = widget(page).locator('.hd');
    await until(async () => (await header.locator('.nm').textContent()) !== 'Chat with us', 'the channel name in the header');
    const text = `Hello from the widget ${crypto.randomUUID()}`;
    await sendText(page, text);
    await waitTick(page, text, 'sent');
    assert.equal((await rowTexts(page)).filter((t) => t === text).length, 1, 'shown once');
    assert.ok(await page.evaluate((k) => localStorage.getItem(k), `chatgate:${server.demoChannelId}`), 'resume token stored');

    const room = (await queuedRoom(admin, server.demoChannelId, text)).uuid;
    await answer(admin, room);
    // Close the panel: the reply is delivered (socket) but not seen.
    await page.keyboard.press('Escape');
    const reply = `Agent reply ${crypto.randomUUID()}`;
    const sent = await agentSays(admin, room, reply);
    await until(async () => (await widget(page).locator('.bdg').textContent()) === '1', 'unread badge 1');
    const mine = async () => (await roomMessages(admin, room)).find((m) => m.uuid === sent.uuid);
    const delivered = await until(async () => {
      const m = await mine();
      return m.state === 'DELIVERED' && m;
    }, 'the agent to see DELIVERED');
    assert.equal(delivered.read_at, null, 'not read while the panel is closed');

    await openPanel(page);
    await waitRow(page, reply);
    const row = widget(page).locator('.m.l').filter({ hasText: reply });
    assert.equal(await row.count(), 1);
    assert.match(await row.locator('.who').textContent(), /\S/, 'agent name shown');
    assert.equal(await widget(page).locator('.bdg').isVisible(), false, 'badge cleared when seen');
    await until(async () => (await mine()).read_at, 'the agent to see read_at after the visitor saw it');

    // The agent reads: the visitor's message turns "read".
    const read = await rest('PUT', `/api/chatd/1.0/users/me/rooms/${room}/read`, { token: admin });
    assert.equal(read.status, 204, read.text);
    await waitTick(page, text, 'read');

    // The agent types: the indicator shows.
    await rest('POST', `/api/chatd/1.0/users/me/rooms/${room}/activities`, { token: admin, body: { type: 'start_typing' } });
    await until(() => widget(page).locator('.ty').isVisible(), 'the typing indicator');

    // Reload: the same conversation, history in order, nothing twice.
    const before = await rowTexts(page);
    await page.reload();
    await openPanel(page);
    await until(async () => (await rowTexts(page)).length >= before.length, 'history after reload');
    assert.deepEqual(await rowTexts(page), before, 'same history, same order');
    const seqs = await widget(page).locator('.log .m[data-seq]').evaluateAll((els) => els.map((e) => +e.dataset.seq));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'rows in seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'no duplicate rows');

    // A second tab continues the conversation and shows what the first sends.
    const tab2 = await context.newPage();
    await tab2.goto(host.origin + '/');
    await openPanel(tab2);
    await waitRow(tab2, reply);
    const more = `From tab one ${crypto.randomUUID()}`;
    await sendText(page, more);
    await waitRow(tab2, more);
    assert.equal((await rowTexts(tab2)).filter((t) => t === more).length, 1);
    await context.close();
  }));

  test('a failed send offers a retry that reuses its client_message_id', withServerLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    await openPanel(page);
    await until(() => widget(page).locator('.hd .nm').filter({ hasNotText: 'Chat with us' }).count(), 'authenticated');
    const bodies = [];
    let fail = true;
    await page.route(`${server.baseUrl}/chatplugin.send`, (route) => {
      bodies.push(JSON.parse(route.request().postData()));
      if (fail) return route.abort('connectionreset');
      return route.continue();
    });
    const text = `Retry me ${crypto.randomUUID()}`;
    await sendText(page, text);
    const row = widget(page).locator('.m.r').filter({ hasText: text });
    await until(() => row.locator('.retry').isVisible(), 'the retry button');
    fail = false;
    await row.locator('.retry').click();
    await waitTick(page, text, 'sent');
    assert.equal(bodies.length, 2);
    assert.equal(bodies[1].client_message_id, bodies[0].client_message_id, 'the retry reuses the key');
    const room = (await queuedRoom(admin, server.demoChannelId, text)).uuid;
    await answer(admin, room);
    const stored = (await roomMessages(admin, room)).filter((m) => m.content === text);
    assert.equal(stored.length, 1, 'stored once');
    await context.close();
  }));

  test('a refused resume token starts a new conversation that works', withServerLogs(async () => {
    const key = `chatgate:${server.demoChannelId}`;
    // Garbage, then a well-formed token signed with another server's key.
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ch: server.demoChannelId, cv: crypto.randomUUID(), exp: 4102444800, typ: 'resume' })}`;
    const forged = `${body}.${crypto.createHmac('sha256', 'another server').update(body).digest('base64url')}`;
    for (const bad of ['garbage', forged]) {
      const context = await browser.newContext();
      await context.addInitScript(([k, v]) => {
        if (!sessionStorage.getItem('planted')) {
          localStorage.setItem(k, v);
          sessionStorage.setItem('planted', '1');
        }
      }, [key, bad]);
      const page = await context.newPage();
      await page.goto(host.origin + '/');
      await openPanel(page);
      const text = `After a bad token ${crypto.randomUUID()}`;
      await sendText(page, text);
      await waitTick(page, text, 'sent');
      const stored = await page.evaluate((k) => localStorage.getItem(k), key);
      assert.ok(stored && stored !== bad, 'a new resume token replaced the bad one');
      await queuedRoom(admin, server.demoChannelId, text);
      await context.close();
    }
  }));

  test('message text and host CSS cannot reach into the widget', withServerLogs(async () => {
    const context = await browser.newContext();
    const plain = await context.newPage();
    await plain.goto(host.origin + '/');
    await openPanel(plain);
    const styleOf = (page) =>
      widget(page).evaluate((el) => {
        const root = el.shadowRoot;
        const pick = (sel, props) => {
          const s = getComputedStyle(root.querySelector(sel));
          return Object.fromEntries(props.map((p) => [p, s[p]]));
        };
        const r = el.getBoundingClientRect();
        return {
          host: { display: getComputedStyle(el).display, opacity: getComputedStyle(el).opacity, transform: getComputedStyle(el).transform, x: r.x, y: r.y },
          launcher: pick('.lc', ['display', 'width', 'height', 'backgroundColor']),
          hello: pick('.hello .b', ['fontSize', 'color', 'display']),
          panel: pick('.p', ['display', 'width', 'height', 'visibility']),
        };
      });
    const reference = await styleOf(plain);

    const page = await context.newPage();
    const dialogs = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      d.dismiss();
    });
    await page.goto(host.origin + '/hostile');
    await openPanel(page);
    assert.deepEqual(await styleOf(page), reference, 'hostile host CSS changes nothing');

    const attacks = ['<img src=x onerror=alert(1)>', 'javascript:alert(1)', 'see https://example.com/a?b=1.', '<script>alert(2)</script>'];
    for (const a of attacks) {
      await sendText(page, a);
      await waitTick(page, a, 'sent');
    }
    const room = (await queuedRoom(admin, server.demoChannelId, attacks.at(-1))).uuid;
    await answer(admin, room);
    await agentSays(admin, room, '<img src=y onerror=alert(3)> [x](javascript:alert(4))');
    await waitRow(page, '<img src=y onerror=alert(3)> [x](javascript:alert(4))');
    const log = widget(page).locator('.log');
    assert.equal(await log.locator('img:not(.av img)').count(), 0, 'no image element from message text');
    assert.equal(await log.locator('script').count(), 0);
    const links = await log.locator('a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.target, a.rel, a.textContent]));
    assert.deepEqual(links, [['https://example.com/a?b=1', '_blank', 'noopener noreferrer nofollow', 'https://example.com/a?b=1']]);
    for (const a of attacks) assert.ok((await rowTexts(page)).includes(a), `${a} shown as text`);
    await widget(page).locator('.b', { hasText: 'javascript:alert(1)' }).click();
    assert.deepEqual(dialogs, [], 'nothing ran');
    await context.close();
  }));

  test('two widgets of two channels keep separate conversations', withServerLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(host.origin + '/two');
    await widget(page, 1).locator('.lc').waitFor();
    assert.equal(await page.evaluate(() => Object.keys(window).filter((k) => /chatgate/i.test(k)).join()), 'chatgate', 'one global');
    await page.evaluate((id) => window.chatgate.channel(id).open(), secondChannel);
    await until(() => widget(page, 1).locator('.hd .nm', { hasText: 'Second shop' }).count(), 'the second channel header');
    assert.equal(await widget(page, 1).locator('.hello .b').textContent(), 'Second channel here.');
    assert.equal(await widget(page, 1).locator('.hd').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(15, 118, 110)');
    const two = `For channel two ${crypto.randomUUID()}`;
    await sendText(page, two, 1);
    await waitTick(page, two, 'sent', 1);
    await page.evaluate(() => window.chatgate.open());
    const one = `For channel one ${crypto.randomUUID()}`;
    await sendText(page, one, 0);
    await waitTick(page, one, 'sent', 0);
    assert.deepEqual(await rowTexts(page, 0), [one]);
    assert.deepEqual(await rowTexts(page, 1), [two]);
    await queuedRoom(admin, secondChannel, two);
    await queuedRoom(admin, server.demoChannelId, one);
    const keys = await page.evaluate(() => Object.keys(localStorage).filter((k) => !k.endsWith(':seen')).sort());
    assert.deepEqual(keys, [`chatgate:${server.demoChannelId}`, `chatgate:${secondChannel}`].sort());
    await context.close();
  }));

  test('keyboard only: Tab, Enter opens, Enter sends, Shift+Enter breaks a line, Escape closes', withServerLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const events = [];
    await page.goto(host.origin + '/fr');
    await widget(page).locator('.lc').waitFor();
    await page.evaluate(() => ['open', 'close'].forEach((e) => window.chatgate.on(e, () => (window.__events = [...(window.__events || []), e]))));
    const focused = () => page.evaluate(() => {
      const a = document.activeElement;
      const inner = a?.shadowRoot?.activeElement;
      return inner ? inner.className || inner.tagName : a?.tagName;
    });
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'lc', 'Tab reaches the launcher');
    assert.equal(await widget(page).locator('.lc').getAttribute('aria-label'), 'Ouvrir le chat', 'French from <html lang>');
    await page.keyboard.press('Enter');
    await until(async () => (await focused()) === 'TEXTAREA', 'focus in the textarea');
    assert.equal(await widget(page).locator('textarea').getAttribute('placeholder'), 'Écrivez un message…');
    const id = crypto.randomUUID().slice(0, 8);
    await page.keyboard.type(`ligne un ${id}`);
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('ligne deux');
    await page.keyboard.press('Enter');
    await waitTick(page, `ligne un ${id}\nligne deux`, 'sent');
    await page.keyboard.press('Escape');
    await until(async () => (await focused()) === 'lc', 'focus back on the launcher');
    assert.equal(await widget(page).locator('.lc').getAttribute('aria-expanded'), 'false');
    events.push(...(await page.evaluate(() => window.__events)));
    assert.deepEqual(events, ['open', 'close']);
    await context.close();
  }));

  test('a page outside the channel\'s allowed origins gets no chat', withServerLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const refused = [];
    page.on('response', (r) => r.url().endsWith('/chatplugin.authenticate') && refused.push(r.status()));
    await page.goto(host.origin + '/fenced');
    await openPanel(page);
    await until(() => widget(page).locator('.bar', { hasText: 'Chat is unavailable' }).isVisible(), 'the unavailable notice');
    assert.deepEqual(refused, [403]);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    await context.close();
  }));
});
