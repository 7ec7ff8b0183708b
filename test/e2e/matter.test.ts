/**
 * The Matter bridge (`--matter`, docs/matter.md), driven by matter.js's own controller as Google Home or
 * Apple Home would drive it: a real hub child process, real MQTT devices, commissioning over loopback at
 * a known address with the pairing code the hub's API shows. Values MQTT → Matter (read and subscribed),
 * a Matter command → `HomeKit/<id>/Switch/On/set`, confirm and revert, devices added and removed live,
 * and after a restart the same fabric and endpoint numbers, without commissioning anew.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClientNode } from '@matter/main';
import jsQRModule from 'jsqr';
import type { MqttClient } from 'mqtt';
import { PNG } from 'pngjs';
import { chromiumPath, launchChromium } from '../helpers/chromium.js';
import { runHub } from '../helpers/data-dir.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import {
  bridgedDevice,
  clusterState,
  freeUdpPort,
  type MatterController,
  matterStatus,
  readAttribute,
  startMatterController,
} from '../helpers/matter-controller.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

// jsqr is CommonJS with its function on `default`.
const jsQR = (jsQRModule as unknown as { default: (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null }).default;

describe('Matter bridge (--matter)', { timeout: 180_000 }, () => {
  let hub: RunningHub;
  let controller: MatterController;
  let peer: ClientNode;
  let matterPort: number;
  const dataDir = tempDataDir();
  const controllerDir = mkdtempSync(join(tmpdir(), 'mqttkit-matter-controller-'));
  const devices = new Map<string, MqttClient>();
  /** `/set` messages the devices received, in order: `topic payload`. */
  const sets: string[] = [];

  const start = () => startHub({ dataDir, args: ['--matter', '--matter-port', String(matterPort), '--confirm-timeout', '1500ms', '--log-level', 'warn'] });

  async function device(id: string, values: Array<[string, string]>): Promise<MqttClient> {
    let client = devices.get(id);
    if (!client) {
      client = await connectDevice(hub.info.mqtt.address, id);
      client.on('error', () => {});
      client.on('message', (topic, payload) => sets.push(`${topic} ${payload.toString()}`));
      await client.subscribeAsync(`HomeKit/${id}/+/+/set`, { qos: 1 });
      devices.set(id, client);
    }
    for (const [topic, payload] of values) await client.publishAsync(`HomeKit/${id}/${topic}`, payload, { qos: 1, retain: topic.startsWith('$') });
    return client;
  }

  const endpointOf = (id: string, cluster: string) => {
    const found = bridgedDevice(peer, id);
    return found?.children.find((e) => clusterState(e, cluster) !== undefined);
  };

  before(async () => {
    matterPort = await freeUdpPort();
    hub = await start();
    controller = await startMatterController(controllerDir);
  });

  after(async () => {
    for (const client of devices.values()) await client.endAsync().catch(() => {});
    await controller?.close().catch(() => {});
    await hub?.stop('SIGTERM');
    removeDataDir(dataDir);
    rmSync(controllerDir, { recursive: true, force: true });
  });

  it('shows the manual pairing code and the MT: QR payload; the passcode file and storage are owner-only', async () => {
    const status = await matterStatus(dataDir, hub.info.httpPort!);
    assert.equal(status.enabled, true);
    assert.match(status.manualCode!, /^\d{11}$/);
    assert.match(status.qrPayload!, /^MT:[0-9A-Z.-]+$/);
    assert.equal(status.port, matterPort);
    assert.equal(status.commissioned, false);
    assert.match(status.qrSvg!, /^<svg/);
    assert.match(hub.output(), new RegExp(`Matter pairing code: ${status.manualCode}`), 'the banner shows the pairing code');
    assert.equal(statSync(join(dataDir, 'matter')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'matter', 'pairing.json')).mode & 0o777, 0o600);
    const { passcode } = JSON.parse(readFileSync(join(dataDir, 'matter', 'pairing.json'), 'utf8')) as { passcode: number };
    assert.doesNotMatch(hub.output(), new RegExp(String(passcode)), 'the passcode is never logged');
  });

  it('is commissioned by a Matter controller with the pairing code and shows a temperature the device published', async () => {
    await device('m-sensor', [
      ['$name', 'Hall sensor'],
      ['TemperatureSensor/CurrentTemperature', '21.5'],
    ]);
    await device('m-plug', [['Switch/On', '0']]);
    const status = await matterStatus(dataDir, hub.info.httpPort!);
    peer = await controller.commission(matterPort, status.manualCode!);
    const temperature = await eventually(() => endpointOf('m-sensor', 'temperatureMeasurement'), 15_000, 'the temperature endpoint');
    await eventually(() => clusterState(temperature, 'temperatureMeasurement')?.measuredValue === 2150, 10_000, 'measuredValue 2150 (21.5 °C)');
    const node = bridgedDevice(peer, 'm-sensor')!.node;
    assert.equal(clusterState(node, 'bridgedDeviceBasicInformation')?.nodeLabel, 'Hall sensor');
    assert.equal(clusterState(node, 'bridgedDeviceBasicInformation')?.reachable, true);
    const after = await matterStatus(dataDir, hub.info.httpPort!);
    assert.equal(after.commissioned, true);
    assert.equal(after.fabrics?.length, 1);
  });

  it('refuses the pairing code to anyone else once a controller has added the bridge (no open commissioning window)', async () => {
    const { Seconds } = await import('@matter/main');
    const status = await matterStatus(dataDir, hub.info.httpPort!);
    const stranger = await controller.node.peers.forDescriptor({ addresses: [{ type: 'udp', ip: '127.0.0.1', port: matterPort }] });
    await assert.rejects(stranger.commission({ pairingCode: status.manualCode!, timeout: Seconds(5) }));
    await stranger.delete().catch(() => {});
    assert.equal((await matterStatus(dataDir, hub.info.httpPort!)).fabrics?.length, 1);
  });

  it('reports a new MQTT value to the subscribed controller', async () => {
    const temperature = endpointOf('m-sensor', 'temperatureMeasurement')!;
    const seen: unknown[] = [];
    const events = temperature.events as unknown as Record<string, Record<string, { on(f: (v: unknown) => void): void }>>;
    events.temperatureMeasurement!.measuredValue$Changed!.on((v) => seen.push(v));
    await device('m-sensor', [['TemperatureSensor/CurrentTemperature', '-3.5']]);
    await eventually(() => seen.includes(-350), 10_000, 'a report of -350 (-3.5 °C)');
  });

  it('turns a Matter OnOff command into HomeKit/<id>/Switch/On/set 1, kept when the device confirms, reverted when it does not', async () => {
    const plug = await eventually(() => endpointOf('m-plug', 'onOff'), 10_000, 'the plug endpoint');
    const commands = (plug.commands as unknown as Record<string, Record<string, () => Promise<void>>>).onOff!;
    await commands.on!();
    await eventually(() => sets.includes('HomeKit/m-plug/Switch/On/set 1'), 5000, 'HomeKit/m-plug/Switch/On/set 1');
    await device('m-plug', [['Switch/On', '1']]); // the device confirms
    await new Promise((r) => setTimeout(r, 1800)); // past --confirm-timeout: a confirmed write stays
    assert.equal(clusterState(plug, 'onOff')?.onOff, true);

    await commands.off!(); // this one the device never confirms
    await eventually(() => sets.includes('HomeKit/m-plug/Switch/On/set 0'), 5000, 'HomeKit/m-plug/Switch/On/set 0');
    await eventually(() => clusterState(plug, 'onOff')?.onOff === false, 5000, 'Off shown while the write awaits its confirmation');
    await eventually(() => clusterState(plug, 'onOff')?.onOff === true, 10_000, 'the unconfirmed write reverted to On');
  });

  it('refuses a command for an offline device (no /set is published) and shows it unreachable', async () => {
    const plug = endpointOf('m-plug', 'onOff')!;
    await device('m-plug', [['$state', 'offline']]);
    const node = bridgedDevice(peer, 'm-plug')!.node;
    await eventually(() => clusterState(node, 'bridgedDeviceBasicInformation')?.reachable === false, 10_000, 'reachable false');
    const before = sets.length;
    const commands = (plug.commands as unknown as Record<string, Record<string, () => Promise<void>>>).onOff!;
    await assert.rejects(commands.off!());
    assert.equal(sets.slice(before).length, 0);
    await device('m-plug', [['$state', 'online']]);
    await eventually(() => clusterState(node, 'bridgedDeviceBasicInformation')?.reachable === true, 10_000, 'reachable again');
  });

  it('maps every supported service (docs/matter.md table) and turns lock, cover and level commands into /set', async () => {
    await device('m-multi', [
      ['HumiditySensor/CurrentRelativeHumidity', '40'],
      ['MotionSensor/MotionDetected', 'true'],
      ['Lightbulb/On', '1'],
      ['Lightbulb/Brightness', '50'],
      ['Lightbulb/ColorTemperature', '300'],
      ['Outlet/On', '0'],
      ['WindowCovering/CurrentPosition', '30'],
      ['WindowCovering/TargetPosition', '30'],
      ['LockMechanism/LockCurrentState', '1'],
      ['LockMechanism/LockTargetState', '1'],
      ['Thermostat/CurrentTemperature', '19'],
      ['Thermostat/TargetTemperature', '21'],
      ['Thermostat/TargetHeatingCoolingState', '1'],
    ]);
    const at = (cluster: string) => eventually(() => endpointOf('m-multi', cluster), 15_000, `the m-multi ${cluster} endpoint`);
    const expect = async (cluster: string, attribute: string, value: unknown) => {
      const endpoint = await at(cluster);
      await eventually(
        () => JSON.stringify(clusterState(endpoint, cluster)?.[attribute]) === JSON.stringify(value),
        10_000,
        `${cluster}.${attribute} = ${JSON.stringify(value)}`,
      );
    };
    await expect('relativeHumidityMeasurement', 'measuredValue', 4000);
    await expect('occupancySensing', 'occupancy', { occupied: true });
    await expect('levelControl', 'currentLevel', 127);
    await expect('colorControl', 'colorTemperatureMireds', 300);
    await expect('windowCovering', 'currentPositionLiftPercent100ths', 7000);
    await expect('doorLock', 'lockState', 1);
    await expect('thermostat', 'localTemperature', 1900);
    await expect('thermostat', 'occupiedHeatingSetpoint', 2100);
    // A commands object answers any name (even `then`): never returned from an async function.
    const commandsOf = (endpoint: Awaited<ReturnType<typeof at>>, cluster: string) =>
      (endpoint.commands as unknown as Record<string, Record<string, (request?: unknown) => Promise<void>>>)[cluster]!;
    const lock = await at('doorLock');
    const cover = await at('windowCovering');
    const light = await at('levelControl');
    await commandsOf(lock, 'doorLock').unlockDoor!({});
    await commandsOf(cover, 'windowCovering').goToLiftPercentage!({ liftPercent100thsValue: 2500 });
    await commandsOf(light, 'levelControl').moveToLevel!({ level: 254, transitionTime: 0, optionsMask: {}, optionsOverride: {} });
    for (const expected of ['LockMechanism/LockTargetState/set 0', 'WindowCovering/TargetPosition/set 75', 'Lightbulb/Brightness/set 100']) {
      await eventually(() => sets.includes(`HomeKit/m-multi/${expected}`), 5000, `HomeKit/m-multi/${expected}`);
    }
  });

  it('adds a device that appears live as a new endpoint, and takes a removed one away', async () => {
    await device('m-contact', [['ContactSensor/ContactSensorState', '0']]);
    const contact = await eventually(() => endpointOf('m-contact', 'booleanState'), 15_000, 'the new contact sensor endpoint');
    await eventually(() => clusterState(contact, 'booleanState')?.stateValue === true, 10_000, 'stateValue true (contact)');
    await device('m-contact', [['$state', 'removed']]);
    await eventually(() => bridgedDevice(peer, 'm-contact') === undefined, 15_000, 'the removed device gone from the controller');
  });

  it('after a restart, the controller reads again without commissioning anew, at the same endpoint numbers', async () => {
    const numbers = () =>
      ['m-sensor', 'm-plug'].map((id) => [
        bridgedDevice(peer, id)?.node.number,
        endpointOf(id, id === 'm-sensor' ? 'temperatureMeasurement' : 'onOff')?.number,
      ]);
    const before = numbers();
    for (const client of devices.values()) await client.endAsync().catch(() => {});
    devices.clear();
    await hub.stop('SIGTERM');
    hub = await start();
    await device('m-sensor', [['TemperatureSensor/CurrentTemperature', '23']]);
    const temperature = endpointOf('m-sensor', 'temperatureMeasurement')!;
    // The controller's subscription ended with the old process; it reads (its session resumes, no new commissioning).
    await eventually(
      async () => (await readAttribute(peer, temperature.number!, 'temperatureMeasurement', 'measuredValue')) === 2300,
      30_000,
      'measuredValue 2300 read after the restart',
    );
    assert.deepEqual(numbers(), before);
    const status = await matterStatus(dataDir, hub.info.httpPort!);
    assert.equal(status.fabrics?.length, 1, 'the same one fabric: no new commissioning');
  });

  it('shows the Matter code, a QR code of the MT: payload and the fabric on the dashboard, where an admin removes it', async (t) => {
    const executable = chromiumPath(t);
    if (!executable) return;
    const status = await matterStatus(dataDir, hub.info.httpPort!);
    const base = `http://127.0.0.1:${hub.info.httpPort}`;
    const browser = await launchChromium(executable);
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
      await page.goto(base);
      await page.waitForSelector('text=Create the admin account');
      await page.fill('#password', 'a long dashboard password');
      await page.click('#submit');
      await page.waitForSelector('table#devices');
      await page.goto(`${base}/#/pairing`);
      await page.waitForSelector('#matter-code');
      assert.equal(await page.textContent('#matter-code'), status.manualCode);
      assert.ok(await page.textContent('#setup-code'), 'the HomeKit code beside it');
      const png = PNG.sync.read(await page.locator('#matter-qr').screenshot());
      assert.equal(jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data, status.qrPayload);
      const fabric = String(status.fabrics![0]!.fabricIndex);
      await page.click(`[data-remove-fabric="${fabric}"]`);
      await page.click('[data-confirm="yes"]');
      await eventually(async () => (await matterStatus(dataDir, hub.info.httpPort!)).fabrics?.length === 0, 20_000, 'the fabric removed');
      await page.waitForSelector('text=No controller has added the bridge yet.');
    } finally {
      await browser.close();
    }
  });

  it("removes a controller's fabric for the dashboard or CLI, never for an API token ([M-8])", async () => {
    const url = `http://127.0.0.1:${hub.info.httpPort}/api/matter/fabrics`;
    const { fabrics } = await matterStatus(dataDir, hub.info.httpPort!);
    // With Chromium the dashboard removed the fabric already: commission again to have one to remove.
    if (fabrics!.length === 0) peer = await controller.commission(matterPort, (await matterStatus(dataDir, hub.info.httpPort!)).manualCode!);
    const index = (await matterStatus(dataDir, hub.info.httpPort!)).fabrics![0]!.fabricIndex;
    const apiToken = (JSON.parse(cli(['token', 'create', 'matter-script', '--json', '--data-dir', dataDir]).stdout) as { token: string }).token;
    const asToken = await fetch(`${url}/${index}`, { method: 'DELETE', headers: { authorization: `Bearer ${apiToken}` } });
    assert.equal(asToken.status, 403);
    const local = readFileSync(join(dataDir, 'hub-token'), 'utf8').trim();
    assert.equal((await fetch(`${url}/99`, { method: 'DELETE', headers: { authorization: `Bearer ${local}` } })).status, 404);
    assert.equal((await fetch(`${url}/0`, { method: 'DELETE', headers: { authorization: `Bearer ${local}` } })).status, 400);
    const removed = await fetch(`${url}/${index}`, { method: 'DELETE', headers: { authorization: `Bearer ${local}` } });
    assert.equal(removed.status, 200);
    const after = await matterStatus(dataDir, hub.info.httpPort!);
    assert.deepEqual(after.fabrics, []);
    assert.equal(after.commissioned, false);
  });

  it('refuses to start on a damaged Matter file, naming it, and leaves it untouched ([M-7])', async () => {
    await hub.stop('SIGTERM');
    const store = join(dataDir, 'matter', 'mqttkit');
    const name = readdirSync(store).find((f) => f.startsWith('root.'))!;
    const file = join(store, name);
    writeFileSync(file, '{"damaged');
    const run = await runHub(dataDir, ['--matter', '--matter-port', String(matterPort)]);
    assert.equal(run.started, false, run.output);
    assert.notEqual(run.code, 0);
    assert.ok(run.output.includes(`${name} is damaged`), run.output);
    assert.equal(readFileSync(file, 'utf8'), '{"damaged');
  });
});
