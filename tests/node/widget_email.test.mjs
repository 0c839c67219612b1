// Email in the widget (issue 18, "No visitor lost"), against a real SMTP
// server (aiosmtpd, tests/api/smtp_sink.py): with no agent available on a
// channel with `email_fallback`, the widget offers an optional email field
// ("we'll reply here and by email"); the agent's reply to the visitor, gone
// offline, is emailed, and the email's link reopens the conversation in the
// widget on the host page. On close, "Email me the transcript" sends it.
// axe finds nothing serious. Screenshots in $EMAIL_SHOTS (when set) or
// target/screenshots/: email-field-<device>.png, email-transcript-<device>.png.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  CHATD,
  adminLogin,
  agentSays,
  answer,
  hostPage,
  launchBrowser,
  openPanel,
  queuedRoom,
  rest,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = process.env.EMAIL_SHOTS || path.resolve(HERE, '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

let browser;
let host;
let admin;
let sink;
let mailDir;

async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function mail() {
  return fs
    .readdirSync(mailDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(mailDir, f), 'utf8')));
}

const field = (page) => widget(page).locator('.ef');
const shown = async (loc) => (await loc.count()) === 1 && (await loc.isVisible());

describe('widget: email when away, and the transcript', { timeout: 240_000 }, () => {
  before(async () => {
    mailDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-mail-'));
    const port = await freePort();
    sink = spawn('python3', [path.join(HERE, '..', 'api', 'smtp_sink.py'), String(port), mailDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((resolve, reject) => {
      sink.stdout.once('data', resolve);
      sink.once('exit', (code) => reject(new Error(`aiosmtpd exited (${code}); pip install aiosmtpd`)));
    });
    process.env.CHATGATE_SMTP_URL = `smtp://127.0.0.1:${port}`;
    process.env.CHATGATE_EMAIL_OFFLINE_DELAY_MS = '300';
    process.env.CHATGATE_OUTBOX_POLL_MS = '50';
    await startServer();
    admin = await adminLogin();
    const res = await rest('POST', '/channels.update', {
      token: admin,
      body: { channel_id: server.demoChannelId, email_fallback: true, color: '#0b6e4f' },
    });
    assert.equal(res.status, 200, res.text);
    host = await startHostServer({ '/': () => hostPage({ channels: [server.demoChannelId] }) });
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
    sink?.kill();
    for (const k of ['CHATGATE_SMTP_URL', 'CHATGATE_EMAIL_OFFLINE_DELAY_MS', 'CHATGATE_OUTBOX_POLL_MS']) delete process.env[k];
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('away: the email field, the reply by email, and its link reopening the conversation', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    await openPanel(page);
    await until(() => shown(field(page)), 'the email field while no agent is available');
    assert.equal(await field(page).getByText("We'll reply here and by email").count(), 1);
    const input = field(page).getByRole('textbox', { name: 'Your email (optional)' });
    assert.equal(await input.count(), 1);
    for (const [device, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.waitForTimeout(100);
      await page.screenshot({ path: path.join(OUT, `email-field-${device}.png`) });
    }
    await page.setViewportSize(SIZES.desktop);
    await assertAccessible(page, 'widget: the email field');

    const address = `ana-${crypto.randomUUID().slice(0, 8)}@example.com`;
    await input.fill(address);
    await field(page).getByRole('button', { name: 'Save' }).click();
    await until(async () => !(await field(page).isVisible()), 'the field to go once given');
    const question = `Do you ship to Lyon? ${crypto.randomUUID().slice(0, 8)}`;
    await sendText(page, question);
    await waitTick(page, question, 'sent');
    const room = (await queuedRoom(admin, server.demoChannelId, question)).uuid;
    await answer(admin, room);
    // The visitor leaves (its socket closed, as the agent's room shows);
    // the agent's reply goes by email.
    await page.close();
    await until(async () => {
      const r = await rest('GET', `${CHATD}/rooms/${room}`, { token: admin });
      return r.body.users.some((u) => u.kind === 'visitor' && u.connected === false);
    }, 'the visitor offline');
    const reply = `Yes, in two days ${crypto.randomUUID().slice(0, 8)}`;
    await agentSays(admin, room, reply);
    const email = await until(() => mail().find((m) => m.text && m.text.includes(reply)), 'the email of the reply');
    assert.deepEqual(email.to, [address]);
    assert.ok(email.html.includes('#0b6e4f'), 'in the channel colour');
    const open = email.text.split(/\s+/).find((w) => w.includes('/email/open'));
    assert.ok(open, email.text);

    // The link: the host page, the widget open on the same conversation.
    const again = await context.newPage();
    await again.goto(open);
    assert.equal(new URL(again.url()).origin, host.origin);
    assert.ok(!again.url().includes('chatgate-resume'), 'the token leaves the address bar');
    await waitRow(again, reply);
    await waitRow(again, question);
    await context.close();
  }));

  test('closed: the transcript by email', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    await openPanel(page);
    await until(() => shown(field(page)), 'the email field');
    const address = `bo-${crypto.randomUUID().slice(0, 8)}@example.com`;
    await field(page).getByRole('textbox', { name: 'Your email (optional)' }).fill(address);
    await field(page).getByRole('button', { name: 'Save' }).click();
    const question = `Order status? ${crypto.randomUUID().slice(0, 8)}`;
    await sendText(page, question);
    await waitTick(page, question, 'sent');
    const room = (await queuedRoom(admin, server.demoChannelId, question)).uuid;
    await answer(admin, room);
    await agentSays(admin, room, 'It left this morning');
    const res = await rest('PUT', `${CHATD}/users/me/rooms/${room}/state`, { token: admin, body: { state: 'closed' } });
    assert.equal(res.status, 200, res.text);
    const action = widget(page).getByRole('button', { name: 'Email me the transcript' });
    await until(() => action.isVisible(), 'the transcript action on close');
    for (const [device, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.waitForTimeout(100);
      await page.screenshot({ path: path.join(OUT, `email-transcript-${device}.png`) });
    }
    await page.setViewportSize(SIZES.desktop);
    await assertAccessible(page, 'widget: the transcript action');
    await action.click();
    await until(() => widget(page).getByText('Transcript sent by email').isVisible(), 'the confirmation');
    const email = await until(
      () => mail().find((m) => m.to[0] === address && m.subject.includes('conversation')),
      'the transcript email',
    );
    assert.ok(email.text.includes(question) && email.text.includes('It left this morning'), email.text);
    await context.close();
  }));
});
