/// <reference lib="dom" />
/**
 * The devices and device pages in real Chromium (issue 14): readings in words and units from the one
 * table (src/core/characteristic-display.ts), names without the id, a table on a desktop and tiles on a
 * phone with switches and sliders that act in place, search/sort/filters/count, 1,000 devices drawn
 * in under a second and kept live, no overflow or broken word at 390 px, rename and notes, charts per
 * format, the log at its newest line, and a not-found page.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumPath, launchChromium } from '../helpers/chromium.js';
import { axeProblems, unreachable } from '../helpers/dashboard-checks.js';
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

// `npm run screenshots` refreshes the README's pictures; ordinary runs write them to a temp folder.
const SCREENSHOTS =
  process.env.MQTTKIT_SCREENSHOTS === 'docs' ? fileURLToPath(new URL('../../../docs/screenshots', import.meta.url)) : join(tmpdir(), 'mqttkit-screenshots');
const PASSWORD = 'a long dashboard password';
const PHONE = { width: 390, height: 844 };

/** Keeps the element `selector` finds now, to tell later whether the page drew it anew. */
const remember = (page: Page, selector: string) =>
  page.evaluate((sel) => {
    (window as unknown as { kept: Element | null }).kept = document.querySelector(sel);
  }, selector);
/** Waits until `selector` finds another element than the one remembered. */
const redrawn = (page: Page, selector: string) =>
  page.waitForFunction((sel) => document.querySelector(sel) !== (window as unknown as { kept: Element | null }).kept, selector, { timeout: 10_000 });
const DESKTOP = { width: 1100, height: 800 };

