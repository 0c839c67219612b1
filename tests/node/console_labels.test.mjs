// Labels in the console (desk-api.md, "Support desk"): an admin creates
// labels on its page, an agent puts one on a conversation from its header,
// filters the inbox by it, and finds the conversation by a word of a
// message with the search box. Chips take their colour from
// /console/labels.css. axe finds nothing serious on both pages; screenshots
// at 1280x800 and 390x844 in $SHOTS_DIR (default target/screenshots).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertAccessible } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import { SHOTS, adminPage, answer, launchChromium, live, logIn, newAgent, newPage, newVisitor, visitorSays } from './console_browser.mjs';

const SHOTS_DIR = process.env.SHOTS_DIR || SHOTS;
let browser;

async function shoot(page, name) {
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(SHOTS_DIR, `console-labels-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

async function createLabel(page, name, color) {
  const form = page.locator('form[action="/console/admin/labels"]');
  await form.locator('input[name=name]').fill(name);
  await form.locator('input[name=color]').fill(color);
  await Promise.all([page.waitForNavigation(), form.locator('button[type=submit]').click()]);
  await page.locator('.label-row .label-chip', { hasText: name }).waitFor();
}

/** The rooms of the inbox's "found" list, in order. */
async function foundRooms(page) {
  return page.locator('[data-list=found] [data-room]').evaluateAll((rows) => rows.map((r) => r.dataset.room));
}

describe('console: labels', () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test('an admin creates a label, an agent applies it, filters the inbox by it and finds the conversation by a word', { timeout: TEST_TIMEOUT_MS }, withServerLogs(async () => {
    // The admin's label page.
    const admin = await adminPage(browser);
    await admin.page.goto(server.baseUrl + '/console/admin/labels');
    await createLabel(admin.page, 'VIP', '#b42318');
    await createLabel(admin.page, 'Billing', '#1d4ed8');
    await createLabel(admin.page, 'Feedback', '#fdb022');
    const chip = admin.page.locator('.label-row .label-chip', { hasText: 'VIP' });
    assert.equal(await chip.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(180, 35, 24)');
    assert.equal(await chip.evaluate((el) => getComputedStyle(el).color), 'rgb(255, 255, 255)');
    const feedback = admin.page.locator('.label-row .label-chip', { hasText: 'Feedback' });
    assert.equal(await feedback.evaluate((el) => getComputedStyle(el).color), 'rgb(0, 0, 0)', 'dark text on a light colour');
    // A rename from the row's form.
    const row = admin.page.locator('.label-row', { hasText: 'Feedback' });
    await row.locator('input[name=name]').fill('Ideas');
    await Promise.all([admin.page.waitForNavigation(), row.locator('button', { hasText: 'Save' }).click()]);
    await admin.page.locator('.label-row .label-chip', { hasText: 'Ideas' }).waitFor();
    await assertAccessible(admin.page, 'label admin page');
    await shoot(admin.page, 'admin');

    // An agent answers two visitors and labels one from its header.
    const invoice = await newVisitor();
    await visitorSays(invoice, 'My invoice is wrong, please fix it');
    const hello = await newVisitor();
    await visitorSays(hello, 'Hello there, a question about delivery');
    const ana = await newAgent('Ana');
    const { context, page, problems } = await newPage(browser);
    await logIn(page, ana.email, ana.password);
    await live(page);
    await answer(page, hello);
    await answer(page, invoice);
    await live(page);
    await page.locator('.label-menu summary').click();
    await page.locator('.label-choice', { hasText: 'VIP' }).locator('input').check();
    await page.locator('.label-choice', { hasText: 'Billing' }).locator('input').check();
    await Promise.all([page.waitForNavigation(), page.locator('[data-label-form] button[type=submit]').click()]);
    const header = page.locator('.conv-labels > .label-chip');
    assert.deepEqual(await header.allTextContents(), ['Billing', 'VIP']);
    const rowChips = page.locator(`[data-list=mine] [data-room="${invoice.conversation_id}"] .label-chip`);
    assert.deepEqual(await rowChips.allTextContents(), ['Billing', 'VIP']);
    await page.locator('.label-menu summary').click();
    await page.locator('[data-label-form]').waitFor();
    await assertAccessible(page, 'conversation with its label menu open');
    await shoot(page, 'conversation');

    // The admin's inbox hears of it (chatd_room_labels_updated is for the
    // room's agents; the admin is not one, so it reloads its All list).
    await admin.page.goto(server.baseUrl + `/console/all`);
    await admin.page.locator(`[data-room="${invoice.conversation_id}"]`).waitFor();

    // Filter by label: only the labelled conversation.
    await page.goto(server.baseUrl + '/console/inbox');
    await live(page);
    await page.locator('.inbox-filters summary').click();
    await Promise.all([
      page.waitForURL(/[?&]label=/),
      page.locator('#f-label').selectOption({ label: 'VIP' }),
    ]);
    await page.locator('[data-list=found]').waitFor();
    assert.deepEqual(await foundRooms(page), [invoice.conversation_id]);
    assert.equal(await page.locator('#f-label option:checked').textContent(), 'VIP');
    // Narrowed by state: still it; closed: nothing.
    await Promise.all([page.waitForURL(/state=open/), page.locator('#f-state').selectOption('open')]);
    assert.deepEqual(await foundRooms(page), [invoice.conversation_id]);
    await page.setViewportSize({ width: 1280, height: 800 });
    await assertAccessible(page, 'inbox filtered by label');
    await shoot(page, 'inbox-filtered');
    await Promise.all([page.waitForURL(/state=closed/), page.locator('#f-state').selectOption('closed')]);
    assert.deepEqual(await foundRooms(page), []);

    // Search a word of a message: the conversation that has it.
    await page.goto(server.baseUrl + '/console/inbox');
    await live(page);
    await shoot(page, 'inbox');
    await page.fill('[data-search]', 'invoice');
    await Promise.all([page.waitForURL(/[?&]q=invoice/), page.press('[data-search]', 'Enter')]);
    assert.deepEqual(await foundRooms(page), [invoice.conversation_id]);
    await page.fill('[data-search]', 'delivery');
    await Promise.all([page.waitForURL(/[?&]q=delivery/), page.press('[data-search]', 'Enter')]);
    assert.deepEqual(await foundRooms(page), [hello.conversation_id]);
    await Promise.all([page.waitForURL(roomUrlOf(hello)), page.locator(`[data-list=found] [data-room="${hello.conversation_id}"]`).click()]);

    assert.deepEqual(problems, []);
    assert.deepEqual(admin.problems, []);
    await context.close();
    await admin.context.close();
  }));
});

function roomUrlOf(visitor) {
  return new RegExp(`/console/rooms/${visitor.conversation_id}`);
}
