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
  launchChromium,
  live,
  logIn,
  newAgent,
  newPage,
  newVisitor,
  reply,
  visitorSays,
} from './console_browser.mjs';
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

/** Scrolls the conversation to its newest message (as the console opens it). */
const toNewest = (page) => async () => {
  await page.evaluate(() => {
    const m = document.getElementById('messages');
    m.scrollTop = m.scrollHeight;
  });
};

/**
 * What the browser tells screen readers about the element `selector`
 * matches: its role and whether it is expanded (Chrome's accessibility
 * tree, through the DevTools protocol).
 */
async function accessibleState(page, selector) {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
    const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
    const node = nodes[0];
    const expanded = (node.properties || []).find((p) => p.name === 'expanded');
    return { role: node.role?.value, name: node.name?.value, expanded: expanded ? expanded.value.value : undefined };
  } finally {
    await cdp.detach();
  }
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
    browser = await launchChromium();
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
      // A notice (an answer lost to a colleague) shows on a phone too, above the lists.
      await page.goto(server.baseUrl + '/console/inbox?notice=taken');
      await setMode(page, MODES[2]);
      assert.ok(await page.locator('.notice-bar').isVisible(), 'the notice shows on a phone');
      assert.ok(await page.locator('[data-list=queue]').isVisible(), 'and the lists under it');
      await check(found, page, 'inbox with a notice');
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
      await shots(page, 'conversation', toNewest(page));
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
        await toNewest(page)();
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

  test(
    'the message menu stays fully visible for the first and the last message, theirs (left) and mine (right), desktop and phone',
    { timeout: 2 * TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      await page.goto(`${server.baseUrl}/console/rooms/${seen.ana.conversation_id}`);
      await live(page);
      const cut = [];
      for (const mode of [MODES[0], MODES[2]]) {
        await setMode(page, mode);
        for (const [which, side] of [['first', 'theirs'], ['first', 'mine'], ['last', 'theirs'], ['last', 'mine']]) {
          // Mark the message: the first or last of its side, scrolled to as an agent would.
          await page.evaluate(({ which, side }) => {
            for (const d of document.querySelectorAll('details.msg-menu[open]')) d.open = false;
            for (const el of document.querySelectorAll('[data-probe]')) el.removeAttribute('data-probe');
            const all = [...document.querySelectorAll(`.msg.${side}`)];
            const msg = which === 'first' ? all[0] : all[all.length - 1];
            msg.setAttribute('data-probe', '');
            const pane = document.getElementById('messages');
            pane.scrollTop = which === 'first' ? 0 : pane.scrollHeight;
          }, { which, side });
          const msg = page.locator('[data-probe]');
          await msg.hover();
          await msg.locator('summary').click();
          await msg.locator('.menu').waitFor();
          const seenAs = await page.evaluate(() => {
            // Fully visible: inside the window, and the menu itself at its
            // corners and centre (nothing cuts or covers it).
            const menu = document.querySelector('[data-probe] .menu');
            const r = menu.getBoundingClientRect();
            const inWindow = r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight;
            // (6 px in from each corner: inside its rounded corners.)
            const points = [[r.left + 6, r.top + 6], [r.right - 6, r.top + 6], [r.left + 6, r.bottom - 6],
              [r.right - 6, r.bottom - 6], [(r.left + r.right) / 2, (r.top + r.bottom) / 2]];
            const covered = points.filter(([x, y]) => !menu.contains(document.elementFromPoint(x, y)));
            const b = document.querySelector('[data-probe] summary').getBoundingClientRect();
            return { inWindow, covered, box: [r.left, r.top, r.right, r.bottom].map(Math.round), button: [b.left, b.top, b.right, b.bottom].map(Math.round) };
          });
          if (!seenAs.inWindow || seenAs.covered.length) {
            cut.push(`${which} ${side} at ${modeName(mode)}: menu at ${seenAs.box} in a ${mode.width}x${mode.height} window, ` +
              `${seenAs.covered.length} of 5 points cut or covered; its button at ${seenAs.button}`);
          }
          await msg.locator('summary').click(); // closes it
        }
      }
      assert.deepEqual(cut, [], cut.join('\n'));
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );

  for (const javaScriptEnabled of [true, false]) {
    test(
      `the visitor panel shows every value, and on a phone folds away so the conversation starts in the top quarter (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`,
      { timeout: TEST_TIMEOUT_MS },
      withServerLogs(async () => {
        const { context, page, problems } = await newPage(browser, { javaScriptEnabled });
        await logIn(page, server.adminEmail, server.adminPassword);
        await page.goto(`${server.baseUrl}/console/rooms/${seen.ana.conversation_id}`);
        const cameFrom = page.locator('.visitor-info div', { has: page.locator('dt', { hasText: 'Came from' }) }).locator('dd');
        const details = page.locator('.visitor-info details');
        const summary = details.locator('summary');

        // Wide and middling screens show the values without a click.
        for (const width of [1280, 1100, 900]) {
          await page.setViewportSize({ width, height: 800 });
          assert.ok(await cameFrom.isVisible(), `"Came from" shows its value at ${width} px`);
          const box = await cameFrom.boundingBox();
          assert.ok(box && box.width > 20 && box.height > 8, `"Came from" has room at ${width} px: ${JSON.stringify(box)}`);
          assert.equal((await cameFrom.textContent()).trim(), 'https://www.example.org/blog/best-green-teas-of-the-year');
          assert.ok(await page.locator('.visitor-info dt', { hasText: 'Language' }).isVisible(), `values shown at ${width} px`);
        }

        // A phone: the panel is one line, collapsed; the messages start in the top quarter.
        await page.setViewportSize({ width: 375, height: 667 });
        assert.equal(await details.evaluate((d) => d.open), false, 'collapsed on a phone');
        assert.ok(await summary.isVisible(), 'its button shows');
        assert.equal(await cameFrom.isVisible(), false, 'its values wait for a tap');
        const folded = await accessibleState(page, '.visitor-info summary');
        assert.equal(folded.expanded, false, `screen readers hear it collapsed: ${JSON.stringify(folded)}`);
        assert.match(folded.name, /Visitor details/);
        const top = await page.evaluate(() => {
          const m = document.getElementById('messages');
          return m.getBoundingClientRect().top + parseFloat(getComputedStyle(m).paddingTop);
        });
        assert.ok(top <= 667 / 4, `the first message starts ${top} px down a 667 px screen (at most a quarter: 167 px)`);
        assert.ok(await page.locator('.conv-head h1').isVisible(), 'the conversation is named');

        await summary.click();
        assert.equal(await details.evaluate((d) => d.open), true, 'a tap opens it');
        assert.equal((await accessibleState(page, '.visitor-info summary')).expanded, true, 'and then expanded');
        assert.ok(await cameFrom.isVisible(), '"Came from" shows once opened');
        const box = await cameFrom.boundingBox();
        assert.ok(box.x >= 0 && box.x + box.width <= 375, `inside the screen: ${JSON.stringify(box)}`);
        assert.deepEqual(problems, []);
        await context.close();
      }),
    );
  }

  test(
    "the channel's colour picker shows the widget's colour, and saving it untouched leaves the widget's colour alone",
    { timeout: 2 * TEST_TIMEOUT_MS },
    withServerLogs(async () => {
      const { context, page, problems } = await newPage(browser);
      await logIn(page, server.adminEmail, server.adminPassword);
      const settings = `${server.baseUrl}/console/admin/channels/${server.demoChannelId}`;

      // The colour a visitor's widget shows (its header), from a new visitor each time.
      const widgetColour = async () => {
        const visitor = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const shop = await visitor.newPage();
        await shop.goto(`${server.baseUrl}/demo?channel_id=${server.demoChannelId}`);
        await widget(shop).locator('.lc').waitFor();
        await Promise.all([
          shop.waitForResponse((r) => r.url().includes('/chatplugin.authenticate') && r.ok()),
          openPanel(shop),
        ]);
        await shop.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
        const colour = hex(await widget(shop).locator('.hd').evaluate((el) => getComputedStyle(el).backgroundColor));
        await visitor.close();
        return colour;
      };

      const before = await widgetColour();
      await page.goto(settings);
      assert.equal(await page.inputValue('input[name=color]'), before, 'the picker shows the colour the widget uses');

      await Promise.all([page.waitForURL('**?saved=1'), page.click('button:has-text("Save settings")')]);
      await page.locator('.alert.success').waitFor();
      assert.equal(await widgetColour(), before, 'saving untouched changed nothing');
      assert.equal(await page.inputValue('input[name=color]'), before);

      // A colour picked is the widget's.
      await page.fill('input[name=color]', '#0f766e');
      await Promise.all([page.waitForURL('**?saved=1'), page.click('button:has-text("Save settings")')]);
      assert.equal(await page.inputValue('input[name=color]'), '#0f766e');
      assert.equal(await widgetColour(), '#0f766e');
      // And saved untouched again, it stays.
      await Promise.all([page.waitForURL('**?saved=1'), page.click('button:has-text("Save settings")')]);
      assert.equal(await widgetColour(), '#0f766e');
      assert.deepEqual(problems, []);
      await context.close();
    }),
  );
});
