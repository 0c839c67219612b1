// End-to-end tests of the agent console (/console) in a real browser
// (Debian's chromium driven by playwright-core) against a real chatgate
// process, with a visitor on the published @stomp/stompjs client.
//
// Screenshots of the inbox, a conversation and the channel settings at
// 1280 px and 375 px are written to <repo>/target/screenshots/console-*.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

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
  adminPage,
  queuedVisitors,
} from './console_browser.mjs';
import { assertAccessible } from './a11y.mjs';

let browser;

/** Whether `locator` is inside the visible part of the message list. */
async function inView(page, locator) {
  const box = await locator.boundingBox();
  const pane = await page.locator('#messages').boundingBox();
  return !!box && box.y >= pane.y - 1 && box.y + box.height <= pane.y + pane.height + 1;
}

/** Moves the messages whose content contains `text` back by `ms` (in the server's SQLite file). */
function backdate(text, ms) {
  const db = path.join(server.tmpDir, 'chatgate.db');
  const like = text.replace(/'/g, "''");
  execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, `UPDATE messages SET sent_at = sent_at - ${ms} WHERE content LIKE '%${like}%'`]);
}

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
      const { context, page, problems } = await adminPage(browser);
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
      const { context, page, problems } = await adminPage(browser);
      const [first, second] = await queuedVisitors(page, ['I came first', 'I came second']);

      // Answering puts the focus in the reply box; Escape leaves it.
      await Promise.all([page.waitForURL(roomUrl(first.conversation_id)), page.keyboard.press('a')]);
      await live(page);
      await page.keyboard.press('Escape');
      await Promise.all([page.waitForURL(roomUrl(second.conversation_id)), page.keyboard.press('a')]);
      await live(page);
      await page.keyboard.press('Escape');
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
  test(
    'the tab title counts queued visitors and unread messages of open conversations, not of closed ones',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const carol = await newAgent('Carol');
      const token = await agentToken(carol.email, carol.password);
      const admin = await adminToken();
      // A conversation Carol answered, with messages she has not read, then closed.
      const closed = await newVisitor();
      await visitorSays(closed, 'First question');
      await chatd('PUT', `/queues/${closed.conversation_id}/answer`, token);
      await visitorSays(closed, 'Second question');
      await visitorSays(closed, 'Third question');
      await chatd('PUT', `/users/me/rooms/${closed.conversation_id}/state`, token, { state: 'closed' });
      // And a visitor waiting.
      const waiting = await newVisitor();
      await visitorSays(waiting, 'Anyone?');

      const { context, page, problems } = await newPage(browser);
      await logIn(page, carol.email, carol.password);
      await live(page);
      const closedRow = page.locator(`[data-list=closed] a[data-room="${closed.conversation_id}"]`);
      assert.ok(Number(await closedRow.locator('.unread-count').textContent()) >= 2, 'the closed room has unread messages');
      await page.locator(`[data-list=queue] [data-room="${waiting.conversation_id}"]`).waitFor();
      const queued = await page.locator('[data-list=queue] li[data-room]').count();
      const openUnread = await page.locator('[data-list=mine] .unread-count, [data-list=team] .unread-count').count();
      assert.equal(openUnread, 0);
      assert.equal(await page.title(), `(${queued}) Inbox · chatgate`, 'only the queue counts');

      await chatd('PUT', `/queues/${waiting.conversation_id}/answer`, admin);
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'without JavaScript a conversation opens at its newest message and promises no shortcuts',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const admin = await adminToken();
      const visitor = await newVisitor();
      for (let i = 1; i <= 30; i += 1) await visitorSays(visitor, `Line ${i} of a long story`);
      await chatd('PUT', `/queues/${visitor.conversation_id}/answer`, admin);

      const { context, page } = await newPage(browser, { javaScriptEnabled: false });
      await logIn(page, server.adminEmail, server.adminPassword);
      const blank = page.locator('.blank');
      assert.doesNotMatch(await blank.innerText(), /\bj\b|shortcut/i, 'the inbox offers no shortcuts');
      await Promise.all([
        page.waitForURL(roomUrl(visitor.conversation_id)),
        page.click(`[data-list=mine] a[data-room="${visitor.conversation_id}"]`),
      ]);
      const newest = page.locator('.msg', { hasText: 'Line 30 of a long story' });
      const oldest = page.locator('.msg', { hasText: 'Line 1 of a long story' });
      const scrolled = await page.locator('#messages').evaluate((el) => el.scrollTop);
      assert.ok(scrolled > 0, 'the messages are scrolled');
      assert.ok(await inView(page, newest), 'the newest message is in view');
      assert.ok(!(await inView(page, oldest)), 'the oldest is not');
      assert.equal(await page.locator('.composer .hint').isVisible(), false, 'no "Enter sends"');
      assert.doesNotMatch(await page.locator('#composer').innerText(), /Enter sends/);
      await shots(page, 'nojs-conversation');
      await context.close();

      // With JavaScript: the same, and the hint shows.
      const js = await newPage(browser);
      await logIn(js.page, server.adminEmail, server.adminPassword);
      assert.match(await js.page.locator('.blank').innerText(), /shortcut/);
      await js.page.goto(`${server.baseUrl}/console/rooms/${visitor.conversation_id}`);
      await live(js.page);
      assert.ok(await inView(js.page, js.page.locator('.msg', { hasText: 'Line 30 of a long story' })));
      assert.equal(await js.page.locator('.composer .hint').isVisible(), true);
      assert.deepEqual(js.problems, []);
      await js.context.close();
    }),
  );

  test(
    'messages carry dates, days are separated and one sender\'s run is grouped, also for messages added live',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const admin = await adminToken();
      const visitor = await newVisitor();
      await visitorSays(visitor, 'Three days ago, first');
      await visitorSays(visitor, 'Three days ago, second');
      await visitorSays(visitor, 'Yesterday, alone');
      await chatd('PUT', `/queues/${visitor.conversation_id}/answer`, admin);
      await visitorSays(visitor, 'Today, first');
      await visitorSays(visitor, 'Today, second');
      const DAY = 24 * 3600 * 1000;
      backdate('Three days ago, first', 3 * DAY + 60_000);
      backdate('Three days ago, second', 3 * DAY);
      backdate('Yesterday, alone', DAY);
      backdate('joined', 2 * 3600 * 1000); // the "Admin joined" notice, earlier today

      for (const javaScriptEnabled of [false, true]) {
        const { context, page, problems } = await newPage(browser, { javaScriptEnabled });
        await logIn(page, server.adminEmail, server.adminPassword);
        await page.goto(`${server.baseUrl}/console/rooms/${visitor.conversation_id}`);
        if (javaScriptEnabled) await live(page);
        const seps = await page.locator('#messages .day-sep').allInnerTexts();
        assert.equal(seps.length, 3, `three days: ${seps}`);
        assert.deepEqual(seps.slice(1), ['Yesterday', 'Today'], `${javaScriptEnabled}: ${seps}`);
        assert.match(seps[0], /day/, 'a weekday names the older day');
        const yesterday = page.locator('.msg', { hasText: 'Yesterday, alone' }).locator('time');
        assert.match(await yesterday.innerText(), /^Yesterday \d\d:\d\d/);
        assert.match(await yesterday.getAttribute('datetime'), /^\d{4}-\d\d-\d\dT\d\d:\d\d/);
        const older = page.locator('.msg', { hasText: 'Three days ago, first' }).locator('time');
        assert.match(await older.innerText(), /\d/);
        assert.doesNotMatch(await older.innerText(), /^\d\d:\d\d$/, 'an older message names its date');
        // The second message of a run hides its sender; a run across days does not.
        assert.equal(await page.locator('.msg', { hasText: 'Three days ago, second' }).getAttribute('class'), 'msg theirs grouped');
        assert.equal(await page.locator('.msg', { hasText: 'Yesterday, alone' }).getAttribute('class'), 'msg theirs');
        assert.equal(await page.locator('.msg', { hasText: 'Today, second' }).getAttribute('class'), 'msg theirs grouped');
        // (Still there for screen readers, as a 1 px clipped box.)
        const senderWidth = async (text) => (await page.locator('.msg', { hasText: text }).locator('.sender').boundingBox()).width;
        assert.ok((await senderWidth('Three days ago, second')) <= 1, 'a grouped message does not repeat the name');
        assert.ok((await senderWidth('Three days ago, first')) > 10, 'the first of a run names its sender');
        if (javaScriptEnabled) {
          // Live: the agent's reply starts a run; the visitor's answer starts
          // another; a second answer joins it.
          await page.locator('[data-reply]').fill('Here is the answer');
          await page.locator('[data-reply]').press('Enter');
          await page.locator('.msg.mine', { hasText: 'Here is the answer' }).waitFor();
          await visitorSays(visitor, 'Live one');
          await visitorSays(visitor, 'Live two');
          const two = page.locator('.msg', { hasText: 'Live two' });
          await two.waitFor();
          assert.equal(await page.locator('.msg', { hasText: 'Here is the answer' }).getAttribute('class'), 'msg mine');
          assert.equal(await page.locator('.msg', { hasText: 'Live one' }).getAttribute('class'), 'msg theirs');
          assert.equal(await two.getAttribute('class'), 'msg theirs grouped');
          assert.deepEqual((await page.locator('#messages .day-sep').allInnerTexts()).slice(1), ['Yesterday', 'Today']);
          await shots(page, 'days');
        }
        assert.deepEqual(problems, []);
        await context.close();
      }
    }),
  );

  test(
    'desktop notifications: off until turned on, then shown only while the tab is hidden',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const admin = await adminToken();
      const { context, page, problems } = await newPage(browser);
      await context.grantPermissions(['notifications'], { origin: server.baseUrl });
      // Records what the page's own code asks of the browser's Notification API.
      await context.addInitScript(() => {
        window.__notes = [];
        window.__asked = 0;
        const Real = window.Notification;
        class Recorded extends Real {
          constructor(title, options) {
            window.__notes.push({ title, body: options && options.body });
            super(title, options);
          }
          static requestPermission(...args) {
            window.__asked += 1;
            return Real.requestPermission(...args);
          }
        }
        window.Notification = Recorded;
      });
      const setHidden = (hidden) => page.evaluate((h) => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
      const notes = () => page.evaluate(() => window.__notes);
      const queuedVisitor = async (text) => {
        const v = await newVisitor();
        await visitorSays(v, text);
        await page.locator(`[data-list=queue] [data-room="${v.conversation_id}"]`).waitFor();
        return v;
      };
      const visitors = [];

      await logIn(page, server.adminEmail, server.adminPassword);
      await live(page);
      const button = page.locator('[data-notify]');
      assert.equal(await button.getAttribute('aria-pressed'), 'false', 'off by default');
      assert.equal(await page.evaluate(() => window.__asked), 0, 'no permission asked on load');

      // Off: nothing, even hidden.
      await setHidden(true);
      visitors.push(await queuedVisitor('Nobody told'));
      assert.deepEqual(await notes(), []);
      await setHidden(false);

      // Turned on; remembered over a reload.
      await button.click();
      assert.equal(await button.getAttribute('aria-pressed'), 'true');
      await page.reload();
      await live(page);
      assert.equal(await page.locator('[data-notify]').getAttribute('aria-pressed'), 'true', 'remembered');
      await shots(page, 'notify-on');
      assert.equal(await page.evaluate(() => window.__asked), 0, 'no permission asked on load');

      // Visible: nothing.
      visitors.push(await queuedVisitor('Seen on screen'));
      assert.deepEqual(await notes(), []);

      // Hidden: a queued visitor, and a message in one's own conversation.
      await setHidden(true);
      const mine = await queuedVisitor('Please help');
      await page.waitForFunction(() => window.__notes.length === 1);
      assert.deepEqual(await notes(), [{ title: 'A visitor is waiting', body: 'Please help' }]);
      await chatd('PUT', `/queues/${mine.conversation_id}/answer`, admin);
      await visitorSays(mine, 'Still there?');
      await page.waitForFunction(() => window.__notes.length === 2);
      assert.deepEqual((await notes())[1], { title: 'Visitor', body: 'Still there?' });

      // Turned off: nothing more.
      await setHidden(false);
      await page.locator('[data-notify]').click();
      assert.equal(await page.locator('[data-notify]').getAttribute('aria-pressed'), 'false');
      await setHidden(true);
      await visitorSays(mine, 'Hello again');
      await page.locator(`[data-list=mine] a[data-room="${mine.conversation_id}"] .preview`, { hasText: 'Hello again' }).waitFor();
      assert.equal((await notes()).length, 2);

      for (const v of visitors) await chatd('PUT', `/queues/${v.conversation_id}/answer`, admin);
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );
  test(
    'a queued conversation is read before answering (no read mark, no typing), then answered with a',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const visitor = await newVisitor();
      await visitorSays(visitor, 'Can I change my delivery address?');
      await visitorSays(visitor, 'It is for order 1234.');
      const { context, page, problems } = await newPage(browser);
      const calls = [];
      page.on('request', (req) => {
        if (/\/read$|\/activities$/.test(new URL(req.url()).pathname)) calls.push(`${req.method()} ${req.url()}`);
      });
      await logIn(page, server.adminEmail, server.adminPassword);
      await live(page);
      const link = page.locator(`[data-list=queue] [data-room="${visitor.conversation_id}"] a.queue-link`);
      await Promise.all([page.waitForURL(`**/console/queue/${visitor.conversation_id}`), link.click()]);
      await live(page);
      await page.locator('.msg', { hasText: 'It is for order 1234.' }).waitFor();
      assert.equal(await page.locator('#composer').count(), 0, 'no reply box');
      assert.match(await page.locator('.readonly-note').innerText(), /not told/);
      await page.locator('button[data-answer-this]').waitFor();
      for (const width of [1280, 375]) {
        await page.setViewportSize({ width, height: width === 375 ? 740 : 800 });
        await assertAccessible(page, `queued conversation at ${width} px`);
      }
      await page.setViewportSize({ width: 1280, height: 800 });
      await shots(page, 'queue-preview');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'queued conversation, dark');
      await shots(page, 'queue-preview-dark');
      await page.emulateMedia({ colorScheme: 'light' });
      // Keys typed while reading send nothing either.
      await page.keyboard.type('x');
      assert.deepEqual(calls, [], 'reading marks nothing read and sends no typing');

      // a answers the one being read, and the reply box takes the focus.
      await Promise.all([page.waitForURL(roomUrl(visitor.conversation_id)), page.keyboard.press('a')]);
      await live(page);
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'reply');
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'an admin filters all conversations, reads one and assigns it (accessible, screenshots)',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const dana = await newAgent('Dana');
      const admin = await adminToken();
      const open = await newVisitor();
      await visitorSays(open, 'I talk with the admin');
      await chatd('PUT', `/queues/${open.conversation_id}/answer`, admin);
      const queued = await newVisitor();
      await visitorSays(queued, 'I wait in the queue');

      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      await Promise.all([page.waitForURL('**/console/all'), page.click('nav.tabs a:has-text("All")')]);
      await page.locator(`.all-row[data-room="${open.conversation_id}"]`).waitFor();
      await page.locator(`.all-row[data-room="${queued.conversation_id}"]`).waitFor();
      for (const width of [1280, 375]) {
        await page.setViewportSize({ width, height: width === 375 ? 740 : 800 });
        await assertAccessible(page, `All list at ${width} px`);
      }
      await page.setViewportSize({ width: 1280, height: 800 });
      await shots(page, 'all');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'All list, dark');
      await shots(page, 'all-dark');
      await page.emulateMedia({ colorScheme: 'light' });

      // The state filter applies on change.
      await Promise.all([page.waitForURL(/\/console\/all\?state=queued/), page.selectOption('#f-state', 'queued')]);
      assert.equal(await page.locator(`.all-row[data-room="${open.conversation_id}"]`).count(), 0);
      await page.locator(`.all-row[data-room="${queued.conversation_id}"]`).waitFor();

      // Read it, then hand it to Dana.
      await Promise.all([
        page.waitForURL(`**/console/all/${queued.conversation_id}`),
        page.click(`.all-row[data-room="${queued.conversation_id}"]`),
      ]);
      await page.locator('.msg', { hasText: 'I wait in the queue' }).waitFor();
      for (const width of [1280, 375]) {
        await page.setViewportSize({ width, height: width === 375 ? 740 : 800 });
        await assertAccessible(page, `supervised conversation at ${width} px`);
      }
      await page.setViewportSize({ width: 1280, height: 800 });
      await shots(page, 'supervise');
      await page.selectOption('#assign-to', { label: 'Dana' });
      await Promise.all([page.waitForNavigation(), page.click('form.assign button[type=submit]')]);
      await page.locator('.notice-bar', { hasText: 'assigned' }).waitFor();
      assert.match(await page.locator('.conv-title .assignee').innerText(), /Assigned to Dana/);
      const danaToken = await agentToken(dana.email, dana.password);
      const rooms = await chatd('GET', '/users/me/rooms', danaToken);
      assert.ok(rooms.items.some((r) => r.uuid === queued.conversation_id), 'Dana has it');
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );
});
