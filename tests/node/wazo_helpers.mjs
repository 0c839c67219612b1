// Shared by the @wazo/sdk end-to-end tests (wazo_sdk.test.mjs and, once
// presence lands, wazo_presence.test.mjs): start chatgate, load the published
// SDK unmodified, point it at the test server, small HTTP helpers.
//
// This file is not a test file itself (its name matches none of node --test's
// patterns).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

const require = createRequire(import.meta.url);

// The SDK's ES-module entry (dist/index.mjs) does not resolve on Node 20
// (extensionless imports into sip.js); require() picks the "node" export,
// dist/wazo-sdk.js, a self-contained bundle.
export const sdk = require('@wazo/sdk');

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHATGATE_BIN =
  process.env.CHATGATE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'chatgate');

export const STARTUP_TIMEOUT_MS = 30_000;
export const SHUTDOWN_TIMEOUT_MS = 10_000;
export const WAIT_MS = 10_000;
export const TEST_TIMEOUT_MS = 60_000;

export const CHATD = '/api/chatd/1.0';

// ---------------------------------------------------------------------------
// Generic helpers
// ---------------------------------------------------------------------------

/** Rejects with a descriptive error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A FIFO of values pushed by callbacks, consumed with `next()` / `find()`. */
export class AsyncQueue {
  #items = [];
  #waiters = [];
  seen = []; // everything ever pushed, for error messages

  push(item) {
    this.seen.push(item);
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  next(ms, what) {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift());
    let resolveFn;
    const p = new Promise((resolve) => {
      resolveFn = resolve;
      this.#waiters.push(resolve);
    });
    return withTimeout(p, ms, what).catch((err) => {
      const i = this.#waiters.indexOf(resolveFn);
      if (i >= 0) this.#waiters.splice(i, 1);
      throw err;
    });
  }

  /** The first item (now or later, within `ms`) for which `pred` is true; others are dropped. */
  async find(pred, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      let item;
      try {
        item = await this.next(Math.max(left, 0), what);
      } catch (err) {
        err.message += `\n--- received so far ---\n${this.seen.map((x) => JSON.stringify(x)).join('\n')}`;
        throw err;
      }
      if (pred(item)) return item;
    }
  }
}

// ---------------------------------------------------------------------------
// chatgate process
// ---------------------------------------------------------------------------

export const server = {
  proc: null,
  exited: null,
  tmpDir: null,
  baseUrl: null, // http://127.0.0.1:PORT
  host: null, // 127.0.0.1:PORT, the SDK's "server"
  adminEmail: null,
  adminPassword: null,
  stdout: '',
  stderr: '',
};

export async function startServer() {
  if (!fs.existsSync(CHATGATE_BIN)) {
    throw new Error(
      `chatgate binary not found at ${CHATGATE_BIN}; ` +
        'build it with `cargo build --bin chatgate` or set CHATGATE_BIN',
    );
  }

  server.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-wazo-test-'));
  const proc = spawn(CHATGATE_BIN, [], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      CHATGATE_LISTEN: '127.0.0.1:0',
      CHATGATE_DATABASE_URL: path.join(server.tmpDir, 'chatgate.db'),
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.proc = proc;
  server.exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => {
    server.stderr += chunk;
  });

  // The first start with an empty database prints (src/main.rs):
  //   admin login:    <email>
  //   admin password: <password>
  //   ...
  //   chatgate listening on http://127.0.0.1:PORT
  const ready = new Promise((resolve, reject) => {
    const check = () => {
      const email = server.stdout.match(/admin login:\s+(\S+)/);
      const password = server.stdout.match(/admin password:\s+(\S+)/);
      const listening = server.stdout.match(/listening on (http:\/\/\S+)/);
      if (email && password && listening) {
        resolve({ email: email[1], password: password[1], baseUrl: listening[1].replace(/\/+$/, '') });
      }
    };
    proc.stdout.on('data', (chunk) => {
      server.stdout += chunk;
      check();
    });
    proc.once('error', (err) => reject(new Error(`failed to start ${CHATGATE_BIN}: ${err.message}`)));
    proc.once('exit', (code, signal) =>
      reject(new Error(`chatgate exited during startup (code ${code}, signal ${signal})`)),
    );
  });

  let info;
  try {
    info = await withTimeout(
      ready,
      STARTUP_TIMEOUT_MS,
      'chatgate to print "admin login:", "admin password:" and "listening on http://..."',
    );
  } catch (err) {
    err.message +=
      `\n--- chatgate stdout ---\n${server.stdout}` + `\n--- chatgate stderr ---\n${server.stderr}`;
    throw err;
  }
  server.baseUrl = info.baseUrl;
  server.host = new URL(info.baseUrl).host;
  server.adminEmail = info.email;
  server.adminPassword = info.password;
}

export async function stopServer() {
  const proc = server.proc;
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM');
    try {
      await withTimeout(server.exited, SHUTDOWN_TIMEOUT_MS, 'chatgate to exit after SIGTERM');
    } catch (err) {
      proc.kill('SIGKILL');
      await server.exited;
      throw err;
    }
  }
  if (proc) {
    proc.stdout.destroy();
    proc.stderr.destroy();
  }
  if (server.tmpDir) fs.rmSync(server.tmpDir, { recursive: true, force: true });
}

