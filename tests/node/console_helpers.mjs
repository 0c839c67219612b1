// Shared by the console's browser tests (console_a11y.test.mjs): the
// visitor through the HTTP API, agents created through the REST API, a
// browser with Debian's chromium, and logging an agent into the console.
//
// This file is not a test file itself (its name matches none of node
// --test's patterns).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { WAIT_MS, server } from './chatgate_server.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHOTS = path.join(REPO_ROOT, 'target', 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Debian's chromium; fails (saying why) when it is not installed. */
export async function launchConsoleBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** POSTs JSON to chatgate; fails the test on an error status. */
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

/** An admin token of the REST API. */
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

/**
 * A fresh browser context and page; `problems` collects page errors and
 * console errors (a test asserts it stays empty).
 */
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

/** Waits until the page's event socket has started. */
export async function live(page) {
  await page.waitForSelector('html[data-live=true]', { state: 'attached' });
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
