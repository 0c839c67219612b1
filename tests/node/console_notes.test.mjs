// Private notes in the console (desk-api.md, "Support desk"): ticking
// "Private note" turns the reply box into a note; the note shows among the
// messages as one (agents only), on the writer's page and live on a
// colleague's, and the visitor's socket and history never see it, while
// the visitor is not told anyone was typing. Without JavaScript the same
// form posts a note. axe finds nothing serious; screenshots at desktop and
// phone widths in target/screenshots.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  adminPage, answerInConsole, chatd, adminToken, launchChromium, live, newPage, logIn, newVisitor,
  shots, visitorHistory, visitorSays, visitorSocket, stompClients,
} from './console_browser.mjs';

let browser;

describe('console: private notes', () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    for (const client of stompClients) await client.deactivate();
    await browser?.close();
    await stopServer();
  });

  test('a note is written from the reply box, shown as a note to agents and never to the visitor', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor();
    await visitorSays(visitor, 'My order #1234 never came');
    const socket = await visitorSocket(visitor);
    const { page, problems } = await adminPage(browser);
    await page.goto(server.baseUrl + '/console/inbox');
    await answerInConsole(page, visitor, 'never came');

    // The toggle turns the box into a note.
    await page.check('[data-private]');
    assert.equal(await page.getAttribute('#reply', 'placeholder'), 'Write a private note (agents only)…');
    assert.ok(await page.locator('#composer.note-mode').isVisible());
    await page.click('#reply');
    await page.keyboard.type('Checked the courier: **lost in transit**. Refund approved.');
    await page.keyboard.press('Enter');
    const shown = page.locator('.msg.note', { hasText: 'lost in transit' });
    await shown.waitFor();
    assert.equal(await shown.locator('.note-tag').textContent(), 'Private note');
    assert.equal(await shown.locator('strong').textContent(), 'lost in transit');
    assert.equal(await shown.locator('[data-tick]').count(), 0);
    await assertAccessible(page, 'a conversation with a private note');
    await shots(page, 'note');

    // The visitor heard nothing of it: no message, and no "typing" while
    // it was written. (A reply posted by the API now is the first thing on
    // the visitor's socket; events before it on the same socket are all
    // there by then.)
    const token = await adminToken();
    await chatd('POST', `/users/me/rooms/${visitor.conversation_id}/messages`, token, { content: 'Marker' });
    await socket.messages.find((m) => m.message.content === 'Marker', 10_000, 'the marker reply');
    assert.deepEqual([...new Set(socket.messages.seen.map((m) => m.message.content))], ['Admin joined', 'Marker']);
    assert.deepEqual(socket.events.seen.filter((e) => e.type === 'typing' && e.typing), []);

    // Back to replying: the visitor gets this one.
    await page.uncheck('[data-private]');
    await page.click('#reply');
    await page.keyboard.type('So sorry: a refund is on its way.');
    await page.keyboard.press('Enter');
    await page.locator('.msg.mine:not(.note)', { hasText: 'refund is on its way' }).waitFor();
    await socket.messages.find((m) => m.message.content.startsWith('So sorry'), 10_000, 'the reply');
    assert.ok(socket.messages.seen.every((m) => !m.message.content.includes('lost in transit')));
    const history = await visitorHistory(visitor);
    assert.deepEqual(history.map((m) => m.seq), history.map((_, i) => i + 1));
    assert.ok(history.every((m) => !m.content.includes('lost in transit')), JSON.stringify(history));

    // A colleague with the conversation open sees the note arrive.
    const colleague = await adminPage(browser);
    await colleague.page.goto(`${server.baseUrl}/console/rooms/${visitor.conversation_id}#latest`);
    await live(colleague.page);
    await chatd('POST', `/users/me/rooms/${visitor.conversation_id}/messages`, token, {
      content: 'Second note, from the API', private: true,
    });
    await colleague.page.locator('.msg.note', { hasText: 'Second note' }).waitFor();
    await page.locator('.msg.note', { hasText: 'Second note' }).waitFor();
    await colleague.context.close();
    assert.deepEqual(problems, []);
  }));

  test('without JavaScript the reply form posts a note', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor();
    await visitorSays(visitor, 'Hello without script');
    const token = await adminToken();
    await chatd('PUT', `/queues/${visitor.conversation_id}/answer`, token);
    const { page, context } = await newPage(browser, { javaScriptEnabled: false });
    await logIn(page, server.adminEmail, server.adminPassword);
    await page.goto(`${server.baseUrl}/console/rooms/${visitor.conversation_id}`);
    await page.check('[data-private]');
    await page.fill('#reply', 'A note without script');
    await Promise.all([page.waitForNavigation(), page.click('#composer button[type=submit]')]);
    await page.locator('.msg.note', { hasText: 'A note without script' }).waitFor();
    const history = await visitorHistory(visitor);
    assert.ok(history.every((m) => m.content !== 'A note without script'));
    await context.close();
  }));
});
