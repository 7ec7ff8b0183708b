/**
 * [P-27] With the embedded broker, which forgets every retained config at a restart: a device removed
 * while the hub was stopped (`mqttkit device remove`, the TTL at start) or discovery turned off still
 * reaches Home Assistant as an empty config for each of its topics, so no ghost entity stays. Seen as
 * Home Assistant sees it: after each restart a client connects, subscribes to `homeassistant/#` and
 * announces itself with its birth message (`homeassistant/status` `online`), as Home Assistant does.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { addAdmin, cli, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

const DAY = 86_400_000;

/** Home Assistant on the hub's broker: the retained configs it got, and every empty config (a removal), counted per topic. */
interface HomeAssistant {
  client: MqttClient;
  configs: Map<string, string>;
  emptied: Map<string, number>;
}

describe('Home Assistant discovery with the embedded broker: what went while the hub was stopped is cleared [P-27]', { timeout: 90_000 }, () => {
  const dataDir = tempDataDir();
  let hub: RunningHub | undefined;
  let password = '';
  const clients: MqttClient[] = [];

  before(() => {
    password = addAdmin(dataDir, 'homeassistant');
  });
  after(async () => {
    for (const client of clients) await client.endAsync().catch(() => {});
    await hub?.stop('SIGTERM');
    removeDataDir(dataDir);
  });

  const restart = async (args: string[]) => {
    await hub?.stop('SIGTERM');
    hub = await startHub({ dataDir, args: ['--log-level', 'info', ...args] });
  };

  /** Home Assistant connecting to the hub just started: subscribes to discovery, then sends its birth message. */
  const homeAssistant = async (announce = true): Promise<HomeAssistant> => {
    const client = await connectAdmin(hub!.info.mqtt.address, 'homeassistant', password);
    client.on('error', () => {});
    clients.push(client);
    const ha: HomeAssistant = { client, configs: new Map(), emptied: new Map() };
    client.on('message', (topic, payload) => {
      if (!topic.endsWith('/config')) return;
      if (payload.length > 0) ha.configs.set(topic, payload.toString());
      else {
        ha.configs.delete(topic);
        ha.emptied.set(topic, (ha.emptied.get(topic) ?? 0) + 1);
      }
    });
    await client.subscribeAsync('homeassistant/#', { qos: 1 });
    if (announce) await client.publishAsync('homeassistant/status', 'online', { qos: 0, retain: false });
    return ha;
  };

  const topicsOf = (ha: HomeAssistant, id: string) => [...ha.configs.keys()].filter((topic) => topic.split('/')[2] === id).sort();

  /** Each device's config topics as Home Assistant got them in the first run. */
  const topics = new Map<string, string[]>();

  it('a device removed with `mqttkit device remove` while the hub was stopped: Home Assistant gets an empty config for each of its topics', async () => {
    await restart(['--ha-discovery']);
    const devices: Array<[string, Array<[string, string]>]> = [
      ['keep-1', [['Switch/On', '1']]],
      [
        'gone-1',
        [
          ['Switch/On', '0'],
          ['MotionSensor/MotionDetected', '0'],
          ['TemperatureSensor/CurrentTemperature', '20.5'],
        ],
      ],
      ['ttl-1', [['Lightbulb/On', '1']]],
    ];
    for (const [id, values] of devices) {
      const device = await connectDevice(hub!.info.mqtt.address, id);
      for (const [topic, payload] of values) await device.publishAsync(`HomeKit/${id}/${topic}`, payload, { qos: 1 });
      device.end(true);
    }
    const first = await homeAssistant();
    await eventually(
      () => topicsOf(first, 'keep-1').length === 1 && topicsOf(first, 'gone-1').length === 3 && topicsOf(first, 'ttl-1').length === 1,
      10_000,
      `the configs of the three devices (have: ${[...first.configs.keys()].join(', ')})`,
    );
    for (const [id] of devices) topics.set(id, topicsOf(first, id));
    await hub!.stop('SIGTERM');

    const removed = cli(['device', 'remove', 'gone-1', '--data-dir', dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    await restart(['--ha-discovery']);
    const ha = await homeAssistant();
    await eventually(
      () => topics.get('gone-1')!.every((topic) => ha.emptied.has(topic)),
      10_000,
      `an empty config for each of gone-1's topics (emptied: ${[...ha.emptied.keys()].join(', ') || 'none'})`,
    );
    await eventually(() => topicsOf(ha, 'keep-1').length === 1 && topicsOf(ha, 'ttl-1').length === 1, 10_000, 'the other devices’ configs, as before');
    assert.deepEqual(topicsOf(ha, 'keep-1'), topics.get('keep-1'));
    assert.deepEqual(topicsOf(ha, 'gone-1'), [], 'no config of gone-1 is published again');
    assert.ok(![...ha.emptied.keys()].some((topic) => topic.split('/')[2] !== 'gone-1'), `only gone-1's configs are cleared: ${[...ha.emptied.keys()]}`);
  });

  it('a device the TTL removes at start: Home Assistant gets an empty config for each of its topics', async () => {
    await hub!.stop('SIGTERM');
    // ttl-1 was last heard 8 days of hub time ago (the TTL is 7 days), and the hub was alive until now.
    const db = new Database(join(dataDir, 'mqttkit.db'));
    try {
      const row = db.prepare<[string], { doc: string }>('SELECT doc FROM devices WHERE id = ?').get('ttl-1')!;
      const doc = { ...(JSON.parse(row.doc) as object), lastSeen: Date.now() - 8 * DAY, state: 'offline' };
      db.prepare('UPDATE devices SET doc = ? WHERE id = ?').run(JSON.stringify(doc), 'ttl-1');
      db.prepare("INSERT INTO settings (key, value) VALUES ('hub.aliveAt', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(Date.now()));
    } finally {
      db.close();
    }
    await restart(['--ha-discovery', '--device-ttl', '7d']);
    const ha = await homeAssistant();
    await eventually(
      () => topics.get('ttl-1')!.every((topic) => ha.emptied.has(topic)),
      10_000,
      `an empty config for each of ttl-1's topics (emptied: ${[...ha.emptied.keys()].join(', ') || 'none'})`,
    );
    await eventually(() => topicsOf(ha, 'keep-1').length === 1, 10_000, 'keep-1’s config, as before');
    assert.deepEqual(topicsOf(ha, 'ttl-1'), []);
    assert.ok(!cli(['devices', '--json', '--data-dir', dataDir]).stdout.includes('ttl-1'), 'the TTL removed ttl-1');
  });

  it('a device removed while the hub was stopped that comes back before Home Assistant announces itself keeps its config', async () => {
    for (const id of ['back-1', 'gone-2']) {
      const device = await connectDevice(hub!.info.mqtt.address, id);
      await device.publishAsync(`HomeKit/${id}/Switch/On`, '1', { qos: 1 });
      device.end(true);
    }
    const first = await homeAssistant();
    await eventually(() => topicsOf(first, 'back-1').length === 1 && topicsOf(first, 'gone-2').length === 1, 10_000, 'configs of back-1 and gone-2');
    await hub!.stop('SIGTERM');
    for (const id of ['back-1', 'gone-2']) assert.equal(cli(['device', 'remove', id, '--data-dir', dataDir]).status, 0);
    await restart(['--ha-discovery']);
    const ha = await homeAssistant(false);
    const device = await connectDevice(hub!.info.mqtt.address, 'back-1');
    await device.publishAsync('HomeKit/back-1/Switch/On', '1', { qos: 1 });
    device.end(true);
    await eventually(() => topicsOf(ha, 'back-1').length === 1, 10_000, 'back-1’s config published again');
    await ha.client.publishAsync('homeassistant/status', 'online', { qos: 0, retain: false });
    await eventually(
      () => topicsOf(ha, 'back-1').length === 1 && topicsOf(ha, 'gone-2').length === 0 && ha.emptied.size > 0,
      10_000,
      'back-1’s config, gone-2’s cleared',
    );
    await hub!.stop('SIGTERM');
    assert.deepEqual([...ha.emptied.keys()], topicsOf(first, 'gone-2'), 'only gone-2’s config is cleared');
    assert.deepEqual(topicsOf(ha, 'back-1'), topicsOf(first, 'back-1'));
    assert.equal(cli(['device', 'remove', 'back-1', '--data-dir', dataDir]).status, 0);
    await restart(['--ha-discovery']);
    const last = await homeAssistant(); // takes back-1's leftover, so the next test starts with keep-1 alone
    await eventually(() => last.emptied.size === 1, 10_000, 'back-1’s config cleared');
  });

  it('discovery turned off after it ran: every recorded config is cleared once, then the record is empty', async () => {
    await restart([]);
    const ha = await homeAssistant();
    const keep = topics.get('keep-1')!;
    await eventually(() => keep.every((topic) => ha.emptied.has(topic)), 10_000, `an empty config for keep-1 (emptied: ${[...ha.emptied.keys()]})`);
    // Once more announced: nothing is left to clear.
    await ha.client.publishAsync('homeassistant/status', 'online', { qos: 0, retain: false });
    await hub!.stop('SIGTERM');
    assert.deepEqual(Object.fromEntries(ha.emptied), Object.fromEntries(keep.map((topic) => [topic, 1])), 'each recorded config cleared once, nothing else');
    assert.equal(ha.configs.size, 0, 'no config published with discovery off');

    const db = new Database(join(dataDir, 'mqttkit.db'), { readonly: true });
    try {
      const left = db.prepare("SELECT key, value FROM settings WHERE key LIKE 'homeassistant.discovery.%'").all() as Array<{ key: string; value: string }>;
      assert.deepEqual(
        left.filter(({ value }) => value !== '[]'),
        [],
        'the record of published configs is empty',
      );
    } finally {
      db.close();
    }
  });

  it('a damaged record is named in the log and read as empty; the hub runs and publishes configs as before', async () => {
    const db = new Database(join(dataDir, 'mqttkit.db'));
    try {
      const put = db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
      put.run('homeassistant.discovery.configs.keep-1', 'not json');
      put.run('homeassistant.discovery.leftovers', '["HomeKit/keep-1/Switch/On/set"]');
    } finally {
      db.close();
    }
    await restart(['--ha-discovery']);
    await hub!.printed(/homeassistant\.discovery\.configs\.keep-1 is not a list of discovery config topics/);
    await hub!.printed(/homeassistant\.discovery\.leftovers is not a list of discovery config topics/);
    const ha = await homeAssistant();
    await eventually(() => topicsOf(ha, 'keep-1').length === 1, 10_000, 'keep-1’s config, as before');
    assert.equal(hub!.child.exitCode, null, 'the hub runs');
  });
});
