// Shared by the console's browser tests (console.test.mjs,
// console_keyboard.test.mjs, console_a11y.test.mjs): the visitor's side (HTTP API and STOMP), the
// agent's (API and console pages in Chromium), and screenshots.
//
// This file is not a test file itself (its name matches none of node
// --test's patterns).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@stomp/stompjs';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

import { AsyncQueue, WAIT_MS, server, withTimeout } from './chatgate_server.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHOTS = path.join(REPO_ROOT, 'target', 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Debian's chromium (.ci/run installs it); without it the suite fails, saying why. */
export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function post(route, body, headers = {}) {
  const res = await fetch(server.baseUrl + route, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `POST ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * A new visitor conversation on the demo channel; `extra` is merged into
 * the authenticate body (`visitor`, `context`).
 */
export async function newVisitor(extra = {}) {
  return post('/chatplugin.authenticate', { channel_id: server.demoChannelId, ...extra });
}

export async function visitorSays(visitor, text) {
  return post('/chatplugin.send', { message: { text } }, { authorization: `Bearer ${visitor.token}` });
}

/** The conversation's history as the visitor's widget would resume it. */
export async function visitorHistory(visitor) {
  const resumed = await post('/chatplugin.authenticate', {
    channel_id: server.demoChannelId,
    resume_token: visitor.resume_token,
  });
  return resumed.messages;
}

export const stompClients = new Set();

/** A live visitor socket: queues of its messages and its events. */
export async function visitorSocket(visitor, sinceSeq) {
  const messages = new AsyncQueue();
  const events = new AsyncQueue();
  const client = new Client({
    webSocketFactory: () => new WebSocket(server.wsUrl, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
    connectHeaders: { Authorization: `Bearer ${visitor.token}` },
    reconnectDelay: 0,
    debug: () => {},
  });
  stompClients.add(client);
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new Error(`STOMP ERROR ${frame.headers.message}`));
  });
  client.activate();
  await withTimeout(connected, WAIT_MS, 'visitor STOMP CONNECTED');
  const resume = sinceSeq === undefined ? {} : { 'since-seq': String(sinceSeq) };
  client.subscribe('/queue/message', (frame) => messages.push(JSON.parse(frame.body)), resume);
  client.subscribe('/queue/events', (frame) => events.push(JSON.parse(frame.body)));
  return { client, messages, events };
}

// ---------------------------------------------------------------------------
// The agent side
// ---------------------------------------------------------------------------

export async function adminToken() {
  const basic = Buffer.from(`${server.adminEmail}:${server.adminPassword}`).toString('base64');
  const data = await post('/api/auth/0.1/token', {}, { authorization: `Basic ${basic}` });
  return data.data.token;
}

/** Creates an agent (role agent) through the API; returns its email and password. */
export async function newAgent(name) {
  const token = await adminToken();
  const email = `${name.toLowerCase()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const res = await fetch(server.baseUrl + '/api/chatd/1.0/agents', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    body: JSON.stringify({ email, display_name: name, password: 'correct horse' }),
  });
  assert.equal(res.status, 201, await res.text());
  return { email, password: 'correct horse' };
}

export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  return { context, page, problems };
}

export async function logIn(page, email, password) {
  await page.goto(server.baseUrl + '/console/login');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL('**/console/inbox'), page.click('button[type=submit]')]);
}

/**
 * Resolves when an event socket of `page` receives a frame that `matches`
 * (its text). Call it before the page opens the socket.
 */
export function pageHears(page, matches) {
  return new Promise((resolve) => {
    page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
      if (matches(String(payload))) resolve();
    }));
  });
}

/**
 * Holds the page's next fetch of new messages: the server answers at once,
 * the browser gets the answer only after `until` (a slow network).
 * `rendered` resolves when the server has answered (an object, since an
 * async function cannot return a bare promise without awaiting it).
 */
export async function holdNextRows(page, until) {
  let answered;
  const rendered = new Promise((resolve) => { answered = resolve; });
  let held = false;
  await page.route(/\/console\/rooms\/[^/]+\/messages\?after_seq=/, async (route) => {
    if (held) return route.continue();
    held = true;
    const response = await route.fetch();
    answered();
    await until;
    await route.fulfill({ response });
  });
  return { rendered };
}

/** Answers the visitor from the inbox and waits for its room, live. */
export async function answerInConsole(page, visitor, firstWords) {
  const row = page.locator(`[data-list=queue] [data-room="${visitor.conversation_id}"]`);
  await Promise.all([
    page.waitForURL(roomUrl(visitor.conversation_id)),
    row.locator('button[data-answer]').click(),
  ]);
  await live(page);
  await page.locator('.msg.theirs', { hasText: firstWords }).waitFor();
}

/** Waits until the page's event socket has started. */
export async function live(page) {
  await page.waitForSelector('html[data-live=true]', { state: 'attached' });
}

export async function shots(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: width === 375 ? 740 : 800 });
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(SHOTS, `console-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** A conversation's URL, opened at its newest message (`#latest`) or not. */
export function roomUrl(room) {
  return new RegExp(`/console/rooms/${room}(#latest)?$`);
}

/** Logs an agent in through the API; returns its token. */
export async function agentToken(email, password) {
  const basic = Buffer.from(`${email}:${password}`).toString('base64');
  const data = await post('/api/auth/0.1/token', {}, { authorization: `Basic ${basic}` });
  return data.data.token;
}

/** Calls the agent API (`/api/chatd/1.0` + `route`) with `token`. */
export async function chatd(method, route, token, body) {
  const res = await fetch(`${server.baseUrl}/api/chatd/1.0${route}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Answers a queued visitor from the inbox with the row's form (with or without JavaScript). */
export async function answer(page, visitor) {
  await page.goto(server.baseUrl + '/console/inbox');
  const row = page.locator(`[data-list=queue] [data-room="${visitor.conversation_id}"]`);
  await row.waitFor();
  await Promise.all([
    page.waitForURL(new RegExp(`/console/rooms/${visitor.conversation_id}(#latest)?$`)),
    row.locator('button[type=submit]').click(),
  ]);
}

/** Replies from an open conversation with the composer's form. */
export async function reply(page, text) {
  await page.fill('#composer textarea[name=content]', text);
  await Promise.all([page.waitForNavigation(), page.click('#composer button[type=submit]')]);
}

/** A fresh page with the admin logged in and the event socket started. */
export async function adminPage(browser, options = {}) {
  const opened = await newPage(browser, options);
  await logIn(opened.page, server.adminEmail, server.adminPassword);
  await live(opened.page);
  return opened;
}

/**
 * One new visitor per text, each having said it, in order; resolves once
 * the last one's row is in `page`'s queue.
 */
export async function queuedVisitors(page, texts) {
  const visitors = [];
  for (const text of texts) {
    const visitor = await newVisitor();
    await visitorSays(visitor, text);
    visitors.push(visitor);
  }
  const last = visitors[visitors.length - 1];
  await page.locator(`[data-list=queue] [data-room="${last.conversation_id}"]`).waitFor();
  return visitors;
}
