// Files and Markdown in the widget (issue 17; desk-api.md, "Attachments"):
// a visitor attaches with the paperclip, by dropping on the panel or by
// pasting a screenshot; each upload is a chip with its progress until the
// message is sent; images show as a thumbnail (the whole image on a click),
// other files as a download with their size, in the visitor's own messages
// and the agent's. Refused files (too large, a type not allowed) say so
// inline and send nothing. Markdown is rendered from elements and text only:
// hostile input stays text. Screenshots in $FILES_SHOTS (when set) or
// target/screenshots/ (not committed): files-<device>.png.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, WAIT_MS, server, startServer, stopServer, withServerLogs, withTimeout } from './chatgate_server.mjs';
import {
  CHATD,
  adminLogin,
  answer,
  hostPage,
  launchBrowser,
  openPanel,
  queuedRoom,
  rest,
  roomMessages,
  sendText,
  startHostServer,
  until,
  waitRow,
  waitTick,
  widget,
} from './widget_helpers.mjs';

const OUT = process.env.FILES_SHOTS || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
/** The upload cap this file's server runs with: small, so "too large" is quick to reach. */
const CAP = 256 * 1024;

let browser;
let host;
let admin;

// ---------------------------------------------------------------------------
// Files made here
// ---------------------------------------------------------------------------

/** A valid RGB PNG of `w` x `h` pixels: a diagonal gradient. */
function png(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const rows = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      rows[o] = 40 + ((x * 180) / w) | 0;
      rows[o + 1] = 110 + ((y * 120) / h) | 0;
      rows[o + 2] = 200;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n' +
    'trailer<</Root 1 0 R>>\n%%EOF\n',
);
/** A Windows executable's head: "MZ", then enough to look like one. */
const EXE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(126, 0x90), Buffer.from('PE\0\0'), crypto.randomBytes(512)]);
const HTML = Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>\n');
/** Plain text of `n` bytes. */
const text = (n) => Buffer.from('All work and no play. '.repeat(Math.ceil(n / 22)).slice(0, n));

// ---------------------------------------------------------------------------
// The widget's files
// ---------------------------------------------------------------------------

const chips = (page) => widget(page).locator('.ups .fl');
const doneChips = (page) => widget(page).locator('.ups .fl:not(:has(progress))');
const errorLine = (page) => widget(page).locator('.er');
const fileInput = (page) => widget(page).locator('input[type=file]');

/** Files into a browser DataTransfer, for a synthetic paste or drop. */
function dataTransfer(page, files) {
  return page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
    return dt;
  }, files.map((f) => ({ name: f.name, type: f.type, b64: f.buffer.toString('base64') })));
}

async function paste(page, files) {
  const dt = await dataTransfer(page, files);
  const ta = await widget(page).locator('textarea').elementHandle();
  await page.evaluate(([el, d]) => {
    el.focus();
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: d, bubbles: true, cancelable: true }));
  }, [ta, dt]);
}

/** Drags `files` over the panel (the drop hint shows), then drops them. */
async function drop(page, files) {
  const dt = await dataTransfer(page, files);
  const panel = widget(page).locator('.p');
  await panel.dispatchEvent('dragenter', { dataTransfer: dt });
  await panel.dispatchEvent('dragover', { dataTransfer: dt });
  const hint = await panel.evaluate((p) => p.classList.contains('drop') && getComputedStyle(p, '::after').content);
  await panel.dispatchEvent('drop', { dataTransfer: dt });
  return hint;
}

/** A visitor who wrote, and the admin who answered: the room's uuid. */
async function conversation(page, first = `Hello ${crypto.randomUUID().slice(0, 8)}`) {
  await openPanel(page);
  await sendText(page, first);
  await waitTick(page, first, 'sent');
  const room = (await queuedRoom(admin, server.demoChannelId, first)).uuid;
  await answer(admin, room);
  return room;
}

async function agentUpload(room, name, type, buffer) {
  const form = new FormData();
  form.append('file', new Blob([buffer], { type }), name);
  const res = await withTimeout(
    fetch(`${server.baseUrl}${CHATD}/users/me/rooms/${room}/attachments`, { method: 'POST', headers: { 'x-auth-token': admin }, body: form }),
    WAIT_MS,
    'the agent upload',
  );
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

async function agentSends(room, body) {
  const res = await rest('POST', `${CHATD}/users/me/rooms/${room}/messages`, { token: admin, body });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** Uploads crawl at `bytesPerSecond` (DevTools throttling), so progress can be seen. */
async function throttle(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond,
  });
  return cdp;
}