/** Wraps a test body so that chatgate's stderr is shown when it fails. */
export function withServerLogs(fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      console.error(`--- chatgate stderr (test "${t.name}" failed) ---\n${server.stderr}`);
      throw err;
    }
  };
}

// ---------------------------------------------------------------------------
// The SDK, pointed at the test server
// ---------------------------------------------------------------------------

/**
 * Makes the SDK talk plain http/ws to `server.host` instead of https/wss.
 * Only the URL scheme changes: the paths, headers and bodies are the SDK's own.
 *   ApiRequester: `get baseUrl() { return `https://${this.server}/api`; }`
 *   WebSocketClient._getUrl: `wss://${host}/api/websocketd/?token=..&version=..[&userUuid=..]`
 */
export function pointSdkAtTestServer() {
  Object.defineProperty(sdk.ApiRequester.prototype, 'baseUrl', {
    configurable: true,
    get() {
      return `http://${this.server}/api`;
    },
  });
  sdk.WebSocketClient.prototype._getUrl = function _getUrl() {
    let url = `ws://${this.host || ''}/api/websocketd/?token=${this.token || ''}&version=${this.version}`;
    if (this.session) url += `&userUuid=${this.session.uuid}`;
    return url;
  };
}

/** A fresh WazoApiClient for the test server (not the SDK's global getApiClient cache). */
export function newApiClient() {
  const client = new sdk.WazoApiClient({ server: server.host });
  // Every SDK request races an uncleared setTimeout(requestTimeout), 300 s by
  // default, which would keep this test process alive long after the tests.
  client.setRequestTimeout(WAIT_MS);
  client.disableErrorLogging();
  return client;
}

const wsClients = new Set();

/**
 * Connects the SDK's WebSocketClient (protocol v2) with `ws` as the WebSocket
 * implementation and resolves once the init/subscribe/start handshake is done.
 * Returns `{ ws, events }` where `events[name]` is an AsyncQueue of payloads.
 */
export async function connectEvents(token, eventNames) {
  const ws = new sdk.WebSocketClient(
    { host: server.host, token, version: 2, events: eventNames },
    { WebSocket, maxRetries: 2, connectionTimeout: WAIT_MS, minReconnectionDelay: 500 },
  );
  wsClients.add(ws);
  const events = {};
  for (const name of eventNames) {
    events[name] = new AsyncQueue();
    ws.on(name, (payload) => events[name].push(payload));
  }
  const log = [];
  ws.on(sdk.SOCKET_EVENTS.ON_MESSAGE, (data) => log.push(`<- ${data}`));
  ws.on(sdk.SOCKET_EVENTS.ON_CLOSE, (evt) => log.push(`closed: code ${evt?.code} ${evt?.reason ?? ''}`));
  const initialized = new Promise((resolve) => ws.once(sdk.SOCKET_EVENTS.INITIALIZED, resolve));
  ws.connect();
  try {
    await withTimeout(initialized, WAIT_MS, 'the WebSocketClient init/subscribe/start handshake');
  } catch (err) {
    err.message += `\n--- websocket log ---\n${log.join('\n')}`;
    throw err;
  }
  return { ws, events, log };
}

export function closeAllEventSockets() {
  for (const ws of wsClients) {
    try {
      ws.close(true);
    } catch {
      // already closed
    }
  }
  wsClients.clear();
}

// ---------------------------------------------------------------------------
// Plain HTTP (what the SDK does not cover: admin calls, the second agent)
// ---------------------------------------------------------------------------

/** fetch + JSON; returns { status, body, text }. */
export async function http(method, route, { body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  if (token) h['x-auth-token'] = token;
  const res = await withTimeout(
    fetch(server.baseUrl + route, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
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

/** Logs in with HTTP Basic like the contract says; returns { token, uuid, tenantUuid }. */
export async function plainLogin(email, password) {
  const basic = Buffer.from(`${email}:${password}`).toString('base64');
  const res = await http('POST', '/api/auth/0.1/token', {
    body: { expiration: 3600 },
    headers: { authorization: `Basic ${basic}` },
  });
  assert.equal(res.status, 200, `login of ${email} returned ${res.status}: ${res.text}`);
  const data = res.body.data;
  assert.equal(typeof data.token, 'string');
  return { token: data.token, uuid: data.metadata.uuid, tenantUuid: data.metadata.tenant_uuid };
}

let agentCounter = 0;

/** Creates an agent with the admin token and logs it in. */
export async function createAgent(adminToken, displayName) {
  agentCounter += 1;
  const email = `agent${agentCounter}-${process.pid}@example.test`;
  const password = `pw-${Math.random().toString(36).slice(2)}-${agentCounter}-Secret`;
  const res = await http('POST', `${CHATD}/agents`, {
    token: adminToken,
    body: { email, display_name: displayName, password, role: 'agent' },
  });
  assert.ok(
    res.status === 201 || res.status === 200,
    `POST ${CHATD}/agents returned ${res.status}: ${res.text}`,
  );
  assert.match(res.body?.uuid ?? '', /^[0-9a-f-]{36}$/, `agent JSON without uuid: ${res.text}`);
  const login = await plainLogin(email, password);
  assert.equal(login.uuid, res.body.uuid, 'the login metadata.uuid must be the created agent uuid');
  return { ...login, email, password, displayName };
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
