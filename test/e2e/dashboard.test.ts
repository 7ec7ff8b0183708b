/// <reference lib="dom" />
/**
 * The dashboard in real Chromium (Debian's, driven by playwright-core): first-run account, live device
 * table, a switch toggled from the page, the pairing QR code, an OTA update with progress, a chart.
 * Writes the screenshots the README links to.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import jsQRModule from 'jsqr';
import type { MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { chromiumPath, launchChromium } from '../helpers/chromium.js';
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';
import { deviceRoot, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';

// jsqr is CommonJS with its function on `default`.
const jsQR = (jsQRModule as unknown as { default: (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null }).default;
// `npm run screenshots` refreshes the README's pictures; ordinary runs write them to a temp folder.
const SCREENSHOTS =
  process.env.MQTTKIT_SCREENSHOTS === 'docs' ? fileURLToPath(new URL('../../../docs/screenshots', import.meta.url)) : join(tmpdir(), 'mqttkit-screenshots');

describe('dashboard in Chromium', { timeout: 240_000 }, () => {
  let hub: RunningHub | undefined;
  let browser: Browser | undefined;
  let sim: ChildProcess | undefined;
  let probe: RunningDevice | undefined;
  let admin: MqttClient | undefined;
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-dash-'));

  after(async () => {
    await browser?.close();
    sim?.kill('SIGKILL');
    await probe?.kill();
    admin?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    if (probe) removeRoot(probe.root);
    rmSync(work, { recursive: true, force: true });
  });

  it('takes a new user from the first visit to a live, controllable fleet', async (t) => {
    const executable = chromiumPath(t);
    const python = requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    if (!executable || !python) return;
    hub = await startHub();
    const base = `http://127.0.0.1:${hub.info.httpPort}`;
    admin = await connectAdmin(hub.info.mqtt.address, 'watcher', addAdmin(hub.dataDir, 'watcher'));
    const sets: string[] = [];
    await admin.subscribeAsync('HomeKit/+/+/+/set', { qos: 1 });
    admin.on('message', (topic, payload) => sets.push(`${topic} ${payload.toString()}`));

    browser = await launchChromium(executable);
    const page: Page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    const consoleErrors: string[] = [];
    page.on('pageerror', (error) => consoleErrors.push(error.message));

    // 1. First visit: create the admin account (there is no default password), and land on the devices table.
    await page.goto(base);
    await page.waitForSelector('text=Create the admin account');
    await page.fill('#password', 'a long dashboard password');
    await page.click('#submit');
    await page.waitForSelector('table#devices');
    // Log out and in again, as a returning user.
    await page.click('#logout');
    await page.waitForSelector('text=Log in');
    await page.fill('#username', 'admin');
    await page.fill('#password', 'not the password');
    await page.click('#submit');
    await page.waitForSelector('text=wrong username or password');
    await page.fill('#password', 'a long dashboard password');
    await page.click('#submit');
    await page.waitForSelector('table#devices');

    // Three simulated devices appear in the open table, without a reload.
    sim = spawn(
      process.execPath,
      [BIN, 'simulate', '--devices', '3', '--kinds', 'switch,temperature,lightbulb', '--interval', '1', '--data-dir', hub.dataDir],
      { stdio: 'ignore' },
    );
    await page.waitForFunction(() => document.querySelectorAll('table#devices tr[data-device]').length === 3, undefined, { timeout: 20_000 });
    const ids = await page.$$eval('tr[data-device]', (rows) => rows.map((r) => r.getAttribute('data-device')));
    assert.deepEqual(ids.sort(), ['sim-lightbulb-3', 'sim-switch-1', 'sim-temperature-2']);
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.waitForTimeout(1500); // a reading or two, so the table shows values
    await page.screenshot({ path: join(SCREENSHOTS, 'devices.png') });

    // Toggle the switch from its page: the device gets /set on MQTT and confirms; the page shows it.
    await page.click('a[href="#/device/sim-switch-1"]');
    const toggle = page.locator('#ctl-Switch-0-On');
    await toggle.waitFor();
    assert.equal(await toggle.isChecked(), false);
    await toggle.check();
    await eventually(() => sets.includes('HomeKit/sim-switch-1/Switch/On/set 1'), 5000, 'the /set message');
    await page.waitForFunction(() => (document.querySelector('#ctl-Switch-0-On') as HTMLInputElement | null)?.checked === true);
    await eventually(
      async () => (await (await page.request.get(`${base}/api/devices/sim-switch-1`)).json()).services[0].characteristics[0].value === true,
      5000,
      'the confirmed value',
    );

    // 2. Pairing: the QR code decodes to the hub's setup URI, and the setup code is shown.
    await page.goto(`${base}/#/pairing`);
    const qr = page.locator('.qr').first();
    await qr.waitFor();
    assert.equal(await page.textContent('#setup-code'), '031-45-154');
    const png = PNG.sync.read(await qr.screenshot());
    const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
    assert.ok(decoded, 'the QR code decodes');
    assert.equal(decoded.data, hub.refresh().bridges[0]!.setupURI);
    assert.match(decoded.data, /^X-HM:\/\//);

    // 5. History chart: 100 temperature values, then the device page draws the chart.
    const thermo = await connectDevice(hub.info.mqtt.address, 'chart-thermo');
    await thermo.publishAsync('HomeKit/chart-thermo/$name', 'Kitchen', { qos: 1, retain: true });
    for (let i = 0; i < 100; i++)
      await thermo.publishAsync('HomeKit/chart-thermo/TemperatureSensor/CurrentTemperature', (20 + Math.sin(i / 8) * 3).toFixed(1), { qos: 1 });
    await new Promise((r) => setTimeout(r, 1500)); // history is written once a second
    await page.goto(`${base}/#/device/chart-thermo`);
    await page.waitForSelector('[data-chart="TemperatureSensor/CurrentTemperature"] canvas', { timeout: 10_000 });
    const drawn = await page.$eval('[data-chart="TemperatureSensor/CurrentTemperature"] canvas', (c) => (c as HTMLCanvasElement).width > 100);
    assert.ok(drawn, 'the chart canvas is drawn');
    await page.screenshot({ path: join(SCREENSHOTS, 'device.png'), fullPage: true });
    thermo.end(true);

    // 3. OTA from the page: a CPython device, a file picked in the form, progress, then "done".
    probe = runDevice(python, PROBE, deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: 'dash-probe', backoff_min: 0.2 }));
    await probe.waitFor((e) => e.status === 'broker ok', 15_000, 'the probe to connect');
    await page.goto(`${base}/#/ota`);
    await page.waitForSelector('#ota-device option[value="dash-probe"]', { state: 'attached' });
    await page.selectOption('#ota-device', 'dash-probe');
    const upload = join(work, 'hello.py');
    writeFileSync(upload, 'print("hello from the dashboard")\n');
    await page.setInputFiles('#ota-files', upload);
    await page.click('#ota-start');
    await page.waitForSelector('tr[data-job][data-state="running"], tr[data-job][data-state="succeeded"]', { timeout: 15_000 });
    await page.waitForSelector('tr[data-job][data-state="succeeded"] .job-state:text("done")', { timeout: 60_000 });
    await page.screenshot({ path: join(SCREENSHOTS, 'ota.png') });

    // Phone-sized screens get the same pages.
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(`${base}/#/devices`);
    await page.waitForSelector('tr[data-device="sim-switch-1"]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
    assert.ok(overflow, 'no horizontal scrolling on a phone');
    assert.deepEqual(consoleErrors, [], 'no script errors in the page');
  });
});

/**
 * Actions on the dashboard: a failing action says why next to the control (never in a browser dialog,
 * which blocks the page and its live updates), a device's log lines arrive over the live event stream
 * (no polling), and an OTA job that waits can be cancelled from its line.
 */
