// A rating in the console (desk-api.md, "Support desk"): when the visitor
// rates a closed conversation, an agent who has it open sees the stars and
// the comment arrive without reloading.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { adminPage, adminToken, chatd, launchChromium, live, newVisitor, post, shots, visitorSays } from './console_browser.mjs';

let browser;

describe('console: ratings', () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test('the open conversation shows the rating as the visitor gives it', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor();
    await visitorSays(visitor, 'Thanks for the help');
    const token = await adminToken();
    const room = visitor.conversation_id;
    await chatd('PUT', `/queues/${room}/answer`, token);
    await chatd('PUT', `/users/me/rooms/${room}/state`, token, { state: 'closed' });

    const { page, problems } = await adminPage(browser);
    await page.goto(`${server.baseUrl}/console/rooms/${room}#latest`);
    await live(page);
    assert.equal(await page.locator('.conv-rating').count(), 0);
    await post('/chatplugin.rate', { rating: 4, comment: 'Quick and kind' }, { authorization: `Bearer ${visitor.token}` });
    const rating = page.locator('.conv-rating');
    await rating.waitFor();
    assert.match(await rating.textContent(), /4\/5/);
    assert.match(await rating.textContent(), /Quick and kind/);
    await live(page);
    await assertAccessible(page, 'a rated conversation');
    await shots(page, 'rated');
    assert.deepEqual(problems, []);
  }));
});
