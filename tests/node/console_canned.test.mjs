// Canned responses in the console (Chromium): an admin writes one on the
// admin page; an agent types "/ret" in a visitor conversation, picks it by
// keyboard from the listbox (arrows, Enter; Escape closes), finds it in the
// reply box with the visitor's, its own and the channel's names filled in,
// sends it, and the visitor's history has it. Screenshots of the admin page
// and the picker at 1280x800 and 390x844 in CANNED_SHOTS (default
// target/screenshots).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  SHOTS,
  adminPage,
  adminToken,
  answer,
  chatd,
  launchChromium,
  live,
  logIn,
  newAgent,
  newPage,
  newVisitor,
  visitorHistory,
  visitorSays,
} from './console_browser.mjs';
import { assertAccessible } from './a11y.mjs';

const OUT = process.env.CANNED_SHOTS || SHOTS;
const WIDTHS = [[1280, 800], [390, 844]];

async function shots(page, name) {
  fs.mkdirSync(OUT, { recursive: true });
  for (const [width, height] of WIDTHS) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(OUT, `console-canned-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

let browser;

describe('canned responses in the console', { timeout: 2 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test(
    'an admin writes one, an agent inserts it with "/" by keyboard, fields filled, and the visitor gets it',
    { timeout: TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      // Another whose shortcut starts with "ret" too, listed before it.
      await chatd('POST', '/canned_responses', await adminToken(), {
        shortcut: 'retry',
        title: 'Retry the payment',
        content: 'Could you try the payment again, {{visitor.name}}?',
      });

      // The admin page: create one with the form.
      const admin = await adminPage(browser);
      await admin.page.click('nav.tabs a:has-text("Canned")');
      await admin.page.waitForURL('**/console/admin/canned');
      await admin.page.fill('input[name=shortcut]', '/returns');
      await admin.page.fill('input[name=title]', 'Returns policy');
      await admin.page.fill(
        'textarea[name=content]',
        'Hi {{visitor.name}}, you can return any order within 30 days. {{agent.name}} from {{channel.name}}',
      );
      await Promise.all([
        admin.page.waitForURL('**/console/admin/canned?saved=1'),
        admin.page.click('.canned-form button[type=submit]'),
      ]);
      const row = admin.page.locator('.canned-table tr', { hasText: '/returns' });
      await row.waitFor();
      assert.match(await row.innerText(), /Returns policy/);
      // A duplicate shortcut is refused on the page, with what was typed kept.
      await admin.page.fill('input[name=shortcut]', 'returns');
      await admin.page.fill('input[name=title]', 'Again');
      await admin.page.fill('textarea[name=content]', 'Kept text');
      await admin.page.click('.canned-form button[type=submit]');
      await admin.page.locator('.alert.error', { hasText: 'shortcut' }).waitFor();
      assert.equal(await admin.page.locator('textarea[name=content]').inputValue(), 'Kept text');
      await admin.page.goto(server.baseUrl + '/console/admin/canned');
      await assertAccessible(admin.page, 'the canned responses admin page');
      await shots(admin.page, 'admin');
      // Its edit page, reached from the row, holds it as stored.
      await Promise.all([
        admin.page.waitForURL('**/console/admin/canned/*'),
        admin.page.locator('.canned-table tr', { hasText: '/returns' }).locator('a', { hasText: 'Edit' }).click(),
      ]);
      assert.equal(await admin.page.locator('input[name=shortcut]').inputValue(), 'returns');
      await assertAccessible(admin.page, 'the edit page of a canned response');
      await shots(admin.page, 'edit');
      // The refused form was answered 400, as the console's forms are.
      assert.deepEqual(admin.problems.filter((p) => !p.includes('status of 400')), []);
      await admin.context.close();

      // An agent (not an admin) answers a visitor who gave a name.
      const ana = await newAgent('Ana');
      const visitor = await newVisitor({ visitor: { name: 'Lena' } });
      await visitorSays(visitor, 'Can I send my shoes back?');
      const { context, page, problems } = await newPage(browser);
      await logIn(page, ana.email, ana.password);
      assert.equal(await page.locator('nav.tabs a:has-text("Canned")').count(), 0, 'no admin link for agents');
      await answer(page, visitor);
      await live(page);

      // "/ret" opens the picker; Escape closes it and leaves the text.
      await page.click('#reply');
      await page.keyboard.type('/ret');
      const options = page.locator('#canned-list [role=option]');
      await options.nth(1).waitFor();
      assert.deepEqual(
        (await options.locator('strong').allInnerTexts()),
        ['/retry', '/returns'],
      );
      await page.keyboard.press('Escape');
      assert.equal(await page.locator('#canned-list').isHidden(), true);
      assert.equal(await page.locator('#reply').inputValue(), '/ret');
      assert.equal(await page.getAttribute('#reply', 'aria-activedescendant'), null);

      // Another "/" word opens it again; ArrowDown then Enter inserts the second.
      await page.fill('#reply', '');
      await page.keyboard.type('/ret');
      await options.nth(1).waitFor();
      assert.equal(await page.getAttribute('#reply', 'aria-controls'), 'canned-list');
      assert.match(await page.locator('#composer [role=status]').innerText(), /2 canned responses/);
      assert.equal(await page.getAttribute('#reply', 'aria-activedescendant'), 'canned-0');
      await page.keyboard.press('ArrowDown');
      assert.equal(await page.getAttribute('#reply', 'aria-activedescendant'), 'canned-1');
      assert.equal(await options.nth(1).getAttribute('aria-selected'), 'true');
      await assertAccessible(page, 'the reply box with the canned-response picker open');
      await shots(page, 'picker');
      assert.equal(await page.getAttribute('#reply', 'aria-activedescendant'), 'canned-1');
      await page.keyboard.press('Enter');

      const channel = await page.getAttribute('#composer', 'data-fill-channel');
      assert.ok(channel, 'the channel has a name');
      const expected = `Hi Lena, you can return any order within 30 days. Ana from ${channel}`;
      assert.equal(await page.locator('#reply').inputValue(), expected);
      assert.equal(await page.locator('#canned-list').isHidden(), true);

      // Enter (the list closed) sends it; the visitor's history has it.
      await page.keyboard.press('Enter');
      await page.locator('.msg.mine', { hasText: 'you can return any order' }).waitFor();
      const history = await visitorHistory(visitor);
      assert.ok(
        history.some((m) => m.content === expected),
        `the visitor's history has the reply: ${JSON.stringify(history)}`,
      );
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );
});
