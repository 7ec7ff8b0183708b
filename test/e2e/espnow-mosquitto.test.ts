/**
 * Issue 16, ESP-NOW with an external broker: `mqttkit espnow pair` gives the gateway's Mosquitto role the
 * peripheral's device ACLs (dynamic security) and `unpair` takes them away again; another device's
 * publish for the peripheral is never delivered, and the peripheral id gets no account (docs/security.md
 * §8, [E-10]). The gateway here is an MQTT.js client answering the hub's pairing commands as
 * mqttkit.espnow.Gateway does; the radio side is test/e2e/espnow.test.ts's. Mosquitto 2.0 checks each
 * delivery against the role (publishClientReceive): a subscription made while paired gets nothing after.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { DynsecClient } from '../../src/broker/mosquitto/dynsec.js';
import { readBrokerCredentials } from '../../src/store/broker-credentials.js';
import { readHubToken } from '../../src/store/runtime-file.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { type RunningMosquitto, startConfiguredMosquitto } from '../helpers/mosquitto.js';
import { cli, cliAsync, connectDevice, subackCode } from '../helpers/mqtt-device.js';
import { requireTool } from '../helpers/system-tools.js';

describe('ESP-NOW pairing with an external broker (Mosquitto)', { timeout: 120_000 }, () => {
  let broker: RunningMosquitto | undefined;
  let hub: RunningHub | undefined;
  const confDir = mkdtempSync(join(tmpdir(), 'mqttkit-mosquitto-conf-'));
  const clients: MqttClient[] = [];
  // Shared with the second test: the broker's address, the hub's data, the gateway, and what an admin saw.
  let url = '';
  let dataDir = '';
  let gateway: MqttClient | undefined;
  let gwPassword = '';
  const seen: string[] = [];
  after(async () => {
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    await broker?.stop();
    rmSync(confDir, { recursive: true, force: true });
  });

  it('pairing gives the gateway the peripheral’s topics at Mosquitto, unpairing takes them away; nobody else gets them', async (t) => {
    const binary = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    if (!binary) return;
    dataDir = tempDataDir();
    broker = await startConfiguredMosquitto(binary, dataDir, confDir);
    url = broker.url;
    hub = await startHub({ dataDir, args: ['--mqtt-url', url] });
    const password = (id: string) => {
      const added = cli(['device', 'add', id, '--json', '--data-dir', dataDir]);
      assert.equal(added.status, 0, added.stderr);
      return (JSON.parse(added.stdout) as { password: string }).password;
    };
    gwPassword = password('gw');
    const otherPassword = password('other');
    const watcher = await connectDevice(url, 'watcher', {
      password: (JSON.parse(cli(['user', 'add', 'watcher', '--admin', '--json', '--data-dir', dataDir]).stdout) as { password: string }).password,
    });
    clients.push(watcher);
    watcher.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await watcher.subscribeAsync('HomeKit/#', { qos: 1 });

    // The gateway: answers espnow_pair / espnow_unpair as the library does.
    const gw = await connectDevice(url, 'gw', { password: gwPassword, reconnectPeriod: 200 });
    gateway = gw;
    clients.push(gw);
    gw.on('error', () => {});
    const online = () => {
      gw.publish('HomeKit/gw/$state', 'online', { qos: 1, retain: true });
      gw.subscribe('cmnd/gw/OTA', { qos: 1 });
    };
    gw.on('connect', online);
    gw.on('message', (_topic, payload) => {
      const [name, peripheral] = payload.toString().split(' ');
      if (name === 'espnow_pair') gw.publish('stat/gw/Log', `espnow: pairing window open for ${peripheral} for 300 s`, { qos: 1 });
      if (name === 'espnow_unpair') gw.publish('stat/gw/Log', `espnow: ${peripheral} unpaired, its key forgotten`, { qos: 1 });
    });
    online();
    await eventually(
      async () =>
        (JSON.parse((await cliAsync(['devices', '--json', '--data-dir', dataDir])).stdout) as Array<{ id: string; state: string }>).some(
          (d) => d.id === 'gw' && d.state === 'online',
        ),
      10_000,
      'the hub sees the gateway',
    );
    assert.equal(await subackCode(gw, 'HomeKit/soil-1/#'), 128, 'not yet paired');

    const paired = await cliAsync(['espnow', 'pair', 'gw', 'soil-1', '--json', '--data-dir', dataDir]);
    assert.equal(paired.status, 0, paired.stderr);
    assert.match((JSON.parse(paired.stdout) as { code: string }).code, /^[0-9a-f]{32}$/);
    await eventually(async () => gw.connected && (await subackCode(gw, 'HomeKit/soil-1/#')) === 1, 10_000, 'the gateway may take soil-1’s writes');
    await eventually(
      async () => {
        await gw.publishAsync('HomeKit/soil-1/TemperatureSensor/CurrentTemperature', '21', { qos: 1 });
        return seen.includes('HomeKit/soil-1/TemperatureSensor/CurrentTemperature 21');
      },
      10_000,
      'the gateway publishes for soil-1',
    );
    // Another device is no gateway of soil-1's; soil-1 itself gets no account.
    const other = await connectDevice(url, 'other', { password: otherPassword });
    clients.push(other);
    assert.equal(await subackCode(other, 'HomeKit/soil-1/#'), 128);
    await other.publishAsync('HomeKit/soil-1/TemperatureSensor/CurrentTemperature', '77', { qos: 1 });
    const refusedAdd = cli(['device', 'add', 'soil-1', '--data-dir', dataDir]);
    assert.equal(refusedAdd.status, 1);
    assert.match(refusedAdd.stderr, /ESP-NOW peripheral of gateway gw/);

    const writes: string[] = [];
    gw.on('message', (topic, payload) => {
      if (topic.startsWith('HomeKit/soil-1/')) writes.push(payload.toString());
    });
    await gw.subscribeAsync('HomeKit/soil-1/+/+/set', { qos: 1 });
    await watcher.publishAsync('HomeKit/soil-1/Switch/On/set', 'while-paired', { qos: 1 });
    await eventually(() => writes.includes('while-paired'), 5000, 'a write for soil-1 reaches its gateway');
    const unpaired = await cliAsync(['espnow', 'unpair', 'soil-1', '--json', '--data-dir', dataDir]);
    assert.equal(unpaired.status, 0, unpaired.stderr);
    await eventually(
      async () => gw.connected && (await subackCode(gw, 'HomeKit/soil-1/Switch/#')) === 128,
      10_000,
      'the rights taken away (a new subscription refused)',
    );
    await gw.publishAsync('HomeKit/soil-1/TemperatureSensor/CurrentTemperature', '66', { qos: 1 });
    await watcher.publishAsync('HomeKit/soil-1/Switch/On/set', 'after-unpair', { qos: 1 });
    await gw.publishAsync('HomeKit/gw/$keepalive', '30', { qos: 1 });
    await eventually(() => seen.includes('HomeKit/gw/$keepalive 30'), 5000, 'the gateway’s own publish after');
    assert.ok(!seen.some((s) => s.endsWith(' 66') || s.endsWith(' 77')), `never delivered: ${JSON.stringify(seen)}`);
    const own: string[] = [];
    gw.on('message', (topic, payload) => {
      if (topic === 'HomeKit/gw/Switch/On/set') own.push(payload.toString());
    });
    await gw.subscribeAsync('HomeKit/gw/+/+/set', { qos: 1 });
    await watcher.publishAsync('HomeKit/gw/Switch/On/set', 'own', { qos: 1 });
    await eventually(() => own.includes('own'), 5000, 'a later write of its own reaches the gateway');
    assert.deepEqual(writes, ['while-paired'], 'the old subscription gets nothing for soil-1 once unpaired');
  });

  it('unpairing while the hub is stopped takes the rights away at Mosquitto too (or changes nothing); removing the gateway ends its login; the hub corrects rights left behind [E-14]', async (t) => {
    if (!hub || !gateway) return void t.skip('needs the first test’s broker and gateway');
    const gw = gateway;
    const speaksFor = async (peripheral: string, value: string) => {
      await gw.publishAsync(`HomeKit/${peripheral}/TemperatureSensor/CurrentTemperature`, value, { qos: 1 });
      await gw.publishAsync('HomeKit/gw/$keepalive', value, { qos: 1 });
      await eventually(() => seen.includes(`HomeKit/gw/$keepalive ${value}`), 5000, `the gateway’s own publish ${value}`);
      return seen.includes(`HomeKit/${peripheral}/TemperatureSensor/CurrentTemperature ${value}`);
    };
    for (const peripheral of ['soil-2', 'soil-3']) {
      const paired = await cliAsync(['espnow', 'pair', 'gw', peripheral, '--json', '--data-dir', dataDir]);
      assert.equal(paired.status, 0, paired.stderr);
    }
    await eventually(() => speaksFor('soil-2', '31'), 10_000, 'the gateway speaks for soil-2');
    await eventually(() => speaksFor('soil-3', '32'), 10_000, 'the gateway speaks for soil-3');
    await hub.stop();

    // Without the broker's address the CLI cannot take the rights away: it says so and changes nothing.
    const blind = await cliAsync(['espnow', 'unpair', 'soil-2', '--data-dir', dataDir]);
    assert.equal(blind.status, 1, blind.stdout);
    assert.match(blind.stderr, /pass --mqtt-url/);
    const unpaired = await cliAsync(['espnow', 'unpair', 'soil-2', '--data-dir', dataDir, '--mqtt-url', url]);
    assert.equal(unpaired.status, 0, unpaired.stderr);
    assert.equal(await speaksFor('soil-2', '41'), false, 'Mosquitto no longer takes the gateway’s publish for soil-2');

    // A store where soil-3's pairing is gone but its rights are not (as an older mqttkit's offline unpair left it).
    const db = new Database(join(dataDir, 'mqttkit.db'));
    db.prepare('DELETE FROM espnow_pairings WHERE peripheral = ?').run('soil-3');
    db.close();
    assert.equal(await speaksFor('soil-3', '42'), true, 'still at Mosquitto');
    hub = await startHub({ dataDir, args: ['--mqtt-url', url] });
    await hub.printed(/Mosquitto's ESP-NOW rights corrected to match the pairings: gw: /, 10_000);
    assert.equal(await speaksFor('soil-3', '43'), false, 'the hub took the rights left behind away');

    // The dashboard removes the gateway (DELETE /api/devices/gw): its Mosquitto login ends with it.
    gw.options.reconnectPeriod = 0;
    const removed = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/devices/gw`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${readHubToken(dataDir)}` },
    });
    assert.equal(removed.status, 200, await removed.text());
    await assert.rejects(connectDevice(url, 'gw', { password: gwPassword }), /Not authorized|Bad username or password/i);
  });

  it('leaves an admin’s own ACLs on a device role alone at each start: no removal, no deny [E-14]', async (t) => {
    if (!hub) return void t.skip('needs the first test’s broker and hub');
    const credentials = readBrokerCredentials(dataDir);
    assert.ok(credentials, 'mosquitto-config wrote the hub’s broker login');
    const dynsec = await DynsecClient.connect(url, credentials.username, credentials.password);
    const acls = async () =>
      (
        (await dynsec.run({ command: 'getRole', rolename: 'mqttkit-device-other' })) as {
          role: { acls: Array<{ acltype: string; topic: string; allow: boolean }> };
        }
      ).role.acls;
    try {
      // `other` never paired anything; its owner lets it read the weather station's topics.
      for (const acltype of ['subscribePattern', 'publishClientReceive'])
        await dynsec.run({ command: 'addRoleACL', rolename: 'mqttkit-device-other', acltype, topic: 'weather/#', allow: true });
      const before = await acls();
      await hub.stop();
      hub = await startHub({ dataDir, args: ['--mqtt-url', url] });
      const afterRestart = await acls();
      for (const acltype of ['subscribePattern', 'publishClientReceive'])
        assert.ok(
          afterRestart.some((a) => a.acltype === acltype && a.topic === 'weather/#' && a.allow),
          `${acltype} weather/# allow survives the start: ${JSON.stringify(afterRestart)}`,
        );
      assert.ok(!afterRestart.some((a) => !a.allow), `no deny was added: ${JSON.stringify(afterRestart)}`);
      assert.equal(afterRestart.length, before.length, 'nothing added or removed');
      assert.doesNotMatch(hub.output(), /rights corrected to match the pairings: other:/);
    } finally {
      await dynsec.close();
    }
  });
});
