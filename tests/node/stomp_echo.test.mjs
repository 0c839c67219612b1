// End-to-end test: the published @stomp/stompjs client (unmodified) against a
// real chatgate process.
//
// The chatgate binary is taken from $CHATGATE_BIN, defaulting to
// <repo>/target/debug/chatgate (build it with `cargo build --bin chatgate`).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

import {
  AsyncQueue,
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

const STOMP_PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

// ---------------------------------------------------------------------------
// Generic helpers
// ---------------------------------------------------------------------------

/** The token with its last character replaced so that its decoded value changes. */
function forgeToken(token) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = token.at(-1);
  const i = alphabet.indexOf(last);
  // Flip the highest of the 6 bits: always a data bit of the final base64url
  // character, so even a strict decoder sees a different signature.
  const replacement = i >= 0 ? alphabet[i ^ 0x20] : last === 'A' ? 'B' : 'A';
  const forged = token.slice(0, -1) + replacement;
  assert.notEqual(forged, token);
  return forged;
}

// ---------------------------------------------------------------------------
// HTTP API
// ---------------------------------------------------------------------------

async function postJson(route, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await withTimeout(
    fetch(server.baseUrl + route, { method: 'POST', headers, body: JSON.stringify(body) }),
    WAIT_MS,
    `POST ${route}`,
  );
  const text = await res.text();
  assert.equal(res.status, 200, `POST ${route} returned ${res.status}: ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`POST ${route} returned non-JSON body: ${text}`);
  }
}

async function authenticate() {
  const auth = await postJson('/chatplugin.authenticate', { channel_id: server.demoChannelId });
  assert.equal(typeof auth.token, 'string', `no token in ${JSON.stringify(auth)}`);
  assert.ok(auth.token.length > 0);
  assert.match(auth.conversation_id, /^[0-9a-f-]{36}$/);
  assert.deepEqual(auth.messages, []);
  return auth;
}

// ---------------------------------------------------------------------------
// STOMP
// ---------------------------------------------------------------------------

const clients = new Set();

/**
 * Creates a stompjs Client for `token` and records everything it reports.
 * Call `activate()` on the returned object to connect.
 */
function makeStompClient(token) {
  const events = {
    connected: new AsyncQueue(),
    stompErrors: new AsyncQueue(),
    closes: new AsyncQueue(),
    hooks: {}, // optional one-off observers, see connect()
    log: [],
  };
  const client = new Client({
    webSocketFactory: () => new WebSocket(server.wsUrl, STOMP_PROTOCOLS),
    connectHeaders: { Authorization: `Bearer ${token}` },
    reconnectDelay: 0,
    debug: (msg) => events.log.push(msg),
  });
  client.onConnect = (frame) => {
    events.connected.push(frame);
    events.hooks.connect?.(frame);
  };
  client.onStompError = (frame) => {
    events.stompErrors.push(frame);
    events.hooks.stompError?.(frame);
  };
  client.onWebSocketClose = (evt) => {
    events.closes.push(evt);
    events.hooks.close?.(evt);
  };
  client.onWebSocketError = (evt) => events.log.push(`websocket error: ${evt?.message ?? evt}`);
  clients.add(client);
  return { client, events };
}

function describeStompLog(events) {
  return `\n--- stompjs debug log ---\n${events.log.join('\n')}`;
}

/** Connects and resolves with the CONNECTED frame; fails on ERROR or close. */
async function connect(token) {
  const { client, events } = makeStompClient(token);
  const connected = new Promise((resolve, reject) => {
    events.hooks.connect = resolve;
    events.hooks.stompError = (frame) =>
      reject(new Error(`STOMP ERROR instead of CONNECTED: ${frame.headers.message} ${frame.body}`));
    events.hooks.close = (evt) => reject(new Error(`WebSocket closed before CONNECTED (code ${evt?.code})`));
  });
  client.activate();
  try {
    return { client, events, connected: await withTimeout(connected, WAIT_MS, 'STOMP CONNECTED frame') };
  } catch (err) {
    err.message += describeStompLog(events);
    throw err;
  } finally {
    events.hooks = {};
  }
}

/**
 * A fresh receipt id, and a promise of the RECEIPT frame that names it:
 * the promise fails if no such RECEIPT arrives within WAIT_MS.
 */
function expectReceipt(client, events, what) {
  const id = `r-${Math.random().toString(36).slice(2)}`;
  const receipt = new Promise((resolve) => client.watchForReceipt(id, resolve));
  const received = withTimeout(receipt, WAIT_MS, `RECEIPT of ${what}`).then(
    (frame) => {
      assert.equal(frame.command, 'RECEIPT');
      assert.equal(frame.headers['receipt-id'], id);
      return frame;
    },
    (err) => {
      err.message += describeStompLog(events);
      throw err;
    },
  );
  return { id, received };
}

/**
 * Subscribes to `destination` and returns a queue of received MESSAGE frames,
 * once the server's RECEIPT says the subscription is active (no RECEIPT in
 * time fails the test).
 */
async function subscribe(client, events, destination) {
  const messages = new AsyncQueue();
  const { id, received } = expectReceipt(client, events, `SUBSCRIBE ${destination}`);
  const sub = client.subscribe(destination, (frame) => messages.push(frame), { receipt: id });
  await received;
  return { sub, messages };
}

function parseEvent(frame) {
  try {
    return JSON.parse(frame.body);
  } catch {
    assert.fail(`MESSAGE frame body is not JSON: ${frame.body}`);
  }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('chatgate STOMP over WebSocket with @stomp/stompjs', { timeout: 5 * TEST_TIMEOUT_MS }, () => {
  before(startServer, { timeout: STARTUP_TIMEOUT_MS + 5_000 });

  after(async () => {
    await Promise.allSettled(
      [...clients].map((c) => withTimeout(c.deactivate({ force: true }), 5_000, 'stompjs deactivate')),
    );
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test(
    'a message sent over HTTP is echoed as a STOMP MESSAGE on /queue/message',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const auth = await authenticate();
      const { client, events, connected } = await connect(auth.token);
      assert.equal(
        connected.headers['user-name'],
        auth.conversation_id,
        'CONNECTED user-name must be the conversation id',
      );

      const { messages } = await subscribe(client, events, '/queue/message');

      const sent = await postJson(
        '/chatplugin.send',
        { message: { text: 'hello from stompjs' } },
        auth.token,
      );
      assert.equal(typeof sent.id, 'string');
      assert.equal(sent.content, 'hello from stompjs');
      assert.equal(sent.state, 'DELIVERED');
      assert.equal(sent.alignment, 'RIGHT');
      assert.equal(sent.seq, 1);
      assert.equal(sent.client_message_id, null);

      let frame;
      try {
        frame = await messages.next(WAIT_MS, 'MESSAGE frame for the HTTP-sent message');
      } catch (err) {
        err.message += describeStompLog(events);
        throw err;
      }
      assert.equal(frame.command, 'MESSAGE');
      assert.equal(frame.headers.destination, '/queue/message');
      const event = parseEvent(frame);
      assert.equal(event.type, 'message.created');
      assert.equal(event.conversation_id, auth.conversation_id);
      assert.equal(event.channel_id, server.demoChannelId);
      assert.equal(event.message.id, sent.id);
      assert.equal(event.message.content, 'hello from stompjs');
      assert.equal(event.message.seq, 1);
      assert.equal(event.message.seq, sent.seq);
    }),
  );

  test(
    'a message published to /app/send is echoed on /queue/message',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const auth = await authenticate();
      const { client, events, connected } = await connect(auth.token);
      assert.equal(connected.headers['user-name'], auth.conversation_id);

      const { messages } = await subscribe(client, events, '/queue/message');
      // The RECEIPT is the server's word that the message is stored: the
      // test fails without it, whatever else arrives.
      const { id, received } = expectReceipt(client, events, 'SEND to /app/send');
      client.publish({
        destination: '/app/send',
        headers: { receipt: id },
        body: JSON.stringify({ message: { text: 'via stomp' } }),
      });
      await received;

      let frame;
      try {
        frame = await messages.next(WAIT_MS, 'MESSAGE frame for the STOMP-published message');
      } catch (err) {
        err.message += describeStompLog(events);
        throw err;
      }
      const event = parseEvent(frame);
      assert.equal(event.type, 'message.created');
      assert.equal(event.conversation_id, auth.conversation_id);
      assert.equal(event.channel_id, server.demoChannelId);
      assert.equal(typeof event.message.id, 'string');
      assert.ok(event.message.id.length > 0);
      assert.equal(event.message.content, 'via stomp');
      assert.equal(event.message.seq, 1);
      assert.equal(event.message.state, 'DELIVERED');
      assert.equal(event.message.alignment, 'RIGHT');
    }),
  );

  test(
    'a forged token gets a STOMP ERROR frame with 401 UNAUTHORIZED',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const auth = await authenticate();
      const { client, events } = makeStompClient(forgeToken(auth.token));
      client.activate();

      let error;
      try {
        error = await events.stompErrors.next(WAIT_MS, 'STOMP ERROR frame for a forged token');
      } catch (err) {
        err.message += describeStompLog(events);
        throw err;
      }
      assert.equal(error.command, 'ERROR');
      assert.ok(
        String(error.headers.message).includes('401 UNAUTHORIZED'),
        `ERROR message header was ${JSON.stringify(error.headers.message)}`,
      );

      // The server closes the socket after the ERROR frame.
      await events.closes.next(WAIT_MS, 'the server to close the WebSocket after ERROR');
      await assert.rejects(
        events.connected.next(0, 'CONNECTED'),
        /timed out/,
        'a forged token must not be CONNECTED',
      );
    }),
  );
});