describe('devices and device pages in Chromium', { timeout: 300_000 }, () => {
  let hub: RunningHub | undefined;
  let browser: Browser | undefined;
  let sim: ChildProcess | undefined;
  let admin: MqttClient | undefined;
  const devices: MqttClient[] = [];
  const sets: string[] = [];
  let ready: Promise<{ context: BrowserContext; base: string } | undefined> | undefined;

  after(async () => {
    await browser?.close();
    sim?.kill('SIGKILL');
    admin?.end(true);
    for (const d of devices) d.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  /** One hub with simulated devices, two that share a name, and a logged-in browser context, for all tests. */
  const session = (t: TestContext) =>
    (ready ??= (async () => {
      const executable = chromiumPath(t);
      if (!executable) return undefined;
      hub = await startHub();
      const base = `http://127.0.0.1:${hub.info.httpPort}`;
      admin = await connectAdmin(hub.info.mqtt.address, 'watcher', addAdmin(hub.dataDir, 'watcher'));
      await admin.subscribeAsync('HomeKit/+/+/+/set', { qos: 1 });
      admin.on('message', (topic, payload) => sets.push(`${topic} ${payload.toString()}`));
      sim = spawn(
        process.execPath,
        [BIN, 'simulate', '--devices', '4', '--kinds', 'switch,temperature,lightbulb,humidity', '--interval', '1', '--data-dir', hub.dataDir],
        { stdio: 'ignore' },
      );
      for (const id of ['hall-lamp-a1b2c3', 'hall-lamp-d4e5f6']) {
        const d = await connectDevice(hub.info.mqtt.address, id);
        devices.push(d);
        await d.publishAsync(`HomeKit/${id}/$name`, 'Hall lamp', { qos: 1, retain: true });
        await d.publishAsync(`HomeKit/${id}/$state`, 'online', { qos: 1, retain: true });
        await d.publishAsync(`HomeKit/${id}/MotionSensor/MotionDetected`, 'true', { qos: 1 });
      }
      browser = await launchChromium(executable);
      mkdirSync(SCREENSHOTS, { recursive: true });
      const context = await browser.newContext({ viewport: DESKTOP });
      const page = await context.newPage();
      await page.goto(base);
      await page.waitForSelector('text=Create the admin account');
      await page.fill('#password', PASSWORD);
      await page.click('#submit');
      await page.waitForFunction(() => document.querySelectorAll('tr[data-device]').length === 6, undefined, { timeout: 30_000 });
      // Readings have arrived (the simulator reports once a second).
      await page.waitForSelector('[data-value="TemperatureSensor/CurrentTemperature"]', { timeout: 15_000 });
      await page.close();
      return { context, base };
    })());

  const open = async (s: { context: BrowserContext; base: string }, hash: string, viewport = DESKTOP): Promise<Page> => {
    const page = await s.context.newPage();
    await page.setViewportSize(viewport);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${s.base}/${hash}`);
    (page as Page & { errors?: string[] }).errors = errors;
    return page;
  };

  it('shows readings in words and units, and names without the id (shared names get the id tail)', async (t) => {
    const s = await session(t);
    if (!s) return;
    const page = await open(s, '#/devices');
    await page.waitForSelector('tr[data-device="sim-temperature-2"] [data-value="TemperatureSensor/CurrentTemperature"]');
    const text = (await page.textContent('#devices')) ?? '';
    assert.doesNotMatch(text, /CurrentTemperature|CurrentRelativeHumidity|celsius|percentage|MotionDetected/, 'no raw HAP names or units');
    const temperature = await page.textContent('tr[data-device="sim-temperature-2"] [data-value="TemperatureSensor/CurrentTemperature"]');
    assert.match(temperature ?? '', /^Temperature -?\d+(\.\d)? °C$/);
    await page.waitForSelector('tr[data-device="sim-humidity-4"] [data-value="HumiditySensor/CurrentRelativeHumidity"]');
    assert.match(
      (await page.textContent('tr[data-device="sim-humidity-4"] [data-value="HumiditySensor/CurrentRelativeHumidity"]')) ?? '',
      /^Humidity \d+(\.\d)? %$/,
    );
    assert.equal(await page.textContent('tr[data-device="hall-lamp-a1b2c3"] [data-value="MotionSensor/MotionDetected"]'), 'Motion detected');
    // The switch reads "Off", not "false".
    assert.match((await page.textContent('tr[data-device="sim-switch-1"] .switch-text')) ?? '', /^(On|Off)$/);
    // The simulator's names are names, and the id is not repeated beside them.
    const row = (await page.textContent('tr[data-device="sim-switch-1"] .device-name')) ?? '';
    assert.equal(row, 'Switch 1');
    // Two "Hall lamp"s: each line says which one.
    const lamps = await page.$$eval('tr[data-device^="hall-lamp"] .device-name', (cells) => cells.map((c) => c.textContent));
    assert.deepEqual(lamps.sort(), ['Hall lamp…a1b2c3', 'Hall lamp…d4e5f6']);
    // The same table is what the browser imports: served under a fixed path.
    const served = await page.evaluate(async () => {
      const m = await import('/shared/characteristic-display.js' as string);
      return [m.reading({ name: 'CurrentTemperature', unit: 'celsius', format: 'float' }, 20.5), m.reading({ name: 'Brightness', unit: 'percentage' }, 100)];
    });
    assert.deepEqual(served, ['Temperature 20.5 °C', 'Brightness 100 %']);
    assert.deepEqual((page as Page & { errors?: string[] }).errors, []);
    await page.close();
  });

  it('searches, sorts, filters by state and service type, and counts', async (t) => {
    const s = await session(t);
    if (!s) return;
    const page = await open(s, '#/devices');
    await page.waitForSelector('#device-count');
    await page.screenshot({ path: join(SCREENSHOTS, 'devices-desktop.png') });
    assert.equal(await page.textContent('#device-count'), '6 devices');
    await page.fill('#device-search', 'hall');
    assert.equal(await page.textContent('#device-count'), '2 of 6 devices');
    await page.fill('#device-search', '');
    await page.selectOption('#device-service', 'TemperatureSensor');
    assert.deepEqual(await page.$$eval('tr[data-device]', (r) => r.map((x) => x.getAttribute('data-device'))), ['sim-temperature-2']);
    assert.equal(await page.textContent('#device-count'), '1 of 6 devices');
    await page.selectOption('#device-service', '');
    // One lamp goes offline: the state filter finds it, sorting by state puts it last.
    await devices[1]!.publishAsync('HomeKit/hall-lamp-d4e5f6/$state', 'offline', { qos: 1, retain: true });
    await page.waitForSelector('tr[data-device="hall-lamp-d4e5f6"] [data-state="offline"]');
    await page.selectOption('#device-state', 'offline');
    assert.deepEqual(await page.$$eval('tr[data-device]', (r) => r.map((x) => x.getAttribute('data-device'))), ['hall-lamp-d4e5f6']);
    await page.selectOption('#device-state', '');
    await page.selectOption('#device-sort', 'state');
    const byState = await page.$$eval('tr[data-device]', (r) => r.map((x) => x.getAttribute('data-device')));
    assert.equal(byState.at(-1), 'hall-lamp-d4e5f6');
    await page.selectOption('#device-sort', 'name');
    const byName = await page.$$eval('tr[data-device] .device-name a', (r) => r.map((x) => x.textContent ?? ''));
    assert.deepEqual(
      byName,
      [...byName].sort((a, b) => a.localeCompare(b)),
    );
    await page.selectOption('#device-sort', 'lastSeen');
    assert.equal(await page.$$eval('tr[data-device]', (r) => r.length), 6);
    await devices[1]!.publishAsync('HomeKit/hall-lamp-d4e5f6/$state', 'online', { qos: 1, retain: true });
    await page.close();
  });

  it('acts in place: a switch and a slider (with its number) on the devices page', async (t) => {
    const s = await session(t);
    if (!s) return;
    const page = await open(s, '#/devices');
    const toggle = page.locator('#ctl-sim-switch-1-Switch-0-On');
    await toggle.waitFor();
    const was = await toggle.isChecked();
    await toggle.setChecked(!was);
    await eventually(() => sets.includes(`HomeKit/sim-switch-1/Switch/On/set ${was ? 0 : 1}`), 5000, 'the /set message from the switch');
    await page.waitForFunction((want) => (document.querySelector('#ctl-sim-switch-1-Switch-0-On') as HTMLInputElement | null)?.checked === want, !was, {
      timeout: 10_000,
    });
    const slider = page.locator('#ctl-sim-lightbulb-3-Lightbulb-0-Brightness');
    await slider.waitFor();
    await slider.fill('37');
    assert.equal(await page.textContent('tr[data-device="sim-lightbulb-3"] output.slider-value'), '37 %');
    await eventually(() => sets.includes('HomeKit/sim-lightbulb-3/Lightbulb/Brightness/set 37'), 5000, 'the /set message from the slider');
    await page.close();
  });

  /** Overflow and broken words, measured: the page does not scroll sideways, and no pill or label wraps. */
  const measure = (page: Page) =>
    page.evaluate(() => {
      const doc = document.documentElement;
      const wrapped = [...document.querySelectorAll('.badge, .item-label, .reading, .switch-text, .slider-value, .id-tail, .device-name a, dt, .control .name')]
        .filter((el) => (el as HTMLElement).offsetParent !== null && el.getClientRects().length > 0)
        .filter((el) => {
          // One line box per element (no wrap), or, for longer texts, no word split across lines.
          const range = document.createRange();
          range.selectNodeContents(el);
          const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          if (el.matches('.device-name a, dt, .control .name')) {
            for (const node of [...el.childNodes].filter((n) => n.nodeType === 3)) {
              const text = node.textContent ?? '';
              for (const m of text.matchAll(/\S+/g)) {
                const r = document.createRange();
                r.setStart(node, m.index ?? 0);
                r.setEnd(node, (m.index ?? 0) + m[0].length);
                if (new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size > 1) return true;
              }
            }
            return false;
          }
          return lines.size > 1;
        })
        .map((el) => `${el.className || el.tagName}: ${el.textContent}`);
      const wide = [...document.querySelectorAll('main *')]
        .filter((el) => (el as HTMLElement).offsetParent !== null && getComputedStyle(el).overflowX === 'visible')
        .filter((el) => el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 && !(el instanceof HTMLCanvasElement))
        .map((el) => `${el.tagName}.${el.className} ${el.scrollWidth}>${el.clientWidth}`);
      return { sideways: doc.scrollWidth > doc.clientWidth, wrapped, wide: wide.slice(0, 5) };
    });

  it('fits a phone (390 px): tiles, no sideways scroll, no wrapped badge, no broken word', async (t) => {
    const s = await session(t);
    if (!s) return;
    const page = await open(s, '#/devices', PHONE);
    await page.waitForSelector('tr[data-device="sim-lightbulb-3"] .slider');
    // Tiles: no table header, each device a block of its own.
    assert.equal(await page.$eval('#devices thead', (el) => getComputedStyle(el).display), 'none');
    assert.equal(await page.$eval('tr[data-device="sim-switch-1"]', (el) => getComputedStyle(el).display), 'grid');
    await page.screenshot({ path: join(SCREENSHOTS, 'devices-phone.png'), fullPage: true });
    const list = await measure(page);
    assert.deepEqual(list, { sideways: false, wrapped: [], wide: [] }, 'devices page at 390 px');
    // Tiles with switches and sliders, in both colour schemes: no serious or critical axe finding.
    const axe: string[] = [];
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      axe.push(...(await axeProblems(page, `#/devices ${scheme} 390 px`)));
    }
    await page.goto(`${s.base}/#/device/sim-lightbulb-3`);
    await page.waitForSelector('#ctl-Lightbulb-0-Brightness');
    await page.waitForSelector('[data-chart] canvas', { timeout: 10_000 }).catch(() => undefined);
    await page.screenshot({ path: join(SCREENSHOTS, 'device-phone.png'), fullPage: true });
    const detail = await measure(page);
    assert.deepEqual(detail, { sideways: false, wrapped: [], wide: [] }, 'device page at 390 px');
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      axe.push(...(await axeProblems(page, `#/device/sim-lightbulb-3 ${scheme} 390 px`)));
    }
    assert.deepEqual(axe, []);
    await page.close();
  });

  it('device page: labels, charts per format sized to their card and live, the newest log line, rename and notes', async (t) => {
    const s = await session(t);
    if (!s) return;
    // History: a few On values for the step chart.
    const lamp = devices[0]!;
    for (const v of ['true', 'false', 'true']) await lamp.publishAsync('HomeKit/hall-lamp-a1b2c3/Switch/On', v, { qos: 1 });
    for (let i = 0; i < 40; i++) await lamp.publishAsync('stat/hall-lamp-a1b2c3/Log', `line ${i}: ${'x'.repeat(60)}`, { qos: 1 });
    await new Promise((r) => setTimeout(r, 1500)); // history is written once a second (the hub's batching)
    const page = await open(s, '#/device/hall-lamp-a1b2c3');
    await page.waitForSelector('[data-chart="Switch/On"] canvas', { timeout: 10_000 });
    const main = (await page.textContent('main')) ?? '';
    assert.doesNotMatch(main, /MotionDetected|CurrentTemperature|celsius/);
    assert.match(main, /Motion sensor/);
    // The on/off chart runs 0..1 with On/Off ticks, and fits its card.
    const chart = await page.$eval('[data-chart="Switch/On"]', (box) => {
      const plot = box.querySelector('.uplot') as HTMLElement;
      // biome-ignore lint/suspicious/noExplicitAny: uPlot's instance, set on the card by charts.js
      const u = (box as any).uplot;
      return {
        plot: plot.getBoundingClientRect().width,
        card: box.clientWidth,
        y: [u.scales.y.min, u.scales.y.max],
        ticks: u.axes[1].values(u, [0, 1]),
        legend: box.querySelector('.u-legend')?.textContent ?? '',
      };
    });
    assert.ok(chart.plot <= chart.card, `chart ${chart.plot} px within its card ${chart.card} px`);
    assert.ok(chart.plot > chart.card * 0.8, `chart ${chart.plot} px fills its card ${chart.card} px`);
    assert.deepEqual(chart.y, [-0.1, 1.1], 'on/off runs 0..1');
    assert.deepEqual(chart.ticks, ['Off', 'On']);
    assert.match(chart.legend, /Power/);
    // Percentages run 0-100 whatever the values; temperatures take their own range.
    const axis = (page: Page, key: string) =>
      page.$eval(`[data-chart="${key}"]`, (box) => {
        // biome-ignore lint/suspicious/noExplicitAny: uPlot's instance, set on the card by charts.js
        const u = (box as any).uplot;
        return [u.scales.y.min, u.scales.y.max];
      });
    const other = await open(s, '#/device/sim-lightbulb-3');
    await other.waitForSelector('[data-chart="Lightbulb/Brightness"] canvas', { timeout: 10_000 });
    assert.deepEqual(await axis(other, 'Lightbulb/Brightness'), [0, 100]);
    await other.goto(`${s.base}/#/device/sim-temperature-2`);
    await other.waitForSelector('[data-chart="TemperatureSensor/CurrentTemperature"] canvas', { timeout: 10_000 });
    const [low, high] = await axis(other, 'TemperatureSensor/CurrentTemperature');
    assert.ok(high - low < 60 && low > -50, `temperature axis fits its values: ${low}..${high}`);
    await other.close();
    // Live: a new value reaches the chart without a reload.
    const before = Number(await page.getAttribute('[data-chart="Switch/On"]', 'data-points'));
    await lamp.publishAsync('HomeKit/hall-lamp-a1b2c3/Switch/On', 'false', { qos: 1 });
    await page.waitForFunction((n) => Number(document.querySelector('[data-chart="Switch/On"]')?.getAttribute('data-points')) > n, before, {
      timeout: 10_000,
    });
    // The log panel shows its newest line.
    const log = await page.$eval('#log', (el) => ({ bottom: el.scrollTop + el.clientHeight, height: el.scrollHeight }));
    assert.ok(log.height - log.bottom < 4, `the log is scrolled to its end (${log.bottom} of ${log.height})`);
    // Rename: the API and HomeKit's default name follow.
    await page.fill('#device-name', 'Porch lamp');
    await page.click('#rename');
    await page.waitForSelector('#name-message.ok');
    await page.waitForFunction(() => document.querySelector('h1')?.textContent?.includes('Porch lamp'));
    const detail = await (await page.request.get(`${s.base}/api/devices/hall-lamp-a1b2c3`)).json();
    assert.equal(detail.name, 'Porch lamp');
    assert.equal(detail.meta.name, 'Porch lamp', 'the name HomeKit gets');
    // The device says its own name again (as at every reconnect): the given one stays.
    await lamp.publishAsync('HomeKit/hall-lamp-a1b2c3/$name', 'Hall lamp', { qos: 1, retain: true });
    await lamp.publishAsync('HomeKit/hall-lamp-a1b2c3/$model', 'Lamp v2', { qos: 1, retain: true });
    await eventually(
      async () => (await (await page.request.get(`${s.base}/api/devices/hall-lamp-a1b2c3`)).json()).meta.model === 'Lamp v2',
      5000,
      'the later $model',
    );
    const again = await (await page.request.get(`${s.base}/api/devices/hall-lamp-a1b2c3`)).json();
    assert.deepEqual([again.name, again.meta.name], ['Porch lamp', 'Porch lamp'], "the device's $name does not undo a rename");
    // A bad name is refused with the rule.
    await page.fill('#device-name', '   ');
    await page.click('#rename');
    assert.match((await page.locator('#name-message[role="alert"]').textContent()) ?? '', /name: required/);
    // Notes: kept by the hub, bounded.
    await page.fill('#device-notes', 'Behind the porch light switch.');
    await page.click('#save-notes');
    await page.waitForSelector('#notes-message.ok');
    await page.reload();
    await page.waitForSelector('#device-notes');
    assert.equal(await page.inputValue('#device-notes'), 'Behind the porch light switch.');
    const tooLong = await page.request.post(`${s.base}/api/devices/hall-lamp-a1b2c3/notes`, {
      data: { notes: 'n'.repeat(2001) },
      headers: { origin: s.base },
    });
    assert.equal(tooLong.status(), 400);
    assert.match((await tooLong.json()).error, /notes: at most 2000 characters/);
    assert.deepEqual((page as Page & { errors?: string[] }).errors, []);
    await page.close();
  });

  it('the keyboard reaches every control of the devices page (switches, sliders, search, sort, filters) and the device page (rename, notes)', async (t) => {
    const s = await session(t);
    if (!s) return;
    const page = await open(s, '#/devices');
    await page.waitForSelector('#ctl-sim-lightbulb-3-Lightbulb-0-Brightness');
    assert.deepEqual(await unreachable(page), [], '#/devices');
    await page.goto(`${s.base}/#/device/sim-lightbulb-3`);
    await page.waitForSelector('#device-notes');
    assert.deepEqual(await unreachable(page), [], '#/device/sim-lightbulb-3');
    // A report of the device while its slider has the focus: the focus stays on the slider.
    await page.focus('#ctl-Lightbulb-0-Brightness');
    await remember(page, '#ctl-Lightbulb-0-Brightness');
    await redrawn(page, '#ctl-Lightbulb-0-Brightness');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'ctl-Lightbulb-0-Brightness', 'the redrawn slider has the focus');
    await page.close();
  });

  it("keeps a refused switch's message by its row through live redraws, until the user acts there or 10 s pass", async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    const porch = await connectDevice(hub.info.mqtt.address, 'porch-lamp');
    devices.push(porch);
    porch.on('error', () => {});
    await porch.publishAsync('HomeKit/porch-lamp/$name', 'Porch lamp', { qos: 1, retain: true });
    await porch.publishAsync('HomeKit/porch-lamp/Switch/On', '0', { qos: 1 });
    await porch.publishAsync('HomeKit/porch-lamp/$state', 'offline', { qos: 1, retain: true });
    const page = await open(s, '#/devices');
    await page.waitForSelector('tr[data-device="porch-lamp"] [data-state="offline"]');
    // Offline: the hub refuses the write (409) and the row says why. [P-14]
    await page.locator('#ctl-porch-lamp-Switch-0-On').check();
    const error = 'tr[data-device="porch-lamp"] [data-error-for="porch-lamp"][role="alert"]';
    await page.waitForSelector(error);
    const shownAt = Date.now();
    assert.match((await page.textContent(error)) ?? '', /offline/);
    assert.equal(await page.locator('#ctl-porch-lamp-Switch-0-On').isChecked(), false, 'the switch shows the value the device has');
    // The user moves on; the device reports (its row is drawn anew) and another device is renamed (the whole list is).
    await page.focus('#device-search');
    await remember(page, 'tr[data-device="porch-lamp"]');
    await porch.publishAsync('HomeKit/porch-lamp/$model', 'Lamp v3', { qos: 1, retain: true });
    await redrawn(page, 'tr[data-device="porch-lamp"]');
    assert.match((await page.textContent(error)) ?? '', /offline/, 'kept when its row is redrawn');
    await remember(page, 'tr[data-device="sim-switch-1"]');
    await devices[0]!.publishAsync('HomeKit/hall-lamp-a1b2c3/$name', 'Hall lamp west', { qos: 1, retain: true });
    await redrawn(page, 'tr[data-device="sim-switch-1"]');
    assert.match((await page.textContent(error)) ?? '', /offline/, 'kept when the whole list is redrawn');
    // Ten seconds after it was shown, it goes.
    await page.waitForSelector(error, { state: 'detached', timeout: 20_000 });
    assert.ok(Date.now() - shownAt >= 9500, `shown for ${Date.now() - shownAt} ms, not less than 10 s`);
    // Acting in the row again clears it at once (and a new refusal shows its own).
    await porch.publishAsync('HomeKit/porch-lamp/$state', 'offline', { qos: 1, retain: true });
    await page.waitForSelector('tr[data-device="porch-lamp"] [data-state="offline"]');
    await page.locator('#ctl-porch-lamp-Switch-0-On').check();
    await page.waitForSelector(error);
    await porch.publishAsync('HomeKit/porch-lamp/$state', 'online', { qos: 1, retain: true });
    await page.waitForSelector('tr[data-device="porch-lamp"] [data-state="online"]');
    await page.focus('#ctl-porch-lamp-Switch-0-On');
    await page.keyboard.press('Space');
    await page.waitForSelector(error, { state: 'detached', timeout: 5000 });
    await devices[0]!.publishAsync('HomeKit/hall-lamp-a1b2c3/$name', 'Hall lamp', { qos: 1, retain: true });
    assert.deepEqual((page as Page & { errors?: string[] }).errors, []);
    await page.close();
  });

  it('counts "last seen" up between reports with one timer for the page, paused while the tab is hidden', async (t) => {
    const s = await session(t);
    if (!s || !hub) return;
    const page = await s.context.newPage();
    // Every interval timer the page starts, and which are still running.
    await page.addInitScript(() => {
      const running = new Set<number>();
      (window as unknown as { intervals: Set<number> }).intervals = running;
      const start = window.setInterval.bind(window);
      const clear = window.clearInterval.bind(window);
      window.setInterval = ((fn: TimerHandler, ms?: number, ...rest: unknown[]) => {
        const id = start(fn, ms, ...rest);
        running.add(id);
        return id;
      }) as typeof window.setInterval;
      window.clearInterval = ((id?: number) => {
        if (id !== undefined) running.delete(id);
        clear(id);
      }) as typeof window.clearInterval;
    });
    const quiet = await connectDevice(hub.info.mqtt.address, 'quiet-sensor');
    devices.push(quiet);
    await quiet.publishAsync('HomeKit/quiet-sensor/TemperatureSensor/CurrentTemperature', '18.5', { qos: 1 });
    await page.goto(`${s.base}/#/devices`);
    const cell = 'tr[data-device="quiet-sensor"] .device-seen';
    await page.waitForSelector(cell);
    const intervals = () => page.evaluate(() => (window as unknown as { intervals: Set<number> }).intervals.size);
    await remember(page, cell);
    const first = await page.textContent(cell);
    // The same cell (no redraw: the sensor is quiet) says a later time.
    await page.waitForFunction(
      ([sel, was]) => {
        const el = document.querySelector(sel as string);
        return el === (window as unknown as { kept: Element | null }).kept && el?.textContent !== was;
      },
      [cell, first] as const,
      { timeout: 5000 },
    );
    assert.equal(await intervals(), 1, 'one timer for the whole page, not one per row');
    // Hidden tab: the timer stops; shown again: it runs, and the time is right at once.
    const visibility = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await visibility(true);
    assert.equal(await intervals(), 0, 'no timer while the tab is hidden');
    await visibility(false);
    assert.equal(await intervals(), 1);
    // Leaving the page ends its timer.
    await page.goto(`${s.base}/#/pairing`);
    await page.waitForFunction(() => (window as unknown as { intervals: Set<number> }).intervals.size === 0, undefined, { timeout: 5000 });
    await page.close();
  });

  it('shows a proper not-found page for an unknown device id', async (t) => {
    const s = await session(t);
    if (!s) return;
    const page = await open(s, '#/device/no-such-device');
    await page.waitForSelector('#not-found');
    assert.equal(await page.textContent('h1'), 'Device not found');
    assert.ok(await page.locator('a[href="#/devices"]').count());
    await page.close();
  });
});

