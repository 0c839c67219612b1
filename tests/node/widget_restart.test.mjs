// The widget survives a server restart: its socket drops while the panel is
// open, the agent writes three messages before it is back, and once it
// reconnects (catching up with since-seq) it shows each of them once, in order.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, restartServer, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  adminLogin,
  agentSays,
  answer,
  hostPage,
  launchBrowser,
  openPanel,
  queuedRoom,
  rowTexts,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

let browser;
let host;

describe('chat widget across a server restart', { timeout: 90_000 }, () => {
  before(async () => {
    await startServer();
    host = await startHostServer({ '/': () => hostPage({ channels: [server.demoChannelId] }) });
    browser = await launchBrowser();
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('reconnects after a restart and shows what the agent wrote meanwhile, once and in order', withServerLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    await openPanel(page);
    const first = `Before the restart ${crypto.randomUUID()}`;
    await sendText(page, first);
    await waitTick(page, first, 'sent');
    let admin = await adminLogin();
    const room = (await queuedRoom(admin, server.demoChannelId, first)).uuid;
    await answer(admin, room);
    await agentSays(admin, room, 'Hello, I am here.');
    await waitRow(page, 'Hello, I am here.');

    // The browser cannot reach the server until the agent has written, so
    // the three messages can only come by catching up after reconnecting.
    const replies = [1, 2, 3].map((n) => `While you were away ${n} ${crypto.randomUUID()}`);
    await restartServer(async () => {
      await until(() => widget(page).locator('.bar').isVisible(), 'the widget to notice the lost socket');
      await context.setOffline(true);
    });
    admin = await adminLogin();
    for (const r of replies) await agentSays(admin, room, r);
    await context.setOffline(false);

    await until(async () => {
      const texts = await rowTexts(page);
      return replies.every((r) => texts.includes(r));
    }, 'the three replies after reconnecting', 30_000);
    const texts = await rowTexts(page);
    for (const r of replies) assert.equal(texts.filter((t) => t === r).length, 1, `${r} shown once`);
    const at = replies.map((r) => texts.indexOf(r));
    assert.deepEqual(at, [...at].sort((a, b) => a - b), 'in order');
    assert.equal(texts.at(-1), replies[2]);
    await until(async () => !(await widget(page).locator('.bar').isVisible()), 'the reconnecting bar to go');

    // And the conversation goes on over the new socket.
    const after = `After the restart ${crypto.randomUUID()}`;
    await sendText(page, after);
    await waitTick(page, after, 'sent');
    await agentSays(admin, room, 'Still here.');
    await waitRow(page, 'Still here.');
    const seqs = await widget(page).locator('.log .m[data-seq]').evaluateAll((els) => els.map((e) => +e.dataset.seq));
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'every seq once, no gap');
    await context.close();
  }));
});
