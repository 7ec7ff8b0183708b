/// <reference lib="dom" />
/**
 * Issue 16: ESP-NOW pairing from the dashboard, in real Chromium: the ESP-NOW page pairs a peripheral
 * with an online gateway (the one-time code shown once, with the file to copy over USB), names the
 * problem when the gateway is not there, lists the pairing and unpairs it after an in-place
 * confirmation; axe-core finds nothing serious. The gateway is an MQTT.js client answering the hub's
 * pairing commands as mqttkit.espnow.Gateway does.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { chromiumPath, launchChromium } from '../helpers/chromium.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

async function axeProblems(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const w = window as unknown as { axe: { run: (c: Document, o: object) => Promise<{ violations: Array<{ id: string; impact: string }> }> } };
    return (await w.axe.run(document, { resultTypes: ['violations'] })).violations.map((v) => ({ id: v.id, impact: v.impact }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}`);
}

describe('the dashboard pairs and unpairs ESP-NOW peripherals', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  let browser: Browser | undefined;
  let gw: MqttClient | undefined;
  after(async () => {
    await browser?.close();
    gw?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('pairs with a one-time code shown once, names a missing gateway, unpairs after confirming', async (t) => {
    const executable = chromiumPath(t);
    if (!executable) return;
    hub = await startHub();
    const gateway = await connectDevice(hub.info.mqtt.address, 'garden-gw');
    gw = gateway;
    gateway.on('error', () => {});
    gateway.on('message', (_topic, payload) => {
      const [name, peripheral] = payload.toString().split(' ');
      if (name === 'espnow_pair') gateway.publish('stat/garden-gw/Log', `espnow: pairing window open for ${peripheral} for 300 s`, { qos: 1 });
      if (name === 'espnow_unpair') gateway.publish('stat/garden-gw/Log', `espnow: ${peripheral} unpaired, its key forgotten`, { qos: 1 });
    });
    await gateway.subscribeAsync('cmnd/garden-gw/OTA', { qos: 1 });
    await gateway.publishAsync('HomeKit/garden-gw/$state', 'online', { qos: 1, retain: true });
    await eventually(
      async () =>
        (JSON.parse((await cliAsync(['devices', '--json', '--data-dir', hub!.dataDir])).stdout) as Array<{ id: string; state: string }>).some(
          (d) => d.id === 'garden-gw' && d.state === 'online',
        ),
      10_000,
      'the gateway online',
    );

    browser = await launchChromium(executable);
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('dialog', (dialog) => {
      errors.push(`a browser dialog: ${dialog.message()}`);
      void dialog.dismiss().catch(() => {});
    });
    const base = `http://127.0.0.1:${hub.info.httpPort}`;
    await page.goto(base);
    await page.waitForSelector('text=Create the admin account');
    await page.fill('#password', 'a long dashboard password');
    await page.click('#submit');
    await page.waitForSelector('#nav:not([hidden])');
    await page.click('#nav >> text=ESP-NOW');
    await page.waitForSelector('text=No ESP-NOW peripherals yet.');

    // A gateway the hub has not seen: the reason, where the form is.
    await page.fill('#espnow-gateway', 'nobody-gw');
    await page.fill('#espnow-peripheral', 'soil-1');
    await page.click('#espnow-pair');
    await page.waitForSelector('#espnow-pair-message.error');
    assert.match((await page.textContent('#espnow-pair-message')) ?? '', /no device account nobody-gw/);

    await page.fill('#espnow-gateway', 'garden-gw');
    await page.fill('#espnow-peripheral', 'soil-1');
    await page.click('#espnow-pair');
    await page.waitForSelector('#espnow-code');
    assert.match((await page.textContent('#espnow-code')) ?? '', /^\{"code":"[0-9a-f]{32}"\}$/);
    assert.equal(await page.getAttribute('#espnow-pair-file', 'download'), 'espnow_pair.json');
    await page.waitForSelector('[data-unpair="soil-1"]');
    assert.match((await page.textContent('tbody')) ?? '', /soil-1\s*garden-gw/);
    assert.deepEqual(await axeProblems(page), []);

    await page.click('[data-unpair="soil-1"]');
    await page.click('.ask button:text-is("Unpair")');
    await page.waitForSelector('text=No ESP-NOW peripherals yet.');
    const listed = JSON.parse((await cliAsync(['espnow', 'list', '--json', '--data-dir', hub.dataDir])).stdout) as unknown[];
    assert.deepEqual(listed, []);
    assert.deepEqual(errors, [], 'no script errors or browser dialogs');
  });
});
