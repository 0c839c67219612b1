// Webhooks in the console (desk-api.md, "Integrations"): an admin adds an
// endpoint (a real HTTP receiver started here), sees its signing secret
// once, a visitor's message reaches the receiver, and the endpoint's
// delivery log lists it with its answer. axe on both pages; screenshots at
// 1280 and 390 px wide.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { SHOTS, adminPage, launchChromium, newVisitor, visitorSays } from './console_browser.mjs';

let browser;
let receiver;
const received = [];

/** Screenshots of the page at 1280 and 390 px wide. */
async function widths(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 800 });
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(SHOTS, `console-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

describe('console: webhooks', () => {
  before(async () => {
    // The receiver is on this machine: a private address the server refuses
    // unless the operator allows such targets.
    process.env.CHATGATE_WEBHOOK_ALLOW_PRIVATE = '1';
    await startServer();
    browser = await launchChromium();
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => receiver?.close(resolve));
    await stopServer();
  });

  test('an admin adds an endpoint, which gets a visitor message, and reads its delivery log', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const url = `http://127.0.0.1:${receiver.address().port}/hook`;
    const { page, problems } = await adminPage(browser);
    await page.goto(`${server.baseUrl}/console/admin/webhooks`);
    await page.locator('.card', { hasText: 'No endpoints yet' }).waitFor();
    await assertAccessible(page, 'the webhooks page, empty');
    await page.fill('input[name=url]', url);
    await page.fill('input[name=events]', 'message.created');
    await Promise.all([page.waitForNavigation(), page.locator('button', { hasText: 'Add endpoint' }).click()]);
    const secret = (await page.locator('code.secret').textContent()).trim();
    assert.match(secret, /^whsec_[A-Za-z0-9+/=]+$/);
    await page.locator('tr[data-webhook-row]', { hasText: url }).waitFor();
    await assertAccessible(page, 'the webhooks page with an endpoint and its secret');
    await widths(page, 'webhooks');
    // Shown once: the next visit has no secret.
    await page.goto(`${server.baseUrl}/console/admin/webhooks`);
    assert.equal(await page.locator('code.secret').count(), 0);

    const visitor = await newVisitor({ visitor: { name: 'Ana' } });
    await visitorSays(visitor, 'Is my order on its way?');
    const deadline = Date.now() + 15000;
    while (!received.some((r) => r.body.data?.message?.content === 'Is my order on its way?')) {
      assert.ok(Date.now() < deadline, `the event reaches the receiver (got ${received.length})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const event = received.find((r) => r.body.data?.message?.content === 'Is my order on its way?');
    assert.equal(event.body.type, 'message.created');
    assert.equal(event.headers['webhook-id'], event.body.id);
    assert.match(event.headers['webhook-signature'], /^v1,/);

    // The log reads the delivery once its round is recorded.
    await page.locator('tr[data-webhook-row] a', { hasText: url }).click();
    const row = page.locator('tr[data-delivery-row]', { hasText: 'message.created' });
    const logDeadline = Date.now() + 15000;
    for (;;) {
      if ((await row.count()) > 0 && /delivered/.test(await row.first().textContent())) break;
      assert.ok(Date.now() < logDeadline, 'the delivery log shows the delivery');
      await page.waitForTimeout(300);
      await page.reload();
    }
    assert.match(await row.first().textContent(), /204/);
    assert.equal(await row.first().locator('button', { hasText: 'Send again' }).count(), 1);
    await assertAccessible(page, 'an endpoint\'s delivery log');
    await widths(page, 'webhook-deliveries');
    assert.deepEqual(problems, []);
  }));
});
