// Keyboard-only use of the agent console in Chromium: where focus is
// after each shortcut (a, j, k, r, Escape, ?), and the shortcuts dialog's
// focus trap (Tab and Shift+Tab stay inside; Escape closes it and gives
// focus back to where it was).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  launchChromium,
  live,
  logIn,
  newPage,
  newVisitor,
  roomUrl,
  visitorSays,
  adminPage,
  queuedVisitors,
} from './console_browser.mjs';
import { assertAccessible } from './a11y.mjs';

let browser;

/** What has focus: its id, or its tag and data-room, and whether it is in the dialog. */
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return {
      id: el?.id || '',
      tag: el?.tagName.toLowerCase() || '',
      room: el?.dataset?.room || '',
      current: el?.getAttribute('aria-current') || '',
      inHelp: !!el?.closest('#help'),
      help: !!el?.matches('[data-help]'),
    };
  });
}

describe('the console by keyboard', { timeout: 4 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test(
    'a puts focus in the reply box, j and k on the conversation they open, Escape leaves the reply box',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await adminPage(browser);
      const [first, second] = await queuedVisitors(page, ['First in line', 'Second in line']);

      await Promise.all([page.waitForURL(roomUrl(first.conversation_id)), page.keyboard.press('a')]);
      await live(page);
      assert.equal((await focused(page)).id, 'reply', 'after a: the reply box');
      // Typing goes straight into the reply.
      await page.keyboard.type('Hello');
      assert.equal(await page.locator('#reply').inputValue(), 'Hello');
      await page.locator('#reply').fill('');

      await page.keyboard.press('Escape');
      assert.equal((await focused(page)).id, 'messages', 'after Escape: the conversation, not the page');

      await Promise.all([page.waitForURL(roomUrl(second.conversation_id)), page.keyboard.press('a')]);
      await live(page);
      assert.equal((await focused(page)).id, 'reply', 'after the second a: the reply box');
      await page.keyboard.press('Escape');

      // Newest activity first: the second visitor's room, then the first's.
      await Promise.all([page.waitForURL(roomUrl(first.conversation_id)), page.keyboard.press('j')]);
      let at = await focused(page);
      assert.deepEqual([at.tag, at.room, at.current], ['a', first.conversation_id, 'true'], 'after j: its row');
      await Promise.all([page.waitForURL(roomUrl(second.conversation_id)), page.keyboard.press('k')]);
      at = await focused(page);
      assert.deepEqual([at.tag, at.room, at.current], ['a', second.conversation_id, 'true'], 'after k: its row');

      await page.keyboard.press('r');
      assert.equal((await focused(page)).id, 'reply', 'after r: the reply box');
      // Shift+Enter is a new line, Enter sends; the box keeps the focus.
      await page.keyboard.type('On my way');
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.type('to help');
      await page.keyboard.press('Enter');
      await page.locator('.msg.mine', { hasText: 'to help' }).waitFor();
      assert.equal(await page.locator('.msg.mine .text', { hasText: 'to help' }).innerText(), 'On my way\nto help');
      await page.waitForFunction(() => document.activeElement?.id === 'reply' && !document.activeElement.disabled);
      assert.equal(await page.locator('#reply').inputValue(), '');
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'the shortcuts dialog keeps Tab inside, closes on Escape and gives focus back',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await adminPage(browser);

      // Opened with ?, from a conversation row.
      const firstRow = page.locator('#lists a.row').first();
      const hasRow = (await firstRow.count()) > 0;
      if (hasRow) await firstRow.focus();
      const before = await focused(page);
      await page.keyboard.press('?');
      await page.locator('#help').waitFor({ state: 'visible' });
      assert.ok((await focused(page)).inHelp, 'focus moves into the dialog');
      await assertAccessible(page, 'shortcuts dialog');
      for (let i = 0; i < 5; i += 1) {
        await page.keyboard.press('Tab');
        assert.ok((await focused(page)).inHelp, `Tab ${i + 1} stays in the dialog`);
      }
      for (let i = 0; i < 5; i += 1) {
        await page.keyboard.press('Shift+Tab');
        assert.ok((await focused(page)).inHelp, `Shift+Tab ${i + 1} stays in the dialog`);
      }
      // The page's shortcuts wait while it is open.
      await page.keyboard.press('j');
      assert.ok((await focused(page)).inHelp, 'j does nothing while the dialog is open');
      await page.keyboard.press('Escape');
      await page.locator('#help').waitFor({ state: 'hidden' });
      assert.deepEqual(await focused(page), before, 'focus is back where it was');

      // Opened with its button: focus returns to the button.
      await page.locator('[data-help]').focus();
      await page.keyboard.press('Enter');
      await page.locator('#help').waitFor({ state: 'visible' });
      assert.ok((await focused(page)).inHelp);
      await page.keyboard.press('Escape');
      await page.locator('#help').waitFor({ state: 'hidden' });
      assert.ok((await focused(page)).help, 'focus is back on the ? button');

      // Its Close button also gives focus back.
      await page.keyboard.press('Enter');
      await page.locator('#help').waitFor({ state: 'visible' });
      await page.keyboard.press('Enter'); // on Close
      await page.locator('#help').waitFor({ state: 'hidden' });
      assert.ok((await focused(page)).help, 'Close gives focus back to the ? button');
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );
});
