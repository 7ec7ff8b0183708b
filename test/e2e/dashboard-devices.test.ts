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
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

// `npm run screenshots` refreshes the README's pictures; ordinary runs write them to a temp folder.
const SCREENSHOTS =
  process.env.MQTTKIT_SCREENSHOTS === 'docs' ? fileURLToPath(new URL('../../../docs/screenshots', import.meta.url)) : join(tmpdir(), 'mqttkit-screenshots');
const PASSWORD = 'a long dashboard password';
const PHONE = { width: 390, height: 844 };
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

  it('draws 1,000 devices in under a second and keeps them live', async (t) => {
    const s = await session(t);
    if (!s) return;
    const page = await open(s, '#/devices');
    await page.waitForSelector('tr[data-device="sim-switch-1"]');
    // The page's own modules: 994 copies of the real devices join the six, then the page is drawn anew.
    const ms = await page.evaluate(async () => {
      const { live, onLive } = await import('/lib/live.js' as string);
      const { devicesPage } = await import('/pages/devices.js' as string);
      const real = [...live.devices.values()];
      for (let i = 0; live.devices.size < 1000; i++) {
        const d = structuredClone(real[i % real.length]);
        d.id = `bulk-${i}`;
        d.name = `Bulk device ${i}`;
        live.devices.set(d.id, d);
      }
      const main = document.getElementById('main') as HTMLElement;
      const t0 = performance.now();
      const handler = devicesPage(main);
      void main.offsetHeight; // layout included
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      const took = performance.now() - t0;
      onLive((kind: string, data: unknown) => handler(kind, data));
      return took;
    });
    console.log(`1,000 devices: first full render ${ms.toFixed(0)} ms`);
    assert.equal(await page.$$eval('tr[data-device]', (r) => r.length), 1000);
    assert.equal(await page.textContent('#device-count'), '1000 devices');
    assert.ok(ms < 1000, `1,000 devices drawn in ${ms.toFixed(0)} ms (bound: 1000 ms)`);
    // Still live: a real device's change reaches its row among the thousand, and only that row is redrawn.
    await page.evaluate(() => {
      (window as unknown as { bulkRow: Element | null }).bulkRow = document.querySelector('tr[data-device="bulk-0"]');
    });
    await devices[0]!.publishAsync('HomeKit/hall-lamp-a1b2c3/MotionSensor/MotionDetected', 'false', { qos: 1 });
    await page.waitForFunction(
      () => document.querySelector('tr[data-device="hall-lamp-a1b2c3"] [data-value="MotionSensor/MotionDetected"]')?.textContent === 'No motion',
      undefined,
      { timeout: 10_000 },
    );
    assert.ok(
      await page.evaluate(() => document.querySelector('tr[data-device="bulk-0"]') === (window as unknown as { bulkRow: Element | null }).bulkRow),
      'the other 999 rows are left as they were',
    );
    await devices[0]!.publishAsync('HomeKit/hall-lamp-a1b2c3/MotionSensor/MotionDetected', 'true', { qos: 1 });
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
    await page.goto(`${s.base}/#/device/sim-lightbulb-3`);
    await page.waitForSelector('#ctl-Lightbulb-0-Brightness');
    await page.waitForSelector('[data-chart] canvas', { timeout: 10_000 }).catch(() => undefined);
    await page.screenshot({ path: join(SCREENSHOTS, 'device-phone.png'), fullPage: true });
    const detail = await measure(page);
    assert.deepEqual(detail, { sideways: false, wrapped: [], wide: [] }, 'device page at 390 px');
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
