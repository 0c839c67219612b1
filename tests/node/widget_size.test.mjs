// What /widget.js costs a page: at most 16 KiB gzipped for everything the
// widget loads (script, styles, icons, both languages: one file), served
// compressed by Accept-Encoding, with an ETag that revalidates to 304.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer } from './chatgate_server.mjs';

export const BUDGET_BYTES = 16 * 1024;

async function get(path, headers = {}) {
  const res = await fetch(server.baseUrl + path, { headers });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

describe('/widget.js as served', () => {
  before(() => startServer(), { timeout: STARTUP_TIMEOUT_MS + 5_000 });
  after(() => stopServer(), { timeout: SHUTDOWN_TIMEOUT_MS + 5_000 });

  test('gzipped, the whole widget fits in 16 KiB', async () => {
    // fetch() would decompress: ask with a client that does not.
    const { res, body } = await rawGet('/widget.js', { 'accept-encoding': 'gzip' });
    assert.equal(res.headers['content-encoding'], 'gzip');
    const plain = zlib.gunzipSync(body).toString('utf8');
    console.log(`widget.js: ${plain.length} bytes, ${body.length} gzipped`);
    assert.ok(body.length <= BUDGET_BYTES, `gzipped widget is ${body.length} bytes, over the ${BUDGET_BYTES} budget`);
    assert.ok(plain.includes('attachShadow') && plain.includes('.lc{'), 'script and styles in the one file');
    assert.ok(!/@import|url\(/.test(plain), 'the styles load nothing');
    const identity = await rawGet('/widget.js', { 'accept-encoding': 'identity' });
    assert.equal(identity.res.headers['content-encoding'], undefined);
    assert.equal(identity.body.toString('utf8'), plain);
    const br = await rawGet('/widget.js', { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.res.headers['content-encoding'], 'br');
    assert.equal(zlib.brotliDecompressSync(br.body).toString('utf8'), plain);
    assert.ok(br.body.length < body.length);
  });

  test('cached briefly, then revalidated by ETag', async () => {
    const { res } = await get('/widget.js', { 'accept-encoding': 'gzip' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/javascript/);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=300, stale-while-revalidate=86400');
    assert.match(res.headers.get('vary'), /accept-encoding/i);
    const etag = res.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}-gz"$/);
    const again = await get('/widget.js', { 'accept-encoding': 'gzip', 'if-none-match': etag });
    assert.equal(again.res.status, 304);
    assert.equal(again.body.length, 0);
    const stale = await get('/widget.js', { 'if-none-match': '"0000000000000000"' });
    assert.equal(stale.res.status, 200);
  });

  test('the demo page embeds the widget', async () => {
    const { res, body } = await get('/demo');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(body.toString(), /\/widget\.js/);
    assert.match(server.stdout, new RegExp(`demo page:\\s+${server.baseUrl}/demo\\?channel_id=${server.demoChannelId}`));
  });
});

async function rawGet(path, headers) {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    http.get(server.baseUrl + path, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}
