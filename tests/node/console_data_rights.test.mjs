// Data rights in the console (desk-api.md, "Integrations"): an admin
// downloads a visitor's export from the conversation, erases the visitor
// after a confirmation page (a plain form: it works without JavaScript),
// and sets the tenant's retention on the Data page, where the audit log
// lists both. Screenshots at 1280 and 390 px wide.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { SHOTS, adminPage, adminToken, chatd, launchChromium, newVisitor, visitorSays } from './console_browser.mjs';

let browser;

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

describe('console: data rights', () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test('an admin exports, then erases a visitor, and sets the retention', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    const visitor = await newVisitor({ visitor: { name: 'Zoé Martin', email: 'zoe@example.com' } });
    await visitorSays(visitor, 'My order 4711 never came');
    const token = await adminToken();
    const room = visitor.conversation_id;
    await chatd('PUT', `/queues/${room}/answer`, token);
    await chatd('POST', `/users/me/rooms/${room}/messages`, token, { content: 'Let me check, Zoé.' });

    const { page, problems } = await adminPage(browser);
    // In the admin's own inbox, the visitor panel offers both too.
    await page.goto(`${server.baseUrl}/console/rooms/${room}`);
    await page.locator('.visitor-data a[data-export]').waitFor();
    assert.equal(await page.locator('.visitor-data a[data-erase]').count(), 1);
    await widths(page, 'data-rights-inbox');
    await page.goto(`${server.baseUrl}/console/all/${room}`);
    const exportLink = page.locator('a[data-export]');
    await exportLink.waitFor();
    await widths(page, 'data-rights-conversation');
    const [download] = await Promise.all([page.waitForEvent('download'), exportLink.click()]);
    assert.equal(download.suggestedFilename(), `visitor-${room}.zip`);
    const zip = fs.readFileSync(await download.path());
    assert.equal(zip.subarray(0, 2).toString(), 'PK');

    await Promise.all([page.waitForURL(`**/console/all/${room}/erase`), page.locator('a[data-erase]').click()]);
    assert.match(await page.locator('h1').textContent(), /Erase Zoé Martin\?/);
    await assertAccessible(page, 'the erase confirmation');
    await widths(page, 'data-rights-erase');
    await Promise.all([
      page.waitForURL(`**/console/all/${room}?notice=erased`),
      page.locator('form.erase-form button[type=submit]').click(),
    ]);
    assert.match(await page.locator('.notice-bar').textContent(), /anonymous shell/);
    assert.equal(await page.locator('.msg', { hasText: '4711' }).count(), 0);
    await widths(page, 'data-rights-erased');

    await page.goto(`${server.baseUrl}/console/admin/data`);
    // The server refuses what the browser's own check would (bypassed here).
    await page.locator('.retention-form').evaluate((form) => { form.noValidate = true; });
    await page.fill('input[name=retention_days]', '0');
    await page.locator('.retention-form button[type=submit]').click();
    await page.locator('.alert.error').waitFor();
    await page.fill('input[name=retention_days]', '90');
    await Promise.all([
      page.waitForURL('**/console/admin/data?notice=retention'),
      page.locator('.retention-form button[type=submit]').click(),
    ]);
    assert.equal(await page.inputValue('input[name=retention_days]'), '90');
    const rows = page.locator('table.audit-log tbody tr');
    assert.equal(await rows.count(), 2);
    assert.match(await rows.nth(0).textContent(), /Erased/);
    assert.match(await rows.nth(1).textContent(), /Exported/);
    await assertAccessible(page, 'the data page');
    await widths(page, 'data-rights-data');
    const tenant = await chatd('GET', '/tenant', token);
    assert.equal(tenant.retention_days, 90);
    // The refused retention's page is a 400, which Chromium logs.
    assert.deepEqual(problems.filter((p) => !p.includes('status of 400')), []);
  }));
});