describe('dashboard actions in Chromium', { timeout: 180_000 }, () => {
  let hub: RunningHub | undefined;
  let browser: Browser | undefined;
  let lamp: MqttClient | undefined;
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-dash-actions-'));
  /** Browser dialogs (alert, confirm, prompt) the page opened: there must be none. */
  const dialogs: string[] = [];
  /** Every URL the page asked for. */
  const requests: string[] = [];
  let ready: Promise<{ page: Page; base: string } | undefined> | undefined;

  after(async () => {
    await browser?.close();
    lamp?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    rmSync(work, { recursive: true, force: true });
  });

  /** One hub, one logged-in page and one device (`dash-lamp`, a switch) for all the tests below. */
  const session = (t: TestContext) =>
    (ready ??= (async () => {
      const executable = chromiumPath(t);
      if (!executable) return undefined;
      hub = await startHub();
      const base = `http://127.0.0.1:${hub.info.httpPort}`;
      lamp = await connectDevice(hub.info.mqtt.address, 'dash-lamp');
      lamp.on('error', () => {});
      await lamp.publishAsync('HomeKit/dash-lamp/$name', 'Desk lamp', { qos: 1, retain: true });
      await lamp.publishAsync('HomeKit/dash-lamp/Switch/On', '0', { qos: 1 });
      browser = await launchChromium(executable);
      const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
      page.on('dialog', (dialog) => {
        dialogs.push(`${dialog.type()}: ${dialog.message()}`);
        void dialog.dismiss().catch(() => {});
      });
      page.on('request', (request) => requests.push(request.url()));
      await page.goto(base);
      await page.waitForSelector('text=Create the admin account');
      await page.fill('#password', 'a long dashboard password');
      await page.click('#submit');
      await page.waitForSelector('tr[data-device="dash-lamp"]');
      return { page, base };
    })());

  it("shows a device's log line as it is published, from the live stream (no polling)", async (t) => {
    const s = await session(t);
    if (!s) return;
    await s.page.goto(`${s.base}/#/device/dash-lamp`);
    await s.page.locator('#ctl-Switch-0-On').waitFor();
    const from = requests.length;
    await lamp!.publishAsync('stat/dash-lamp/Log', 'boot: lamp ready, heap 41234 free', { qos: 1 });
    await s.page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('boot: lamp ready, heap 41234 free'), undefined, {
      timeout: 10_000,
    });
    // Long enough for the old 2 s poll to have asked at least twice more.
    await s.page.waitForTimeout(4500);
    const polls = requests.slice(from).filter((url) => /\/api\/devices\/[^/]+\/logs/.test(url));
    assert.deepEqual(polls, [], 'the page asks for no log lines: they come over /api/events');
    // A second line comes the same way, after the first.
    await lamp!.publishAsync('stat/dash-lamp/Log', 'wifi: rssi -61', { qos: 1 });
    await s.page.waitForFunction(() => /heap 41234 free\n.*wifi: rssi -61/.test(document.querySelector('#log')?.textContent ?? ''), undefined, {
      timeout: 10_000,
    });
    assert.deepEqual(dialogs, []);
  });

  it('shows a refused write next to its control, with no dialog', async (t) => {
    const s = await session(t);
    if (!s) return;
    // The lamp goes away: the hub refuses writes to it (409, offline). [P-14]
    lamp!.end(true);
    await eventually(
      async () => (await (await s.page.request.get(`${s.base}/api/devices/dash-lamp`)).json()).state === 'offline',
      10_000,
      'the lamp to be offline',
    );
    await s.page.goto(`${s.base}/#/devices`);
    await s.page.goto(`${s.base}/#/device/dash-lamp`);
    await s.page.waitForSelector('h1 [data-state="offline"]');
    await s.page.locator('#ctl-Switch-0-On').check();
    const error = s.page.locator('[data-error-for="ctl-Switch-0-On"][role="alert"]');
    await error.waitFor({ timeout: 10_000 });
    assert.match((await error.textContent()) ?? '', /offline/);
    assert.equal(await s.page.locator('#ctl-Switch-0-On').isChecked(), false, 'the switch shows the value the device has, not the refused one');
    assert.deepEqual(dialogs, [], 'no browser dialog');
  });

  it('cancels a waiting OTA job from its line, with an inline confirmation and answer', async (t) => {
    const s = await session(t);
    if (!s) return;
    lamp!.end(true); // offline: its job waits in the queue
    await eventually(
      async () => (await (await s.page.request.get(`${s.base}/api/devices/dash-lamp`)).json()).state === 'offline',
      10_000,
      'the lamp to be offline',
    );
    await s.page.goto(`${s.base}/#/ota`);
    await s.page.waitForSelector('#ota-device option[value="dash-lamp"]', { state: 'attached' });
    await s.page.selectOption('#ota-device', 'dash-lamp');
    const file = join(work, 'main.py');
    writeFileSync(file, 'print("lamp")\n');
    await s.page.setInputFiles('#ota-files', file);
    await s.page.click('#ota-start');
    const job = s.page.locator('tr[data-job][data-state="queued"]').first();
    await job.waitFor({ timeout: 10_000 });
    const id = Number(await job.getAttribute('data-job'));
    // Asked first, inline: "Keep it" leaves the job queued.
    await s.page.click(`[data-cancel="${id}"]`, { timeout: 10_000 });
    await s.page.click(`tr[data-job="${id}"] [data-confirm="no"]`);
    assert.equal(await s.page.getAttribute(`tr[data-job="${id}"]`, 'data-state'), 'queued');
    await s.page.click(`[data-cancel="${id}"]`);
    await s.page.click(`tr[data-job="${id}"] [data-confirm="yes"]`);
    await s.page.waitForSelector(`tr[data-job="${id}"][data-state="cancelled"]`, { timeout: 10_000 });
    await s.page.waitForFunction((n) => /cancelled/.test(document.querySelector(`[data-job-message="${n}"]`)?.textContent ?? ''), id, { timeout: 10_000 });
    const jobs = (await (await s.page.request.get(`${s.base}/api/ota/jobs`)).json()) as Array<{ id: number; state: string; message: string }>;
    const ended = jobs.find((j) => j.id === id);
    assert.equal(ended?.state, 'cancelled');
    assert.match(ended?.message ?? '', /cancelled by admin/);
    assert.equal(await s.page.locator(`[data-cancel="${id}"]`).isVisible(), false, 'an ended job has no Cancel button');
    assert.deepEqual(dialogs, [], 'no browser dialog');
  });
});
