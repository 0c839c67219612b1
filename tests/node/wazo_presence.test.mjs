// End-to-end test: @wazo/sdk's chatd.updateStatus / getContactStatusInfo /
// getState / getLineState round trip against a real chatgate process, plus the
// presence event on the SDK's WebSocketClient. Same setup as wazo_sdk.test.mjs.

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
  server,
  useSdkServer,
  withServerLogs,
} from './wazo_helpers.mjs';

const PRESENCE_UPDATED = 'chatd_presence_updated';

describe('chatgate presence with @wazo/sdk', { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  useSdkServer();

  test(
    'updateStatus then getContactStatusInfo round trip, seen by another agent',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const client = newApiClient();
      const session = await client.auth.logIn({
        username: server.adminEmail,
        password: server.adminPassword,
      });
      client.setToken(session.token);

      // Another agent of the tenant watches presence events with the SDK too.
      const other = await createAgent(session.token, 'Presence Watcher');
      const { events, log } = await connectEvents(other.token, [PRESENCE_UPDATED]);

      // --- chatd.updateStatus: PUT /users/<uuid>/presences {state, status} -> 204
      const updated = await client.chatd.updateStatus(session.uuid, 'away', 'in a meeting');
      assert.equal(updated, true, 'updateStatus resolves true only for a 200/201/204 answer');

      // --- chatd.getContactStatusInfo: GET /users/<uuid>/presences ---------
      const info = await client.chatd.getContactStatusInfo(session.uuid);
      assert.equal(info.uuid, session.uuid);
      assert.equal(info.tenant_uuid, session.tenantUuid);
      assert.equal(info.state, 'away');
      assert.equal(info.status, 'in a meeting');
      assert.equal(typeof info.connected, 'boolean');
      assert.ok(Array.isArray(info.lines), 'lines must be an array (getLineState iterates it)');

      // The other SDK readers of the same answer.
      assert.equal(await client.chatd.getState(session.uuid), 'away');
      assert.equal(typeof (await client.chatd.getLineState(session.uuid)), 'string');

      // The other agent sees it over plain HTTP ...
      const seen = await http('GET', `${CHATD}/users/${session.uuid}/presences`, { token: other.token });
      assert.equal(seen.status, 200, seen.text);
      assert.equal(seen.body.state, 'away');
      assert.equal(seen.body.status, 'in a meeting');

      // ... and as an event on its WebSocketClient.
      let payload;
      try {
        payload = await events[PRESENCE_UPDATED].find(
          (p) => p?.data?.uuid === session.uuid && p.data.state === 'away',
          WAIT_MS,
          `${PRESENCE_UPDATED} for the admin going away`,
        );
      } catch (err) {
        err.message += `\n--- websocket log ---\n${log.join('\n')}`;
        throw err;
      }
      assert.equal(payload.name, PRESENCE_UPDATED);
      assert.equal(payload.data.status, 'in a meeting');
      assert.equal(payload.data.tenant_uuid, session.tenantUuid);

      // updateState (state only) changes the state; back to available.
      assert.equal(await client.chatd.updateState(session.uuid, 'available'), true);
      const back = await client.chatd.getContactStatusInfo(session.uuid);
      assert.equal(back.state, 'available');

      // A plain agent may not change someone else's presence (403).
      const otherClient = newApiClient();
      const otherSession = await otherClient.auth.logIn({ username: other.email, password: other.password });
      assert.match(otherSession.uuid ?? '', UUID_RE);
      otherClient.setToken(otherSession.token);
      await assert.rejects(
        otherClient.chatd.updateStatus(session.uuid, 'away', 'not mine'),
        (err) => err.status === 403,
        'an agent changing another agent presence must get 403',
      );
      // ... but its own, yes.
      assert.equal(await otherClient.chatd.updateStatus(otherSession.uuid, 'away', 'lunch'), true);
      const own = await otherClient.chatd.getContactStatusInfo(otherSession.uuid);
      assert.equal(own.state, 'away');
      assert.equal(own.status, 'lunch');
    }),
  );
});
