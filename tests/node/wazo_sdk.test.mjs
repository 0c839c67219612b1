// End-to-end test: the published @wazo/sdk (unmodified) against a real
// chatgate process: auth.logIn, chatd rooms and messages, and the
// wazo-websocketd v2 event socket through the SDK's WebSocketClient.
//
// The chatgate binary is taken from $CHATGATE_BIN, defaulting to
// <repo>/target/debug/chatgate (build it with `cargo build --bin chatgate`).
// The only change made to the SDK is the URL scheme (http/ws instead of
// https/wss), see pointSdkAtTestServer() in wazo_helpers.mjs. What the SDK
// sends and reads is written down in the notes on @wazo/sdk (wazo-sdk.md).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  CHATD,
  TEST_TIMEOUT_MS,
  UUID_RE,
  WAIT_MS,
  connectEvents,
  createAgent,
  http,
  newApiClient,
  sdk,
  server,
  useSdkServer,
  withServerLogs,
} from './wazo_helpers.mjs';

const { ChatMessage, ChatRoom, Session } = sdk;
const MESSAGE_CREATED = 'chatd_user_room_message_created';

describe('chatgate agent API with @wazo/sdk', { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  useSdkServer();

  test(
    'logIn, createRoom, sendRoomMessage, getRoomMessages, getUserRooms and a message event',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const client = newApiClient();

      // --- auth.logIn: POST /api/auth/0.1/token, HTTP Basic ----------------
      const session = await client.auth.logIn({
        username: server.adminEmail,
        password: server.adminPassword,
      });
      assert.ok(session instanceof Session);
      assert.equal(typeof session.token, 'string');
      assert.ok(session.token.length > 0);
      assert.match(session.uuid ?? '', UUID_RE, 'Session.uuid comes from data.metadata.uuid');
      assert.match(session.tenantUuid ?? '', UUID_RE, 'Session.tenantUuid comes from data.metadata.tenant_uuid');
      assert.ok(
        session.expiresAt instanceof Date && session.expiresAt.getTime() > Date.now(),
        `Session.expiresAt (from data.utc_expires_at) must be in the future, got ${session.expiresAt}`,
      );
      assert.ok(Array.isArray(session.acl));
      client.setToken(session.token);

      // --- a second agent, so that a room has two members -----------------
      const other = await createAgent(session.token, 'Other Agent');
      assert.notEqual(other.uuid, session.uuid);
      assert.equal(other.tenantUuid, session.tenantUuid);

      // --- event socket of the admin (SDK WebSocketClient, protocol v2) ---
      const { events, log } = await connectEvents(session.token, [MESSAGE_CREATED]);

      // --- chatd.createRoom: POST /users/me/rooms -------------------------
      const room = await client.chatd.createRoom('SDK room', [{ uuid: other.uuid }]);
      assert.ok(room instanceof ChatRoom);
      assert.match(room.uuid ?? '', UUID_RE, `room without uuid: ${JSON.stringify(room)}`);
      assert.equal(room.name, 'SDK room');
      assert.ok(Array.isArray(room.users), `room.users must be an array: ${JSON.stringify(room)}`);
      const memberUuids = room.users.map((u) => u.uuid).sort();
      assert.deepEqual(memberUuids, [session.uuid, other.uuid].sort(), 'the caller is added to the room');

      // --- chatd.sendRoomMessage: POST /users/me/rooms/<room>/messages -----
      const sent = await client.chatd.sendRoomMessage(room.uuid, {
        content: 'hello from @wazo/sdk',
        alias: 'Admin',
      });
      assert.ok(sent instanceof ChatMessage);
      assert.match(sent.uuid ?? '', UUID_RE, `message without uuid: ${JSON.stringify(sent)}`);
      assert.equal(sent.content, 'hello from @wazo/sdk');
      assert.equal(sent.alias, 'Admin');
      assert.equal(sent.userUuid, session.uuid, 'ChatMessage.userUuid comes from user_uuid');
      assert.equal(sent.roomUuid, room.uuid, 'ChatMessage.roomUuid comes from room.uuid');
      assert.ok(
        sent.date instanceof Date && !Number.isNaN(sent.date.getTime()),
        'ChatMessage.date comes from created_at',
      );
      assert.ok(Math.abs(sent.date.getTime() - Date.now()) < 5 * 60_000, `created_at ${sent.date.toISOString()} is not now`);

      // --- chatd.getRoomMessages: GET /users/me/rooms/<room>/messages ------
      const messages = await client.chatd.getRoomMessages(room.uuid, { direction: 'asc', limit: 100 });
      assert.ok(Array.isArray(messages));
      const listed = messages.find((m) => m.uuid === sent.uuid);
      assert.ok(listed, `sent message ${sent.uuid} not in getRoomMessages: ${JSON.stringify(messages)}`);
      assert.ok(listed instanceof ChatMessage);
      assert.equal(listed.content, 'hello from @wazo/sdk');
      assert.equal(listed.alias, 'Admin');
      assert.equal(listed.userUuid, session.uuid);
      assert.equal(listed.roomUuid, room.uuid);
      assert.equal(listed.date.getTime(), sent.date.getTime());

      // --- chatd.getUserRooms: GET /users/me/rooms ------------------------
      const rooms = await client.chatd.getUserRooms();
      assert.ok(Array.isArray(rooms));
      const mine = rooms.find((r) => r.uuid === room.uuid);
      assert.ok(mine, `room ${room.uuid} not in getUserRooms (items missing?): ${JSON.stringify(rooms)}`);
      assert.ok(mine instanceof ChatRoom);
      assert.equal(mine.name, 'SDK room');
      assert.deepEqual(mine.users.map((u) => u.uuid).sort(), memberUuids);

      // --- the OTHER agent posts; the admin's WebSocketClient gets the event
      const reply = await http('POST', `${CHATD}/users/me/rooms/${room.uuid}/messages`, {
        token: other.token,
        body: { content: 'reply from the other agent' },
      });
      assert.equal(reply.status, 201, `other agent's post returned ${reply.status}: ${reply.text}`);
      assert.match(reply.body?.uuid ?? '', UUID_RE);

      let payload;
      try {
        payload = await events[MESSAGE_CREATED].find(
          (p) => p?.data?.uuid === reply.body.uuid,
          WAIT_MS,
          `${MESSAGE_CREATED} for the other agent's message`,
        );
      } catch (err) {
        err.message += `\n--- websocket log ---\n${log.join('\n')}`;
        throw err;
      }
      // The SDK emits message.data of {"op":"event","data":{name,...,data}}.
      assert.equal(payload.name, MESSAGE_CREATED);
      assert.equal(payload.tenant_uuid, session.tenantUuid);
      assert.equal(payload.data.content, 'reply from the other agent');
      assert.equal(payload.data.user_uuid, other.uuid);
      assert.equal(payload.data.room?.uuid, room.uuid);
      // What an app built on the SDK does with it:
      const received = ChatMessage.parse(payload.data);
      assert.equal(received.uuid, reply.body.uuid);
      assert.equal(received.content, 'reply from the other agent');
      assert.equal(received.roomUuid, room.uuid);
      assert.ok(received.isIncoming(session.uuid));
      assert.ok(!Number.isNaN(received.date.getTime()), 'created_at in the event must parse as a date');

      // The reply is listed too, after the admin's message.
      const withReply = await client.chatd.getRoomMessages(room.uuid, { direction: 'asc' });
      const order = withReply.map((m) => m.uuid);
      assert.ok(order.includes(reply.body.uuid), `reply not listed: ${JSON.stringify(withReply)}`);
      assert.ok(order.indexOf(sent.uuid) < order.indexOf(reply.body.uuid), 'direction=asc is oldest first');
    }),
  );
});
