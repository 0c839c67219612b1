// The support desk in the browser (desk-api.md, "Support desk"):
// - the widget's pre-chat form: labelled fields, required ones and a bad
//   email refused with errors that name the field, the answers sent with
//   the first message and shown to agents in the console's side panel;
// - outside business hours the widget says when the team is back, in the
//   visitor's own time zone (Intl);
// - the console's channel page edits the hours, away message, pre-chat form
//   and auto-close, showing the server's validation errors.
// axe finds nothing serious; screenshots in $DESK_SHOTS (when set) or
// target/screenshots/: desk-*.png and console-desk-*.png.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { logIn, newPage, shots } from './console_browser.mjs';
import { adminLogin, answer, hostPage, launchBrowser, openPanel, queuedRoom, rest, sendText, startHostServer, until, waitTick, widget } from './widget_helpers.mjs';

const OUT = process.env.DESK_SHOTS || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

let browser;
let host;
let admin;
let prechatChannel;
let closedChannel;
let backAt;

async function connect(body) {
  const res = await rest('POST', '/channels.chatplugin.connect', { body, headers: { authorization: `Bearer ${admin}` } });
  assert.equal(res.status, 200, res.text);
  return res.body.id;
}

const form = (page) => widget(page).locator('form.pf');

describe('support desk: pre-chat form, business hours, channel settings', { timeout: 240_000 }, () => {
  before(async () => {
    await startServer();
    admin = await adminLogin();
    prechatChannel = await connect({
      name: 'Desk',
      prechat: { name: 'required', email: 'optional', question: 'required' },
    });
    // Open all day every day (UTC) but closed today: back at tomorrow's midnight UTC.
    const now = new Date();
    const today = now.toISOString().slice(0, 10);
    const weekly = Object.fromEntries(DAYS.map((d) => [d, [['00:00', '24:00']]]));
    closedChannel = await connect({ name: 'After hours', business_hours: { time_zone: 'UTC', weekly, closed_dates: [today] } });
    backAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    host = await startHostServer({
      '/prechat': () => hostPage({ channels: [prechatChannel] }),
      '/closed': () => hostPage({ channels: [closedChannel] }),
      '/closed-fr': () => hostPage({ channels: [closedChannel], lang: 'fr' }),
    });
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('the pre-chat form asks first, names its errors, and agents see the answers', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/prechat');
    await openPanel(page);
    await until(() => form(page).isVisible(), 'the pre-chat form');
    assert.equal(await widget(page).locator('.cw').isVisible(), false, 'no composer before the form');
    const name = form(page).getByRole('textbox', { name: 'Name' });
    const email = form(page).getByRole('textbox', { name: 'Email' });
    const question = form(page).getByRole('textbox', { name: 'Your question' });
    assert.equal(await name.getAttribute('autocomplete'), 'name');
    assert.equal(await email.getAttribute('type'), 'email');

    // Nothing typed: the two required fields are refused, by name, and the first gets focus.
    await form(page).getByRole('button', { name: 'Start chat' }).click();
    await until(async () => (await name.getAttribute('aria-invalid')) === 'true', 'the name refused');
    assert.equal(await name.evaluate((e) => e.getRootNode().activeElement === e), true, 'focus on the first error');
    const description = async (field) => field.evaluate((e) => e.getRootNode().getElementById(e.getAttribute('aria-describedby')).textContent);
    assert.equal(await description(name), 'Name is required.');
    assert.equal(await description(question), 'Your question is required.');
    assert.equal(await description(email), '');
    // A bad email, even optional, is refused too.
    await name.fill('Ana Silva');
    await email.fill('ana@');
    await question.fill('Can I change my delivery address?');
    await form(page).getByRole('button', { name: 'Start chat' }).click();
    await until(async () => (await description(email)) === 'Invalid email address.', 'the email refused');
    assert.equal(await description(name), '');
    await assertAccessible(page, 'widget: the pre-chat form with errors');
    for (const [device, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.waitForTimeout(100);
      await page.screenshot({ path: path.join(OUT, `desk-prechat-errors-${device}.png`) });
    }
    await page.setViewportSize(SIZES.desktop);

    // Fixed: the question goes as the first message, with the answers.
    await email.fill('ana@example.com');
    const asked = `Can I change my delivery address? ${crypto.randomUUID().slice(0, 6)}`;
    await question.fill(asked);
    await form(page).getByRole('button', { name: 'Start chat' }).click();
    await until(async () => (await form(page).count()) === 0, 'the form to go');
    assert.equal(await widget(page).locator('.cw').isVisible(), true, 'the composer is back');
    // Stored just after the message (as the page's context is): wait for both.
    const room = await until(async () => {
      const r = await queuedRoom(admin, prechatChannel, asked);
      return r.prechat && r;
    }, 'the room with its pre-chat answers');
    assert.deepEqual(room.prechat, { name: 'Ana Silva', email: 'ana@example.com', question: asked });
    // The next messages go without answers (and are not refused for it).
    await sendText(page, 'And one more thing');
    await waitTick(page, 'And one more thing', 'sent');
    await page.screenshot({ path: path.join(OUT, 'desk-prechat-sent-desktop.png') });

    // A reload: the conversation has begun, the form is not asked again.
    await page.reload();
    await openPanel(page);
    await until(() => widget(page).locator('.log .m[data-seq]').count(), 'the history');
    assert.equal(await form(page).count(), 0);

    // The console's side panel shows the answers.
    await answer(admin, room.uuid);
    const consolePage = await context.newPage();
    await logIn(consolePage, server.adminEmail, server.adminPassword);
    await consolePage.goto(`${server.baseUrl}/console/rooms/${room.uuid}`);
    const panel = consolePage.getByRole('region', { name: 'Pre-chat form' });
    await panel.waitFor();
    assert.equal(await panel.locator('dt').allTextContents().then((t) => t.join('|')), 'Name|Email|Question');
    assert.equal(await panel.locator('dd').nth(0).textContent(), 'Ana Silva');
    assert.equal(await panel.getByRole('link', { name: 'ana@example.com' }).getAttribute('href'), 'mailto:ana@example.com');
    assert.equal(await panel.locator('dd').nth(2).textContent(), asked);
    await assertAccessible(consolePage, 'console: a conversation with pre-chat answers');
    await shots(consolePage, 'desk-prechat-panel');
    await context.close();
  }));

  test('outside business hours the widget says when the team is back, in local time', withServerLogs(async () => {
    for (const [lang, pathName, timezoneId, locale] of [['en', '/closed', 'America/New_York', 'en-US'], ['fr', '/closed-fr', 'Asia/Tokyo', 'fr-FR']]) {
      const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce', timezoneId, locale });
      const page = await context.newPage();
      await page.goto(host.origin + pathName);
      await openPanel(page);
      const when = backAt.toLocaleString(lang, { dateStyle: 'full', timeStyle: 'short', timeZone: timezoneId });
      const expected = lang === 'en' ? `We are back ${when}.` : `Retour le ${when}.`;
      const note = widget(page).locator('.note');
      await until(async () => (await note.textContent()).includes(expected), `the note to say ${expected}`, 15_000);
      const status = widget(page).locator('.st');
      assert.match(await status.textContent(), lang === 'en' ? /Away/ : /Absents/);
      await assertAccessible(page, `widget: closed with back_at (${lang})`);
      for (const [device, viewport] of Object.entries(SIZES)) {
        await page.setViewportSize(viewport);
        await page.waitForTimeout(100);
        await page.screenshot({ path: path.join(OUT, `desk-back-at-${lang}-${device}.png`) });
      }
      await context.close();
    }
  }));

  test('the console edits the desk settings and shows the server refusing bad hours', withServerLogs(async () => {
    const { page, context } = await newPage(browser);
    await logIn(page, server.adminEmail, server.adminPassword);
    const url = `${server.baseUrl}/console/admin/channels/${prechatChannel}`;
    await page.goto(url);
    const desk = page.getByRole('form', { name: 'Business hours, away message and pre-chat form' });
    await desk.waitFor();
    assert.equal(await desk.getByLabel('Name').inputValue(), 'required');
    assert.equal(await desk.getByLabel('Use business hours').isChecked(), false);

    // A range that ends before it starts: refused, the page says why, nothing saved.
    await desk.getByLabel('Use business hours').check();
    await desk.getByLabel('Time zone').fill('Europe/Paris');
    await desk.getByLabel('Monday').fill('17:00-09:00');
    await Promise.all([page.waitForNavigation(), desk.getByRole('button', { name: 'Save desk settings' }).click()]);
    const alert = page.getByRole('alert').first();
    assert.match(await alert.textContent(), /business_hours\.weekly\.mon\[0\]: 17:00 is not before 09:00/);
    const info = async () => (await rest('POST', '/channels.info', { body: { channel_id: prechatChannel }, headers: { authorization: `Bearer ${admin}` } })).body;
    assert.equal((await info()).business_hours, null, 'nothing saved');
    await assertAccessible(page, 'console: desk settings refused');
    await shots(page, 'desk-settings-error');
    await page.getByRole('form', { name: 'Business hours, away message and pre-chat form' }).screenshot({ path: path.join(OUT, 'console-desk-form-error.png') });

    // Valid: saved, and shown again as typed.
    const form2 = page.getByRole('form', { name: 'Business hours, away message and pre-chat form' });
    await form2.getByLabel('Use business hours').check();
    await form2.getByLabel('Time zone').fill('Europe/Paris');
    await form2.getByLabel('Monday').fill('09:00-12:00, 13:00-17:30');
    await form2.getByLabel('Friday').fill('09:00-16:00');
    await form2.getByLabel(/Closed dates/).fill('2026-12-25\n2027-01-01');
    await form2.getByLabel(/Away message/).fill('We are away; leave a message.');
    await form2.locator('select[name=prechat_email]').selectOption('required');
    await form2.getByLabel(/Close idle conversations/).fill('48');
    await Promise.all([page.waitForNavigation(), form2.getByRole('button', { name: 'Save desk settings' }).click()]);
    assert.equal(await page.getByRole('status').first().textContent(), 'Saved.');
    const saved = await info();
    assert.deepEqual(saved.business_hours.weekly.mon, [['09:00', '12:00'], ['13:00', '17:30']]);
    assert.deepEqual(saved.business_hours.closed_dates, ['2026-12-25', '2027-01-01']);
    assert.equal(saved.business_hours.time_zone, 'Europe/Paris');
    assert.equal(saved.away_message, 'We are away; leave a message.');
    assert.deepEqual(saved.prechat, { name: 'required', email: 'required', question: 'required' });
    assert.equal(saved.auto_close_hours, 48);
    assert.equal(saved.metadata.name, 'Desk', 'the other settings kept');
    const again = page.getByRole('form', { name: 'Business hours, away message and pre-chat form' });
    assert.equal(await again.getByLabel('Monday').inputValue(), '09:00-12:00, 13:00-17:30');
    assert.equal(await again.getByLabel('Tuesday').inputValue(), '');
    assert.equal(await again.getByLabel('Use business hours').isChecked(), true);
    await assertAccessible(page, 'console: desk settings saved');
    await shots(page, 'desk-settings');
    for (const [device, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await again.screenshot({ path: path.join(OUT, `console-desk-form-${device}.png`) });
    }
    // Restore the form the first test relies on, should the order change.
    await rest('POST', '/channels.update', { body: { channel_id: prechatChannel, business_hours: null, prechat: { name: 'required', email: 'optional', question: 'required' } }, headers: { authorization: `Bearer ${admin}` } });
    await context.close();
  }));
});

