// /api/docs in Chromium, 1280 px and 390 px wide, light and dark: every
// operation of /api/openapi.json is on the page, nothing is wider than the
// screen, axe finds nothing serious; screenshots (one operation opened) in
// target/screenshots/api-docs-<width>-<scheme>-{top,operation,schema}.png
// for people to look at.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { SHUTDOWN_TIMEOUT_MS, STARTUP_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { SHOTS, launchChromium } from './console_browser.mjs';

let browser;

describe('API docs page', { timeout: 120_000 }, () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
    fs.mkdirSync(SHOTS, { recursive: true });
  }, { timeout: STARTUP_TIMEOUT_MS + 10_000 });

  after(async () => {
    await browser?.close();
    await stopServer();
  }, { timeout: SHUTDOWN_TIMEOUT_MS + 10_000 });

  test('lists every operation, fits 1280 and 390 px, light and dark', withServerLogs(async () => {
    const doc = await (await fetch(server.baseUrl + '/api/openapi.json')).json();
    const methods = ['get', 'head', 'post', 'put', 'patch', 'delete'];
    const operations = Object.values(doc.paths)
      .flatMap((item) => methods.filter((m) => item[m])).length
      + Object.values(doc.webhooks).flatMap((item) => methods.filter((m) => item[m])).length;
    for (const width of [1280, 390]) {
      for (const scheme of ['light', 'dark']) {
        const context = await browser.newContext({ viewport: { width, height: 900 }, colorScheme: scheme });
        const page = await context.newPage();
        await page.goto(server.baseUrl + '/api/docs');
        assert.equal(await page.locator('details.op').count(), operations);
        await page.screenshot({ path: path.join(SHOTS, `api-docs-${width}-${scheme}-top.png`) });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `the page is ${overflow} px wider than a ${width} px screen`);
        const messages = page.locator('details.op', { hasText: '/users/me/rooms/{room}/messages' }).first();
        await messages.locator('summary').click();
        const overflowOpen = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflowOpen <= 0, `an opened operation is ${overflowOpen} px wider than a ${width} px screen`);
        await assertAccessible(page, `/api/docs at ${width} px, ${scheme}`);
        await messages.evaluate((e) => e.scrollIntoView());
        await page.screenshot({ path: path.join(SHOTS, `api-docs-${width}-${scheme}-operation.png`) });
        await page.goto(server.baseUrl + '/api/docs#schema-Room');
        await page.screenshot({ path: path.join(SHOTS, `api-docs-${width}-${scheme}-schema.png`) });
        await context.close();
      }
    }
  }));
});
