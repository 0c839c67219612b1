// Shared by the @wazo/sdk end-to-end tests (wazo_sdk.test.mjs and, once
// presence lands, wazo_presence.test.mjs): load the published SDK unmodified,
// point it at the test server, small HTTP helpers. Starting and stopping
// chatgate is chatgate_server.mjs, re-exported here.
//
// This file is not a test file itself (its name matches none of node --test's
// patterns).

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { createRequire } from 'node:module';

import WebSocket from 'ws';

import {
  AsyncQueue,
  SHUTDOWN_TIMEOUT_MS,
  STARTUP_TIMEOUT_MS,
  WAIT_MS,
  server,
  startServer,
  stopServer,
  withTimeout,
} from './chatgate_server.mjs';

export {
  AsyncQueue,
  CHATGATE_BIN,
  SHUTDOWN_TIMEOUT_MS,
  STARTUP_TIMEOUT_MS,
  TEST_TIMEOUT_MS,
  WAIT_MS,
  server,
  startServer,
  stopServer,
  withServerLogs,
  withTimeout,
} from './chatgate_server.mjs';

const require = createRequire(import.meta.url);

// The SDK's ES-module entry (dist/index.mjs) does not resolve on Node 20
// (extensionless imports into sip.js); require() picks the "node" export,
// dist/wazo-sdk.js, a self-contained bundle.
export const sdk = require('@wazo/sdk');

export const CHATD = '/api/chatd/1.0';

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

/**
 * Registers, in the calling `describe`, the hooks every SDK suite needs:
 * point the SDK at the test server and start chatgate before; close the
 * event sockets and stop chatgate after.
 */
export function useSdkServer() {
  before(async () => {
    pointSdkAtTestServer();
    await startServer();
  }, { timeout: STARTUP_TIMEOUT_MS + 5_000 });

  after(async () => {
    closeAllEventSockets();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });
}
