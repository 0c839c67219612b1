// Files and Markdown in the console (issue 17): an agent attaches files
// with the paperclip, by dropping them on the conversation and by pasting
// a screenshot into the reply box; each uploads at once with a progress
// bar and waits as a removable chip; the reply carries them. Images show
// as thumbnails (click opens the file), other files as a download row that
// downloads. Messages render a Markdown subset on the server, never raw
// HTML, the same on the page and on what arrives live.
// Screenshots: $SHOTS_DIR (default target/screenshots)/console-files-*.png.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { SHOTS, adminPage, adminToken, answer, chatd, launchChromium, newVisitor, post, visitorSays } from './console_browser.mjs';

const SHOTS_DIR = process.env.SHOTS_DIR || SHOTS;

/** A real PNG of `w`×`h` pixels: a diagonal gradient (so a thumbnail shows something). */
function png(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(w, 0);
  header.writeUInt32BE(h, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * 3);
    for (let x = 0; x < w; x++) {
      row[1 + x * 3] = Math.round((x / w) * 255);
      row[2 + x * 3] = Math.round((y / h) * 200) + 30;
      row[3 + x * 3] = 200;
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A small, valid PDF. */
function pdf() {
  return Buffer.from(
    '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n' +
      'trailer<</Root 1 0 R>>\n%%EOF\n' + 'x'.repeat(40_000),
  );
}

/** Pastes `bytes` as a file into the reply box, as a browser does with a screenshot. */
async function pasteFile(page, name, type, bytes) {
  await page.locator('#reply').evaluate((reply, { name, type, data }) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([Uint8Array.from(data)], name, { type }));
    reply.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }));
  }, { name, type, data: [...bytes] });
}

