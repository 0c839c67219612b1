// End-to-end tests of the agent console (/console) in a real browser
// (Debian's chromium driven by playwright-core) against a real chatgate
// process, with a visitor on the published @stomp/stompjs client.
//
// Screenshots of the inbox, a conversation and the channel settings at
// 1280 px and 375 px are written to <repo>/target/screenshots/console-*.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { TEST_TIMEOUT_MS, WAIT_MS, server, startServer, stopServer, withServerLogs, withTimeout } from './chatgate_server.mjs';
import {
  launchChromium,
  post,
  newVisitor,
  visitorSays,
  visitorHistory,
  visitorSocket,
  adminToken,
  newAgent,
  newPage,
  logIn,
  pageHears,
  holdNextRows,
  answerInConsole,
  live,
  shots,
  stompClients,
  roomUrl,
  agentToken,
  chatd,
} from './console_helpers.mjs';

let browser;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('the agent console in a browser', { timeout: 12 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    // Every test logs agents in from 127.0.0.1: only failed logins count
    // against the login budgets, so successful ones need no lifting.
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    for (const client of stompClients) await client.deactivate().catch(() => {});
    await browser?.close();
    await stopServer();
  });

  test(
    'a queued visitor appears live, is answered and replied to, and the reply shows delivered',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      await live(page);
      await page.evaluate(() => { window.__sameDocument = true; });

      const visitor = await newVisitor();
      const socket = await visitorSocket(visitor);
      await visitorSays(visitor, 'Hello, is my <order> shipped?');
      const row = page.locator(`[data-list=queue] [data-room="${visitor.conversation_id}"]`);
      await row.waitFor();
      assert.match(await row.textContent(), /Hello, is my <order> shipped\?/);
      assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');
      assert.match(await page.title(), /^\(1\) /, 'the title badge counts the waiting visitor');
      await shots(page, 'inbox');

      await answerInConsole(page, visitor, 'Hello, is my <order> shipped?');

      // Our typing reaches the visitor.
      await page.locator('[data-reply]').pressSequentially('On its way', { delay: 10 });
      const typing = await socket.events.find((e) => e.type === 'typing' && e.typing === true, WAIT_MS, 'typing');
      assert.equal(typing.typing, true);
      await page.locator('[data-reply]').press('Shift+Enter');
      await page.locator('[data-reply]').pressSequentially('since this morning.');
      await page.locator('[data-reply]').press('Enter');

      const reply = await socket.messages.find(
        (m) => m.message?.content === 'On its way\nsince this morning.',
        WAIT_MS,
        'the reply on the visitor socket',
      );
      assert.equal(reply.message.alignment, 'LEFT');
      await page.locator('.msg.mine .tick.delivered, .msg.mine .tick.read').first().waitFor();
      assert.equal(await page.locator('[data-reply]').inputValue(), '', 'the box is cleared');

      // The visitor types, then writes: both show up live.
      socket.client.publish({ destination: '/app/typing', body: JSON.stringify({ typing: true }) });
      await page.locator('#typing').waitFor({ state: 'visible' });
      await visitorSays(visitor, 'Great, thanks!');
      await page.locator('.msg.theirs', { hasText: 'Great, thanks!' }).waitFor();
      await page.locator('#typing').waitFor({ state: 'hidden' });
      // The list beside it follows: last message, and nothing unread while we look.
      const mine = page.locator(`[data-list=mine] a[data-room="${visitor.conversation_id}"]`);
      await mine.locator('.preview', { hasText: 'Great, thanks!' }).waitFor();
      await mine.locator('.unread-count').waitFor({ state: 'detached' });
      assert.equal(await page.evaluate(() => window.__sameDocument), undefined, 'answering navigated');
      await shots(page, 'conversation');

      // The help overlay.
      await page.locator('[data-reply]').press('Escape'); // leaves the reply box
      await page.keyboard.press('?');
      await page.locator('#help').waitFor({ state: 'visible' });
      await page.keyboard.press('Escape');
      await page.locator('#help').waitFor({ state: 'hidden' });

      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'a read mark that comes before the reply is shown still ticks the reply read',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      const visitor = await newVisitor();
      const socket = await visitorSocket(visitor);
      await visitorSays(visitor, 'Is anyone there?');
      const readAtPage = pageHears(page, (frame) => frame.includes('"chatd_user_room_read"'));
      await answerInConsole(page, visitor, 'Is anyone there?');

      const { rendered } = await holdNextRows(page, readAtPage);
      await page.locator('[data-reply]').fill('Yes, right here.');
      await page.locator('[data-reply]').press('Enter');
      const reply = await socket.messages.find(
        (m) => m.message?.content === 'Yes, right here.',
        WAIT_MS,
        'the reply on the visitor socket',
      );
      await withTimeout(rendered, WAIT_MS, 'the reply row fetched');
      socket.client.publish({ destination: '/app/read', body: JSON.stringify({ up_to_seq: reply.message.seq }) });
      await withTimeout(readAtPage, WAIT_MS, 'the read mark at the page');
      await page.locator('.msg.mine', { hasText: 'Yes, right here.' }).locator('.tick.read').waitFor();

      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'a reply delivered before its row is shown still shows delivered',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      const visitor = await newVisitor();
      await visitorSays(visitor, 'Hello? I will be right back.');
      const deliveredAtPage = pageHears(
        page,
        (frame) => frame.includes('"chatd_user_room_message_updated"') && frame.includes('"DELIVERED"'),
      );
      await answerInConsole(page, visitor, 'Hello? I will be right back.');

      // The visitor is away: the reply is stored PENDING and its row
      // fetched so; it reaches the browser after the visitor came back.
      const { rendered } = await holdNextRows(page, deliveredAtPage);
      await page.locator('[data-reply]').fill('Take your time.');
      await page.locator('[data-reply]').press('Enter');
      await withTimeout(rendered, WAIT_MS, 'the reply row fetched');
      const socket = await visitorSocket(visitor, 0);
      await socket.messages.find((m) => m.message?.content === 'Take your time.', WAIT_MS, 'the reply, replayed');
      await withTimeout(deliveredAtPage, WAIT_MS, 'DELIVERED at the page');
      await page.locator('.msg.mine', { hasText: 'Take your time.' }).locator('.tick.delivered').waitFor();

      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'two agents answer the same visitor at once: one wins, the other is told it was taken',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const bob = await newAgent('Bob');
      const a = await newPage(browser);
      const b = await newPage(browser);
      await logIn(a.page, server.adminEmail, server.adminPassword);
      await logIn(b.page, bob.email, bob.password);
      await Promise.all([live(a.page), live(b.page)]);

      const visitor = await newVisitor();
      await visitorSays(visitor, 'Race me');
      const selector = `[data-list=queue] [data-room="${visitor.conversation_id}"] form.answer`;
      await Promise.all([a.page.locator(selector).waitFor(), b.page.locator(selector).waitFor()]);

      const submit = (page) =>
        Promise.all([
          page.waitForNavigation(),
          page.evaluate((sel) => document.querySelector(sel).requestSubmit(), selector),
        ]);
      await Promise.all([submit(a.page), submit(b.page)]);

      const urls = [a.page.url(), b.page.url()];
      const won = urls.filter((u) => roomUrl(visitor.conversation_id).test(u));
      const lost = urls.filter((u) => u.endsWith('/console/inbox?notice=taken'));
      assert.equal(won.length, 1, `exactly one winner: ${urls}`);
      assert.equal(lost.length, 1, `exactly one told: ${urls}`);
      const loser = a.page.url().includes('notice=taken') ? a.page : b.page;
      assert.match(await loser.locator('.notice-bar').textContent(), /Another agent answered this visitor first/);
      assert.equal(await loser.locator(`[data-list=queue] [data-room="${visitor.conversation_id}"]`).count(), 0);
      assert.deepEqual([...a.problems, ...b.problems], []);
      await a.context.close();
      await b.context.close();
    }),
  );

  test(
    'without JavaScript an agent logs in, opens a room and replies; the visitor gets the reply',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page } = await newPage(browser, { javaScriptEnabled: false });
      const visitor = await newVisitor();
      await visitorSays(visitor, 'No scripts here');
      await logIn(page, server.adminEmail, server.adminPassword);
      const row = page.locator(`[data-list=queue] [data-room="${visitor.conversation_id}"]`);
      assert.match(await row.textContent(), /No scripts here/);
      await Promise.all([
        page.waitForURL(roomUrl(visitor.conversation_id)),
        row.locator('button[type=submit]').click(),
      ]);
      await page.fill('textarea[name=content]', 'Replied without JavaScript');
      await Promise.all([page.waitForNavigation(), page.click('#composer button[type=submit]')]);
      await page.locator('.msg.mine', { hasText: 'Replied without JavaScript' }).waitFor();
      const history = await visitorHistory(visitor);
      const reply = history.find((m) => m.content === 'Replied without JavaScript');
      assert.ok(reply, JSON.stringify(history));
      assert.equal(reply.alignment, 'LEFT');

      // Close it, as a form.
      await Promise.all([page.waitForNavigation(), page.click('.conv-actions button:has-text("Close")')]);
      await page.locator('.conv-actions button:has-text("Reopen")').waitFor();
      await context.close();
    }),
  );

  test(
    'keyboard: a answers the visitor waiting longest, j and k move between conversations',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      await live(page);
      const first = await newVisitor();
      await visitorSays(first, 'I came first');
      const second = await newVisitor();
      await visitorSays(second, 'I came second');
      await page.locator(`[data-list=queue] [data-room="${second.conversation_id}"]`).waitFor();

      await Promise.all([page.waitForURL(roomUrl(first.conversation_id)), page.keyboard.press('a')]);
      await live(page);
      await Promise.all([page.waitForURL(roomUrl(second.conversation_id)), page.keyboard.press('a')]);
      await live(page);
      // Newest activity first: the second visitor's room, then the first's.
      await Promise.all([page.waitForURL(roomUrl(first.conversation_id)), page.keyboard.press('j')]);
      await Promise.all([page.waitForURL(roomUrl(second.conversation_id)), page.keyboard.press('k')]);
      await page.keyboard.press('r');
      assert.equal(await page.evaluate(() => document.activeElement?.name), 'content', 'r focuses the reply box');
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'the channel settings page shows the embed snippet (screenshots)',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      await page.goto(`${server.baseUrl}/console/admin/channels/${server.demoChannelId}`);
      const snippet = await page.locator('#snippet').textContent();
      assert.match(snippet, new RegExp(`data-channel-id="${server.demoChannelId}"`));
      await shots(page, 'channel');
      await page.goto(`${server.baseUrl}/console/colleagues`);
      await shots(page, 'team');
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );
});