const lastRow = (page) => widget(page).locator('.log .m[data-seq]').last();

describe('widget: files and Markdown', { timeout: 240_000 }, () => {
  before(async () => {
    process.env.CHATGATE_MAX_UPLOAD_BYTES = String(CAP);
    await startServer();
    delete process.env.CHATGATE_MAX_UPLOAD_BYTES;
    admin = await adminLogin();
    host = await startHostServer({ '/': () => hostPage({ channels: [server.demoChannelId] }) });
    browser = await launchBrowser();
    fs.mkdirSync(OUT, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await host?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('button, paste and drop upload as chips; the message carries the files; the agent sees them', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    const room = await conversation(page);

    // The paperclip is a named button that opens the file picker.
    const clip = widget(page).locator('.cmp button[aria-label="Attach a file"]');
    assert.equal(await clip.count(), 1);
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), clip.click()]);
    assert.ok(chooser.isMultiple());
    await chooser.setFiles({ name: 'photo.png', mimeType: 'image/png', buffer: png(640, 480) });
    await until(async () => (await doneChips(page).count()) === 1, 'the picked file to upload');
    // Done: the chip shows the thumbnail, the name and a remove button.
    const first = doneChips(page).first();
    assert.equal(await first.locator('.fn').textContent(), 'photo.png');
    assert.equal(await first.locator('button').getAttribute('aria-label'), 'Remove photo.png');
    await until(() => first.locator('img').evaluate((i) => i.complete && i.naturalWidth > 0), 'the chip thumbnail to load');

    // A pasted screenshot.
    await paste(page, [{ name: 'image.png', type: 'image/png', buffer: png(120, 90) }]);
    await until(async () => (await doneChips(page).count()) === 2, 'the pasted screenshot to upload');
    assert.equal(await chips(page).nth(1).locator('.fn').textContent(), 'image.png');

    // A dropped file: the panel shows the drop hint while dragged over.
    const hint = await drop(page, [{ name: 'notes.txt', type: 'text/plain', buffer: text(3000) }]);
    assert.equal(hint, '"Drop files here"');
    await until(async () => (await doneChips(page).count()) === 3, 'the dropped file to upload');
    assert.equal(await widget(page).locator('.p.drop').count(), 0, 'no drop hint after the drop');

    // The screenshot was a mistake: removed, it is not sent.
    await chips(page).nth(1).locator('button').click();
    assert.deepEqual(await chips(page).locator('.fn').allTextContents(), ['photo.png', 'notes.txt']);

    // Sent with a caption: the chips go, the message shows the files.
    await sendText(page, 'Here is **the photo**');
    await until(async () => (await chips(page).count()) === 0, 'the chips to go once sent');
    const mine = widget(page).locator('.log .m.r').last();
    await until(async () => (await mine.locator('.tk[data-state="sent"]').count()) === 1, 'the message with files to be stored');
    const img = mine.locator('a.im img');
    assert.equal(await img.getAttribute('alt'), 'photo.png');
    // Sized from the attachment before it loads: 640 x 480 in a 240 px box.
    assert.deepEqual([await img.getAttribute('width'), await img.getAttribute('height')], ['240', '180']);
    await until(() => img.evaluate((i) => i.complete && i.naturalWidth > 0), 'the thumbnail to load');
    const imageLink = mine.locator('a.im');
    assert.equal(await imageLink.getAttribute('target'), '_blank');
    assert.equal(await imageLink.getAttribute('rel'), 'noopener noreferrer nofollow');
    const full = await fetch(await imageLink.getAttribute('href'));
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-type'), 'image/png');
    assert.equal(Buffer.from(await full.arrayBuffer()).length, png(640, 480).length);
    assert.deepEqual(await mine.locator('a.fl .fn').allTextContents(), ['notes.txt']);
    assert.equal(await mine.locator('a.fl .fs').textContent(), '2.9 KB');
    assert.equal(await mine.locator('.b strong').textContent(), 'the photo');
    // A click on the thumbnail opens the whole image in a new tab.
    const [tab] = await Promise.all([context.waitForEvent('page'), imageLink.click()]);
    await tab.waitForLoadState();
    assert.match(tab.url(), /\/files\/[0-9a-f-]+\/photo\.png\?/);
    await tab.close();

    const stored = (await roomMessages(admin, room)).at(-1);
    assert.equal(stored.content, 'Here is **the photo**');
    assert.deepEqual(stored.attachments.map((a) => a.name), ['photo.png', 'notes.txt']);

    // Files alone, no text: no empty bubble.
    await fileInput(page).setInputFiles({ name: 'second.png', mimeType: 'image/png', buffer: png(300, 1000) });
    await until(async () => (await doneChips(page).count()) === 1, 'the second upload');
    const send = widget(page).locator('.sd');
    assert.equal(await send.isDisabled(), false, 'a file alone can be sent');
    await send.click();
    await until(async () => (await roomMessages(admin, room)).at(-1).attachments?.[0]?.name === 'second.png', 'the file-only message');
    await until(async () => (await lastRow(page).locator('.tk[data-state="sent"]').count()) === 1, 'the file-only message to be stored');
    assert.equal(await lastRow(page).locator('.b').count(), 0, 'no text bubble');
    // A tall image fits the box by its height.
    assert.deepEqual([await lastRow(page).locator('img').getAttribute('width'), await lastRow(page).locator('img').getAttribute('height')], ['72', '240']);

    // The agent sends a PDF (no text) and a text file with a caption.
    const pdf = await agentUpload(room, 'invoice-2026.pdf', 'application/pdf', PDF);
    await agentSends(room, { attachments: [pdf.id] });
    await until(async () => (await lastRow(page).locator('a.fl').count()) === 1, 'the agent PDF in the widget');
    let row = lastRow(page);
    assert.ok((await row.getAttribute('class')).split(' ').includes('l'), 'an agent message');
    assert.equal(await row.locator('.b').count(), 0);
    assert.equal(await row.locator('a.fl .fn').textContent(), 'invoice-2026.pdf');
    assert.equal(await row.locator('a.fl .fs').textContent(), `${PDF.length} B`);
    const download = await fetch(await row.locator('a.fl').getAttribute('href'));
    assert.equal(download.status, 200);
    assert.match(download.headers.get('content-disposition'), /^attachment/);
    assert.deepEqual(Buffer.from(await download.arrayBuffer()), PDF);

    const log = await agentUpload(room, 'server.log', 'text/plain', text(200_000));
    await agentSends(room, { content: 'The log you asked for: `server.log`', attachments: [log.id] });
    await waitRow(page, 'The log you asked for: server.log');
    row = lastRow(page);
    assert.equal(await row.locator('a.fl .fs').textContent(), '195 KB');
    assert.equal(await row.locator('.b code').textContent(), 'server.log');
    const logDownload = await fetch(await row.locator('a.fl').getAttribute('href'));
    assert.equal(logDownload.status, 200);

    // History brings them back after a reload, with fresh links.
    await page.reload();
    await openPanel(page);
    await until(async () => (await widget(page).locator('.log a.im img').count()) === 2, 'the images from history');
    assert.equal(await widget(page).locator('.log a.fl').count(), 3);
    await context.close();
  }));

  test('an upload shows its progress, can be removed, and sending waits for it', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    const room = await conversation(page);
    const before = (await roomMessages(admin, room)).length;
    await throttle(page, 40 * 1024);

    await fileInput(page).setInputFiles({ name: 'big-notes.txt', mimeType: 'text/plain', buffer: text(200_000) });
    const bar = chips(page).locator('progress');
    await until(async () => (await bar.count()) === 1 && (await bar.evaluate((p) => p.value > 0 && p.value < 1)), 'progress part way');
    assert.equal(await bar.getAttribute('aria-label'), 'big-notes.txt');
    // Typed text does not jump the upload: Enter sends nothing while it runs.
    await sendText(page, 'with the notes');
    assert.equal(await widget(page).locator('.sd').isDisabled(), true);
    assert.equal(await widget(page).locator('textarea').inputValue(), 'with the notes');
    await until(async () => (await doneChips(page).count()) === 1, 'the upload to finish', 30_000);
    assert.equal(await widget(page).locator('.sd').isDisabled(), false);

    // A second one, removed while it uploads: its chip goes, nothing is attached.
    await fileInput(page).setInputFiles({ name: 'oops.txt', mimeType: 'text/plain', buffer: text(200_000) });
    await until(async () => (await bar.count()) === 1 && (await bar.evaluate((p) => p.value > 0)), 'the second upload under way');
    await chips(page).filter({ hasText: 'oops.txt' }).locator('button').click();
    assert.deepEqual(await chips(page).locator('.fn').allTextContents(), ['big-notes.txt']);
    await widget(page).locator('textarea').press('Enter');
    await until(async () => (await roomMessages(admin, room)).length === before + 1, 'the message to be stored');
    const stored = (await roomMessages(admin, room)).at(-1);
    assert.equal(stored.content, 'with the notes');
    assert.deepEqual(stored.attachments.map((a) => a.name), ['big-notes.txt']);
    await context.close();
  }));

  test('too large, an executable and HTML are refused inline, and nothing is sent', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(host.origin + '/');
    const room = await conversation(page);
    const before = (await roomMessages(admin, room)).length;
    const send = widget(page).locator('.sd');

    await fileInput(page).setInputFiles({ name: 'huge.txt', mimeType: 'text/plain', buffer: text(CAP + 1024) });
    await until(async () => (await errorLine(page).textContent()) === '“huge.txt” is too large.', 'the too-large message');
    assert.equal(await errorLine(page).getAttribute('role'), 'alert');
    assert.equal(await chips(page).count(), 0);
    assert.equal(await send.isDisabled(), true);

    await fileInput(page).setInputFiles({ name: 'setup.exe', mimeType: 'application/octet-stream', buffer: EXE });
    await until(async () => (await errorLine(page).textContent()) === '“setup.exe”: this type of file is not allowed.', 'the executable refused');
    // HTML named as a picture is judged by its content.
    await drop(page, [{ name: 'cat.png', type: 'image/png', buffer: HTML }]);
    await until(async () => (await errorLine(page).textContent()) === '“cat.png”: this type of file is not allowed.', 'the HTML refused');
    assert.equal(await chips(page).count(), 0);
    assert.equal(await send.isDisabled(), true);
    await widget(page).locator('textarea').press('Enter');

    // A good file clears the message; the refused ones were never attached.
    await fileInput(page).setInputFiles({ name: 'ok.png', mimeType: 'image/png', buffer: png(32, 32) });
    await until(async () => (await doneChips(page).count()) === 1, 'the good upload');
    assert.equal(await errorLine(page).isHidden(), true);
    await send.click();
    await until(async () => (await roomMessages(admin, room)).length === before + 1, 'the one message');
    assert.deepEqual((await roomMessages(admin, room)).at(-1).attachments.map((a) => a.name), ['ok.png']);

    // More than ten at once: ten chips and a message.
    const many = Array.from({ length: 11 }, (_, i) => ({ name: `n${i}.txt`, mimeType: 'text/plain', buffer: text(100 + i) }));
    await fileInput(page).setInputFiles(many);
    await until(async () => (await doneChips(page).count()) === 10, 'ten uploads');
    assert.equal(await errorLine(page).textContent(), 'At most 10 files.');
    await context.close();
  }));

  test('Markdown renders from both sides; hostile input stays text', withServerLogs(async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, reducedMotion: 'reduce' });
    const page = await context.newPage();
    const dialogs = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      d.dismiss();
    });
    await page.goto(host.origin + '/');
    const room = await conversation(page);

    const rich = [
      'Your order **#4521** has *shipped* and _should_ arrive by `Friday`.',
      '1. Track it at [our site](https://shop.example.com/track?id=4521)',
      '2. Or write to [us](mailto:help@example.com)',
      '',
      '- fast',
      '- free',
      '```',
      'curl https://api.example.com/orders/4521',
      '  --header "x: <b>y</b>"',
      '```',
      'More at https://example.com/help.',
    ].join('\n');
    await agentSends(room, { content: rich });
    await until(async () => (await lastRow(page).locator('pre').count()) === 1, 'the agent Markdown');
    const b = lastRow(page).locator('.b');
    assert.equal(await b.locator('strong').textContent(), '#4521');
    assert.deepEqual(await b.locator('em').allTextContents(), ['shipped', 'should']);
    assert.deepEqual(await b.locator(':scope > code').allTextContents(), ['Friday']);
    assert.deepEqual(await b.locator('ol > li').allTextContents(), ['Track it at our site', 'Or write to us']);
    assert.deepEqual(await b.locator('ul > li').allTextContents(), ['fast', 'free']);
    assert.equal(await b.locator('pre code').textContent(), 'curl https://api.example.com/orders/4521\n  --header "x: <b>y</b>"');
    assert.equal(await b.locator('pre a, pre b').count(), 0, 'nothing is a link or markup inside code');
    const links = await b.locator('a').evaluateAll((as) => as.map((a) => [a.textContent, a.href, a.target, a.rel]));
    assert.deepEqual(links, [
      ['our site', 'https://shop.example.com/track?id=4521', '_blank', 'noopener noreferrer nofollow'],
      ['us', 'mailto:help@example.com', '_blank', 'noopener noreferrer nofollow'],
      ['https://example.com/help', 'https://example.com/help', '_blank', 'noopener noreferrer nofollow'],
    ]);
    assert.ok((await b.textContent()).endsWith('More at https://example.com/help.'));

    // The visitor's own message too.
    await sendText(page, 'Thanks! Is **gift wrap** possible for `#4521`?');
    await waitTick(page, 'Thanks! Is gift wrap possible for #4521?', 'sent');
    const mine = widget(page).locator('.log .m.r').last().locator('.b');
    assert.equal(await mine.locator('strong').textContent(), 'gift wrap');
    assert.equal(await mine.locator('code').textContent(), '#4521');

    // Hostile input, from the agent and from the visitor: shown as typed.
    const hostile = [
      '<script>window.__pwned = 1</script>',
      '<img src=x onerror="window.__pwned = 2">',
      '[click me](javascript:window.__pwned=3)',
      '[data](data:text/html,<b>x</b>) [rel](/relative) [proto](//evil.example)',
      'javascript:alert(1) **unbalanced *also _half `tick',
      '<a href="javascript:alert(1)">html link</a> <iframe src=//evil.example>',
      '![image](https://example.com/x.png)',
    ].join('\n');
    await agentSends(room, { content: hostile });
    await waitRow(page, hostile);
    await sendText(page, hostile);
    await waitTick(page, hostile, 'sent');
    for (const side of ['l', 'r']) {
      const bubble = widget(page).locator(`.log .m.${side}`).last().locator('.b');
      assert.equal(await bubble.textContent(), hostile, `${side}: the text exactly as sent`);
      const tags = await bubble.evaluate((el) => [...el.querySelectorAll('*')].map((e) => e.tagName));
      assert.deepEqual(tags, [], `${side}: no element made from hostile input`);
    }
    const hrefs = await widget(page).locator('.log a[href]').evaluateAll((as) => as.map((a) => a.href));
    assert.ok(hrefs.every((u) => /^(https?|mailto):/.test(u)), hrefs.join(' '));
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(dialogs, []);
    await context.close();
  }));

  for (const [device, viewport] of Object.entries(SIZES)) {
    test(`a conversation with Markdown and files, an upload under way and an error (${device})`, withServerLogs(async () => {
      const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
      const page = await context.newPage();
      await page.goto(host.origin + '/');
      const room = await conversation(page, 'Hi! My kettle arrived with a dent, see the photo.');
      await agentSends(room, { content: 'Sorry to hear that! Could you send a **photo of the dent** and your order number?' });
      await fileInput(page).setInputFiles({ name: 'kettle-dent.png', mimeType: 'image/png', buffer: png(800, 600) });
      await until(async () => (await doneChips(page).count()) === 1, 'the photo upload');
      await sendText(page, 'Here it is, order `#4521`.');
      await waitTick(page, 'Here it is, order #4521.', 'sent');
      const label = await agentUpload(room, 'return-label-4521.pdf', 'application/pdf', PDF);
      await agentSends(room, {
        content: 'Thank you! I have started a replacement:\n1. Print the **return label** below\n2. Drop the parcel at any post office\n\nTrack it at https://shop.example.com/track/4521',
        attachments: [label.id],
      });
      await until(async () => (await lastRow(page).locator('a.fl').count()) === 1, 'the label in the widget');
      await throttle(page, 20 * 1024);
      await fileInput(page).setInputFiles({ name: 'receipt-scan.txt', mimeType: 'text/plain', buffer: text(200_000) });
      await until(async () => (await chips(page).locator('progress').evaluate((p) => p.value > 0.1)), 'progress part way');
      await fileInput(page).setInputFiles({ name: 'installer.exe', mimeType: 'application/octet-stream', buffer: EXE });
      await until(async () => (await errorLine(page).textContent()) === '“installer.exe”: this type of file is not allowed.', 'the refusal');
      await until(() => widget(page).locator('.log img').evaluateAll((is) => is.every((i) => i.complete && i.naturalWidth > 0)), 'the images to load');
      await widget(page).locator('.log').evaluate((l) => (l.scrollTop = l.scrollHeight));
      await page.screenshot({ path: path.join(OUT, `files-${device}.png`) });
      await assertAccessible(page, `${device}: files, an upload and an error`);
      // Everything inside the panel: the chips, the files, the code block.
      const inside = await widget(page).locator('.p').evaluate((p) => {
        const box = p.getBoundingClientRect();
        return [...p.querySelectorAll('.im, .fl, pre')].every((e) => {
          const r = e.getBoundingClientRect();
          return r.left >= box.left && r.right <= box.right + 0.5;
        });
      });
      assert.ok(inside, 'nothing wider than the panel');
      await context.close();
    }));
  }
});