/** Drags `bytes` as a file over the conversation and drops it; returns whether the hint showed meanwhile. */
async function dropFile(page, name, type, bytes) {
  return page.locator('#messages').evaluate((target, { name, type, data }) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([Uint8Array.from(data)], name, { type }));
    const fire = (kind) => target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
    fire('dragenter');
    fire('dragover');
    const hinted = !document.querySelector('[data-drop-hint]').hidden;
    fire('drop');
    return hinted && document.querySelector('[data-drop-hint]').hidden;
  }, { name, type, data: [...bytes] });
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.locator('#messages').evaluate((m) => { m.scrollTop = m.scrollHeight; });
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(SHOTS_DIR, `console-files-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** A visitor's upload (the widget's door); the Attachment JSON. */
async function visitorUploads(visitor, name, type, bytes) {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), name);
  const res = await fetch(server.baseUrl + '/chatplugin.upload', {
    method: 'POST',
    headers: { authorization: `Bearer ${visitor.token}` },
    body: form,
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text);
}

let browser;

describe('console: files and Markdown', () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test('files attach by button, paste and drop, upload with progress and wait as removable chips', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor();
    await visitorSays(visitor, 'Can you see my screen?');
    const { context, page, problems } = await adminPage(browser);
    await answer(page, visitor);
    const chips = page.locator('[data-pending] .file-chip');

    // The paperclip: its upload is held, so the progress bar is seen.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route('**/attachments', async (route) => {
      await held;
      await route.continue().catch(() => {});
    });
    await page.locator('[data-attach]').click({ trial: true });
    await page.locator('[data-file-input]').setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: png(800, 600) });
    const first = chips.nth(0);
    await first.locator('progress').waitFor();
    assert.match(await first.getAttribute('class'), /uploading/);
    assert.equal(await first.locator('.chip-name').textContent(), 'photo.png');
    await shot(page, 'uploading');
    release();
    await page.locator('[data-pending] .file-chip[data-attachment]').first().waitFor();
    await page.unroute('**/attachments');
    assert.equal(await first.locator('progress').isHidden(), true, 'the bar goes once uploaded');
    await first.locator('.chip-icon img').waitFor(); // the server's thumbnail

    // A pasted screenshot is named after when it was taken.
    await pasteFile(page, 'image.png', 'image/png', png(120, 90));
    const pasted = chips.nth(1);
    await pasted.and(page.locator('[data-attachment]')).waitFor();
    assert.match(await pasted.locator('.chip-name').textContent(), /^Screenshot \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d\.png$/);

    // Dropped on the conversation.
    assert.equal(await dropFile(page, 'invoice.pdf', 'application/pdf', pdf()), true, 'the drop hint shows while dragging');
    const dropped = chips.nth(2);
    await dropped.and(page.locator('[data-attachment]')).waitFor();
    assert.equal(await dropped.locator('.chip-name').textContent(), 'invoice.pdf');

    // Dropped beside the conversation: neither attached nor opened by the browser in place of the console.
    const opened = await page.locator('#lists').evaluate((target) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['x'], 'stray.txt', { type: 'text/plain' }));
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      return target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    assert.equal(opened, false, 'the browser\'s own drop is prevented');
    assert.equal(await chips.count(), 3);

    // The form carries them too (for a post without script).
    const ids = await page.locator('#composer input[type=hidden][name=attachments]').evaluateAll((els) => els.map((e) => e.value));
    assert.equal(ids.length, 3);
    assert.equal(await page.locator('#reply').evaluate((t) => t.required), false, 'files alone may be sent');

    // A file the server refuses says why, and can be removed.
    await page.locator('[data-file-input]').setInputFiles({ name: 'tool.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ\x90\x00' + 'x'.repeat(500)) });
    const refused = page.locator('[data-pending] .file-chip.failed');
    await refused.waitFor();
    assert.match(await refused.locator('.chip-status').textContent(), /type|allowed/i);
    await refused.locator('.chip-remove').click();
    await refused.waitFor({ state: 'detached' });

    // Removing a chip takes its id off the form.
    await pasted.locator('.chip-remove').click();
    assert.equal(await chips.count(), 2);
    assert.equal(await page.locator('#composer input[name=attachments]').count(), 2);
    await shot(page, 'chips');

    assert.deepEqual(problems.filter((p) => !/status of 415/.test(p)), []);
    await context.close();
  }));

  test('messages render Markdown on the page and live, never raw HTML; search matches the text', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor();
    await visitorSays(visitor, 'Hello');
    const { context, page, problems } = await adminPage(browser);
    const dialogs = [];
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
    await answer(page, visitor);
    const room = visitor.conversation_id;

    await page.fill('#reply', '**bold** and `code` and <script>alert(1)</script> ![cat](https://example.com/cat.png)');
    await page.press('#reply', 'Enter');
    const mine = page.locator('.msg.mine').last();
    await mine.locator('strong').waitFor();
    assert.equal(await mine.locator('.text strong').textContent(), 'bold');
    assert.equal(await mine.locator('.text code').textContent(), 'code');
    assert.match(await mine.locator('.text').textContent(), /<script>alert\(1\)<\/script>/);
    assert.equal(await mine.locator('script, img').count(), 0, 'no script element, no image fetched by URL');
    const link = mine.locator('.text a');
    assert.equal(await link.getAttribute('href'), 'https://example.com/cat.png');
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');

    // Live: the visitor's message arrives over the event socket, rendered the same way.
    await visitorSays(visitor, 'I tried *twice*:\n\n1. restart\n2. [reset](javascript:alert(2))');
    const theirs = page.locator('.msg.theirs').last();
    await theirs.locator('em').waitFor();
    assert.equal(await theirs.locator('ol li').count(), 2);
    assert.equal(await theirs.locator('a').count(), 0, 'a javascript: link is text');
    assert.match(await theirs.locator('.text').textContent(), /reset/);

    // A long code block scrolls inside its bubble; the conversation does not.
    await visitorSays(visitor, 'The log says:\n\n```\nERROR ' + 'x'.repeat(180) + '\n  at main.js:12\n```\n> quoted **reply**');
    const block = page.locator('.msg.theirs').last();
    await block.locator('pre code').waitFor();
    assert.equal(await block.locator('blockquote strong').textContent(), 'reply');
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 800 });
      assert.equal(await page.locator('#messages').evaluate((m) => m.scrollWidth <= m.clientWidth), true, `no sideways scroll at ${width}`);
      assert.equal(await block.locator('pre').evaluate((pre) => pre.scrollWidth > pre.clientWidth), true, `the block scrolls at ${width}`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });

    // Reloaded, the same.
    await page.reload();
    assert.equal(await page.locator('.msg.mine .text strong', { hasText: 'bold' }).count(), 1);
    assert.deepEqual(dialogs, []);

    // Stored raw; the search matches the words, inside the markup too.
    const token = await adminToken();
    const found = await chatd('GET', `/users/me/rooms/messages?search=bold`, token);
    const items = found.items || found;
    assert.ok(items.some((m) => m.room?.uuid === room || m.content?.startsWith('**bold**')), JSON.stringify(found));
    const stored = items.find((m) => m.content?.startsWith('**bold**'));
    assert.equal(stored.content, '**bold** and `code` and <script>alert(1)</script> ![cat](https://example.com/cat.png)');
    await shot(page, 'markdown');
    assert.deepEqual(problems, []);
    await context.close();
  }));
  test('a reply carries its files: a thumbnail that opens the image, a row that downloads; the visitor\'s files arrive live', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor();
    await visitorSays(visitor, 'Here is the **error** I get');
    const { context, page, problems } = await adminPage(browser);
    await answer(page, visitor);
    const image = png(800, 600);
    const document = pdf();
    await page.locator('[data-file-input]').setInputFiles([
      { name: 'photo.png', mimeType: 'image/png', buffer: image },
      { name: 'invoice.pdf', mimeType: 'application/pdf', buffer: document },
    ]);
    await page.locator('[data-pending] .file-chip[data-attachment]').nth(1).waitFor();
    await page.fill('#reply', 'The *invoice* and a photo:');
    await page.press('#reply', 'Enter');

    const mine = page.locator('.msg.mine').last();
    await mine.locator('.files').waitFor();
    assert.equal(await page.locator('[data-pending] .file-chip').count(), 0, 'the chips go once sent');
    assert.equal(await page.locator('#composer input[name=attachments]').count(), 0);
    assert.equal(await mine.locator('.text em').textContent(), 'invoice');
    // The thumbnail: boxed by the image's shape before it loads, then loaded.
    const thumb = mine.locator('.file-image img');
    assert.equal(await thumb.getAttribute('width'), '240');
    assert.equal(await thumb.getAttribute('height'), '180');
    await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle());
    assert.match(await thumb.getAttribute('src'), /^\/files\/[0-9a-f-]+\/thumbnail\?expires=\d+&signature=/);
    // A click opens the full image.
    const [opened] = await Promise.all([context.waitForEvent('page'), mine.locator('.file-image').click()]);
    await opened.waitForLoadState();
    assert.match(opened.url(), /\/files\/[0-9a-f-]+\/photo\.png\?expires=/);
    await opened.close();
    // The row downloads the bytes.
    const row = mine.locator('a.file-row');
    assert.equal(await row.locator('.file-name').textContent(), 'invoice.pdf');
    assert.equal(await row.locator('.file-size').textContent(), '39 KB');
    assert.equal(await row.locator('.file-icon').textContent(), 'PDF');
    const href = await row.getAttribute('href');
    const fetched = await fetch(server.baseUrl + href);
    assert.equal(fetched.status, 200);
    assert.deepEqual(Buffer.from(await fetched.arrayBuffer()), document);
    const [download] = await Promise.all([page.waitForEvent('download'), row.click()]);
    assert.equal(download.suggestedFilename(), 'invoice.pdf');

    // Files alone, no text.
    await page.locator('[data-file-input]').setInputFiles({ name: 'alone.png', mimeType: 'image/png', buffer: png(300, 500) });
    await page.locator('[data-pending] .file-chip[data-attachment]').waitFor();
    await page.click('#composer button[type=submit]');
    const alone = page.locator('.msg.mine').last().locator('.file-image img[alt="alone.png"]');
    await alone.waitFor();
    assert.equal(await alone.getAttribute('width'), '108');
    assert.equal(await page.locator('.msg.mine').last().locator('.text').count(), 0);
    // The inbox's row names the file (no text to show).
    await page.locator(`#lists [data-room="${visitor.conversation_id}"]`, { hasText: 'File: alone.png' }).waitFor();

    // The visitor's files come in live, over the event socket.
    const theirs = await visitorUploads(visitor, 'screenshot.png', 'image/png', png(640, 400));
    const notes = await visitorUploads(visitor, 'notes.txt', 'text/plain', Buffer.from('line one\nline two\n'));
    await post('/chatplugin.send', { message: { text: 'See `these`', attachments: [theirs.id, notes.id] } }, { authorization: `Bearer ${visitor.token}` });
    const live = page.locator('.msg.theirs').last();
    await live.locator('.file-image img').waitFor();
    assert.equal(await live.locator('.text code').textContent(), 'these');
    assert.equal(await live.locator('a.file-row .file-name').textContent(), 'notes.txt');

    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: width === 390 ? 844 : 800 });
        await assertAccessible(page, `console with files, ${colorScheme} ${width}`);
      }
    }
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'conversation-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    // An upload under way beside the conversation, for the screenshot.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route('**/attachments', async (route) => { await held; await route.continue().catch(() => {}); });
    await page.locator('[data-file-input]').setInputFiles({ name: 'quarterly-report-final.pdf', mimeType: 'application/pdf', buffer: document });
    await page.fill('#reply', 'One more, **uploading**…');
    await shot(page, 'conversation');
    release();
    await page.locator('[data-pending] .file-chip[data-attachment]').waitFor();
    await page.unroute('**/attachments');
    assert.deepEqual(problems, []);
    await context.close();
  }));
});
