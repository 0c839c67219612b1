// Quick replies in the console (desk-api.md, "Quick replies"): under an
// agent's message the replies it offered, as chips (not buttons: only the
// visitor chooses); under a visitor's message the payload of the one it
// chose. axe finds nothing serious on that conversation, light and dark,
// 1280 and 375 px; screenshots in target/screenshots/console-quick-replies-*.png.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { adminPage, adminToken, answer, chatd, launchChromium, newVisitor, post, shots, visitorSays } from './console_browser.mjs';

let browser;

describe('console: quick replies', () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test('offered replies show as chips, the chosen one under the visitor\'s message', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor();
    await visitorSays(visitor, 'Where is my order?');
    const { context, page, problems } = await adminPage(browser);
    await answer(page, visitor);
    const room = visitor.conversation_id;
    const token = await adminToken();
    await chatd('POST', `/users/me/rooms/${room}/messages`, token, {
      content: 'Would you like me to track it?',
      quick_replies: [
        { title: 'Yes, track my order', payload: 'track' },
        { title: 'No', payload: 'no' },
        { title: 'Talk to a person', payload: '{"route":"human"}' },
      ],
    });
    await post('/chatplugin.send', { message: { text: 'Yes, track my order', postbackData: 'track' } }, { authorization: `Bearer ${visitor.token}` });
    await page.reload();
    const chips = page.locator('.msg.mine .qr-chips li');
    await chips.first().waitFor();
    assert.deepEqual(await chips.allTextContents(), ['Yes, track my order', 'No', 'Talk to a person']);
    assert.equal(await page.locator('.qr-chips button, .qr-chips a, .qr-chips [tabindex]').count(), 0, 'chips, not controls');
    const chosen = page.locator('.msg.theirs .qr-chosen');
    assert.equal(await chosen.count(), 1);
    assert.equal(await chosen.textContent(), 'Chose the quick reply track');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      for (const width of [1280, 375]) {
        await page.setViewportSize({ width, height: width === 375 ? 740 : 800 });
        await assertAccessible(page, `console with quick replies, ${colorScheme} ${width}`);
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await shots(page, 'quick-replies');
    assert.deepEqual(problems, []);
    await context.close();
  }));
});
