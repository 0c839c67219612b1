// Shared by the widget end-to-end tests (widget*.test.mjs): headless Chromium
// through playwright-core, a host page server on another origin, the agent's
// side through the real REST API, and waiting for conditions with a deadline.
//
// This file is not a test file itself (its name matches none of node --test's
// patterns).

import assert from 'node:assert/strict';
import http from 'node:http';

import { chromium } from 'playwright-core';

import { WAIT_MS, server, withTimeout } from './chatgate_server.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHATD = '/api/chatd/1.0';

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Serves host pages on 127.0.0.1 from another port than chatgate's (so
 * another origin). `pages` maps a path to a function returning the HTML.
 */
export async function startHostServer(pages) {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const page = pages[url.pathname];
    if (!page) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(url.searchParams));
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${srv.address().port}`,
    close: () => new Promise((resolve) => srv.close(resolve)),
  };
}

/** A host page with one widget script tag per channel, and optional extra head markup. */
export function hostPage({ channels, head = '', body = '', lang = 'en', attrs = '' }) {
  const tags = channels
    .map((id) => `<script src="${server.baseUrl}/widget.js" data-channel-id="${id}" ${attrs} async></script>`)
    .join('\n');
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><title>host</title>${head}</head>
<body><h1>A shop on another origin</h1>${body}${tags}</body></html>`;
}

/** Polls `fn` until it returns a truthy value; rejects with `what` after `ms`. */
export async function until(fn, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---------------------------------------------------------------------------
// The agent's side: plain REST, as agent-api.md says
// ---------------------------------------------------------------------------

export async function rest(method, route, { body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  if (token) h['x-auth-token'] = token;
  const res = await withTimeout(
    fetch(server.baseUrl + route, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) }),
    WAIT_MS,
    `${method} ${route}`,
  );
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, body: json, text };
}

/** Logs the first-start admin in; returns its token. */
export async function adminLogin() {
  const basic = Buffer.from(`${server.adminEmail}:${server.adminPassword}`).toString('base64');
  const res = await rest('POST', '/api/auth/0.1/token', {
    body: { expiration: 3600 },
    headers: { authorization: `Basic ${basic}` },
  });
  assert.equal(res.status, 200, `admin login: ${res.status} ${res.text}`);
  return res.body.data.token;
}

/** The queued visitor room of `channelId` whose newest message is `text`. */
export async function queuedRoom(token, channelId, text) {
  return until(async () => {
    const res = await rest('GET', `${CHATD}/queues?channel_id=${channelId}`, { token });
    assert.equal(res.status, 200, res.text);
    return res.body.items.find((r) => r.last_message?.content === text);
  }, `a queued room of channel ${channelId} ending with ${JSON.stringify(text)}`);
}

export async function answer(token, room) {
  const res = await rest('PUT', `${CHATD}/queues/${room}/answer`, { token });
  assert.equal(res.status, 200, `answer: ${res.status} ${res.text}`);
}

export async function agentSays(token, room, content) {
  const res = await rest('POST', `${CHATD}/users/me/rooms/${room}/messages`, { token, body: { content } });
  assert.equal(res.status, 201, `post: ${res.status} ${res.text}`);
  return res.body;
}

/** The room's messages as the agent sees them, oldest first. */
export async function roomMessages(token, room) {
  const res = await rest('GET', `${CHATD}/users/me/rooms/${room}/messages?direction=asc&limit=100`, { token });
  assert.equal(res.status, 200, res.text);
  return res.body.items;
}

// ---------------------------------------------------------------------------
// The widget in a page (Playwright's CSS engine pierces open shadow roots)
// ---------------------------------------------------------------------------

export const widget = (page, n = 0) => page.locator('chatgate-widget').nth(n);

/** Texts of the conversation's message rows (server-stored or being sent), in page order. */
export function rowTexts(page, n = 0) {
  return widget(page, n).locator('.log .m[data-seq] .b, .log .m[data-seq] .sys').allTextContents();
}

export async function openPanel(page, n = 0) {
  await widget(page, n).locator('.lc').click();
  await until(() => widget(page, n).locator('.w.open').count(), 'the panel to open');
}

export async function sendText(page, text, n = 0) {
  const ta = widget(page, n).locator('textarea');
  await ta.fill(text);
  await ta.press('Enter');
}

/** Waits until the row with exactly `text` shows `state` (sending|sent|read|failed). */
export async function waitTick(page, text, state, n = 0) {
  const row = widget(page, n).locator('.m.r').filter({ has: page.locator('.b', { hasText: text }) });
  await until(async () => (await row.locator(`.tk[data-state="${state}"]`).count()) === 1, `"${text}" to show tick ${state}`);
  return row;
}

/** Waits until the widget shows a row whose text is exactly `text`. */
export async function waitRow(page, text, n = 0) {
  await until(async () => (await rowTexts(page, n)).includes(text), `the widget to show ${JSON.stringify(text)}`);
}