/**
 * 1,000 distinct devices (ids, names, values), reported over MQTT to a real hub: the devices page draws
 * them in under a second (measured in the browser, layout included) and keeps them live.
 */
describe('1,000 devices on the devices page', { timeout: 180_000 }, () => {
  let hub: RunningHub | undefined;
  let browser: Browser | undefined;
  const reporters: MqttClient[] = [];
  after(async () => {
    await browser?.close();
    for (const r of reporters) r.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });
  const id = (i: number) => `bulk-${String(i).padStart(4, '0')}`;

  it('draws 1,000 devices in under a second and keeps them live (a change of device #900 shows without a reload)', async (t) => {
    const executable = chromiumPath(t);
    if (!executable) return;
    hub = await startHub({ args: ['--no-homekit'] });
    const base = `http://127.0.0.1:${hub.info.httpPort}`;
    // Five admin connections report 200 devices each: a name and a temperature of its own (0.0 to 99.9 °C) (under the inflow limit of one client).
    for (let c = 0; c < 5; c++) {
      const name = `bulk-reporter-${c}`;
      const client = await connectAdmin(hub.info.mqtt.address, name, addAdmin(hub.dataDir, name));
      client.on('error', () => {});
      reporters.push(client);
    }
    await Promise.all(
      reporters.map(async (client, c) => {
        for (let i = c * 200; i < (c + 1) * 200; i++) {
          await client.publishAsync(`HomeKit/${id(i)}/$name`, `Sensor ${i}`, { qos: 1, retain: true });
          await client.publishAsync(`HomeKit/${id(i)}/TemperatureSensor/CurrentTemperature`, (i / 10).toFixed(1), { qos: 1 });
        }
      }),
    );
    browser = await launchChromium(executable);
    const page = await browser.newPage({ viewport: DESKTOP });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base);
    await page.waitForSelector('text=Create the admin account');
    await page.fill('#password', PASSWORD);
    await page.click('#submit');
    await page.waitForFunction(() => document.querySelector('#device-count')?.textContent === '1000 devices', undefined, { timeout: 30_000 });
    // The page's own modules, with the hub's 1,000 devices: the page is drawn anew and timed, layout included.
    const ms = await page.evaluate(async () => {
      const { onLive } = await import('/lib/live.js' as string);
      const { devicesPage } = await import('/pages/devices.js' as string);
      const main = document.getElementById('main') as HTMLElement;
      main.replaceChildren();
      const t0 = performance.now();
      const handler = devicesPage(main);
      void main.offsetHeight; // layout included
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      const took = performance.now() - t0;
      onLive((kind: string, data: unknown) => handler(kind, data));
      return took;
    });
    console.log(`1,000 devices: first full render ${ms.toFixed(0)} ms`);
    const rows = await page.$$eval('tr[data-device]', (r) =>
      r.map((x) => [x.getAttribute('data-device'), x.querySelector('.device-name')?.textContent, x.querySelector('[data-value]')?.textContent]),
    );
    assert.equal(rows.length, 1000);
    assert.equal(new Set(rows.map((r) => r[0])).size, 1000, 'distinct ids');
    assert.equal(new Set(rows.map((r) => r[1])).size, 1000, 'distinct names');
    assert.equal(new Set(rows.map((r) => r[2])).size, 1000, 'distinct values');
    assert.deepEqual(
      rows.find((r) => r[0] === id(900)),
      [id(900), 'Sensor 900', 'Temperature 90 °C'],
    );
    assert.ok(ms < 1000, `1,000 devices drawn in ${ms.toFixed(0)} ms (bound: 1000 ms)`);
    // Still live: device #900 reports a new value; its row shows it, and only its row is drawn again.
    await page.evaluate(() => {
      (window as unknown as { other: Element | null }).other = document.querySelector('tr[data-device="bulk-0001"]');
    });
    await reporters[4]!.publishAsync(`HomeKit/${id(900)}/TemperatureSensor/CurrentTemperature`, '31.5', { qos: 1 });
    await page.waitForFunction(
      () => document.querySelector('tr[data-device="bulk-0900"] [data-value="TemperatureSensor/CurrentTemperature"]')?.textContent === 'Temperature 31.5 °C',
      undefined,
      { timeout: 10_000 },
    );
    assert.ok(
      await page.evaluate(() => document.querySelector('tr[data-device="bulk-0001"]') === (window as unknown as { other: Element | null }).other),
      'the other 999 rows are left as they were',
    );
    assert.deepEqual(errors, []);
  });
});
