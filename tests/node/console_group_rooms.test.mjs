// Group rooms in the agent console (Chromium): the members panel of an
// agent room (add a colleague, leave), "@" in the reply box offering the
// room's members and sending the chosen ones as `mentions`, and the
// mentioned agent's "@you" badge.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  adminPage,
  adminToken,
  agentToken,
  chatd,
  launchChromium,
  live,
  logIn,
  newAgent,
  newPage,
  shots,
} from './console_browser.mjs';
import { assertAccessible } from './a11y.mjs';

let browser;

/** An agent's uuid, by email (the admin's agent list). */
async function uuidOf(email) {
  const agents = await chatd('GET', '/agents', await adminToken());
  const found = (agents.items || agents).find((a) => a.email === email);
  assert.ok(found, `agent ${email} listed`);
  return found.uuid;
}

describe('group rooms in the console', { timeout: 2 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test(
    'members are added and mentioned from the room, the mentioned agent sees it, and leaving goes back to the inbox',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const bo = await newAgent('Bo');
      const cy = await newAgent('Cy');
      const [boId, cyId] = [await uuidOf(bo.email), await uuidOf(cy.email)];
      const room = await chatd('POST', '/users/me/rooms', await adminToken(), { users: [{ uuid: boId }] });

      const { page, problems } = await adminPage(browser);
      await page.goto(`${server.baseUrl}/console/rooms/${room.uuid}#latest`);
      await live(page);
      const panel = page.locator('aside[aria-label=Members]');
      await panel.locator(`[data-member="${boId}"]`).waitFor();
      await assertAccessible(page, 'an agent room with its members panel');

      // Add Cy with the panel's form: the page shows Cy among the members.
      await page.selectOption('#add-member', cyId);
      await Promise.all([page.waitForNavigation(), panel.locator('button', { hasText: 'Add' }).click()]);
      await live(page);
      await panel.locator(`[data-member="${cyId}"]`).waitFor();
      await page.locator('.msg .notice', { hasText: 'Admin added Cy' }).waitFor();

      // Bo watches the inbox meanwhile.
      const bos = await newPage(browser);
      await logIn(bos.page, bo.email, bo.password);
      await bos.page.goto(`${server.baseUrl}/console/inbox`);
      await live(bos.page);
      const boRow = bos.page.locator(`.list a.row[data-room="${room.uuid}"]`);
      await boRow.waitFor();
      assert.equal(await boRow.locator('.mention-count').count(), 0);

      // "@B" offers Bo; Enter picks (it does not send); Enter then sends.
      await page.click('#reply');
      await page.keyboard.type('@B');
      const option = page.locator('#mention-list [role=option]', { hasText: 'Bo' });
      await option.waitFor();
      assert.equal(await page.getAttribute('#reply', 'aria-expanded'), 'true');
      await page.keyboard.press('Enter');
      assert.equal(await page.locator('#reply').inputValue(), '@Bo ');
      assert.equal(await page.locator('#mention-list').isHidden(), true);
      await page.keyboard.type('can you look?');
      await page.keyboard.press('Enter');
      await page.locator('.msg.mine', { hasText: '@Bo can you look?' }).waitFor();
      const boToken = await agentToken(bo.email, bo.password);
      const messages = await chatd('GET', `/users/me/rooms/${room.uuid}/messages?direction=desc&limit=1`, boToken);
      assert.deepEqual(messages.items[0].mentions, [boId]);

      // Bo's inbox marks the room with an "@" as the mention arrives, and
      // the room marks the message; once read, the room's "@" is gone.
      await boRow.locator('.mention-count').waitFor();
      await assertAccessible(bos.page, 'the inbox with a mention on a room');
      await shots(bos.page, 'mention-inbox');
      const markedRead = bos.page.waitForResponse(
        (r) => r.url().endsWith(`/rooms/${room.uuid}/read`) && r.request().method() === 'PUT',
      );
      await bos.page.goto(`${server.baseUrl}/console/rooms/${room.uuid}#latest`);
      await bos.page.locator('.msg.mentions-me .mention-badge').waitFor();
      assert.ok((await markedRead).ok());
      await bos.page.goto(`${server.baseUrl}/console/inbox`);
      await boRow.waitFor();
      assert.equal(await boRow.locator('.mention-count').count(), 0);
      await bos.context.close();

      // Leave: back to the inbox, saying so.
      await Promise.all([
        page.waitForURL('**/console/inbox?notice=left'),
        page.locator('form[data-leave] button').click(),
      ]);
      assert.deepEqual(problems, []);
    }),
  );
});
