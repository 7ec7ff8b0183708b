/**
 * [P-27] Discovery configs left retained by an earlier run: a device removed while the hub was
 * stopped, a prefix changed, discovery turned off. A real Mosquitto keeps retained messages across the
 * hub's restarts (as a user's broker does); Home Assistant's view is what a client subscribing to
 * `<prefix>/#` gets retained. Configs of other integrations under the same prefix are never touched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { type RunningMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { cli } from '../helpers/mqtt-device.js';
import { findTool, requireTool } from '../helpers/system-tools.js';

const MOSQUITTO = ['mosquitto', '/usr/sbin/mosquitto'];

async function connect(url: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: `t-${randomBytes(4).toString('hex')}` });
  client.on('error', () => {});
  return client;
}

/** What the broker retains under `prefix` (topic → payload), as a Home Assistant starting now would get it. */
async function retained(url: string, prefix: string): Promise<Map<string, string>> {
  const client = await connect(url);
  const seen = new Map<string, string>();
  const nonce = randomBytes(6).toString('hex');
  let back = false;
  client.on('message', (topic, payload, packet) => {
    if (topic === `probe/${nonce}`) back = true;
    else if (packet.retain && payload.length > 0) seen.set(topic, payload.toString());
  });
  await client.subscribeAsync(`${prefix}/#`, { qos: 1 });
  await client.subscribeAsync(`probe/${nonce}`, { qos: 1 });
  await client.publishAsync(`probe/${nonce}`, 'x', { qos: 1 });
  await eventually(() => back, 10_000, 'the probe back after the retained configs');
  await client.endAsync();
  return seen;
}

/** The devices that have configs of the hub's (unique_id `mqttkit:<id>:…`) among `configs`. */
const nodes = (configs: Map<string, string>) => {
  const ids = new Set<string>();
  for (const [topic, text] of configs) {
    try {
      const unique = (JSON.parse(text) as { unique_id?: string }).unique_id ?? '';
      if (unique.startsWith(`mqttkit:${topic.split('/')[2]}:`)) ids.add(topic.split('/')[2]!);
    } catch {
      // not JSON: not the hub's
    }
  }
  return ids;
};

describe('Home Assistant discovery: leftovers of earlier runs are cleared, others’ configs kept [P-27]', { timeout: 120_000 }, () => {
  let broker: RunningMosquitto | undefined;
  let hub: RunningHub | undefined;
  let admin: MqttClient | undefined;
  const dataDir = tempDataDir();

  before(async () => {
    const binary = findTool('mosquitto', MOSQUITTO);
    if (binary) {
      broker = await startMosquitto(binary);
      admin = await connect(broker.url);
    }
  });
  after(async () => {
    await admin?.endAsync().catch(() => {});
    await hub?.stop('SIGTERM');
    await broker?.stop();
    removeDataDir(dataDir);
  });

  const need = (t: TestContext) => requireTool(t, 'mosquitto', MOSQUITTO, 'apt-get install mosquitto') && broker && admin;
  const restart = async (args: string[]) => {
    await hub?.stop('SIGTERM');
    hub = await startHub({ dataDir, args: ['--mqtt-url', broker!.url, '--log-level', 'info', ...args] });
  };
  /** A device of the hub: its values, retained as a device's `$` fields are. */
  const device = async (id: string, values: Array<[string, string]>) => {
    for (const [topic, payload] of values) await admin!.publishAsync(`HomeKit/${id}/${topic}`, payload, { qos: 1 });
  };
  /** A config published retained by the test, as another integration (or an earlier hub) would. */
  const config = (topic: string, body: unknown) => admin!.publishAsync(topic, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1, retain: true });

  it('a device removed while the hub was stopped: its configs are cleared at the next start, the others stay', async (t) => {
    if (!need(t)) return;
    await restart(['--ha-discovery']);
    await device('keep-1', [['Switch/On', '1']]);
    await device('gone-1', [
      ['Switch/On', '0'],
      ['MotionSensor/MotionDetected', '0'],
    ]);
    await eventually(
      async () => {
        const n = nodes(await retained(broker!.url, 'homeassistant'));
        return n.has('keep-1') && n.has('gone-1');
      },
      10_000,
      'configs of both devices retained',
    );
    await hub!.stop('SIGTERM');
    const removed = cli(['device', 'remove', 'gone-1', '--data-dir', dataDir]);
    assert.equal(removed.status, 0, removed.stderr);

    await restart(['--ha-discovery']);
    await eventually(async () => !nodes(await retained(broker!.url, 'homeassistant')).has('gone-1'), 10_000, 'gone-1’s configs cleared');
    const now = await retained(broker!.url, 'homeassistant');
    assert.ok(nodes(now).has('keep-1'), `keep-1’s config stays (retained: ${[...now.keys()].join(', ')})`);
  });

  it('a changed prefix: the old prefix’s configs of ours are cleared, another integration’s config there stays', async (t) => {
    if (!need(t)) return;
    const zigbee = 'homeassistant/sensor/0x00158d0001a2b3c4/temperature/config';
    await config(zigbee, { name: 'Kitchen temperature', unique_id: '0x00158d0001a2b3c4_temperature_zigbee2mqtt', state_topic: 'zigbee2mqtt/kitchen' });
    await restart(['--ha-discovery', '--ha-discovery-prefix', 'ha2']);
    await eventually(async () => nodes(await retained(broker!.url, 'ha2')).has('keep-1'), 10_000, 'keep-1’s config under the new prefix');
    await eventually(async () => !nodes(await retained(broker!.url, 'homeassistant')).has('keep-1'), 10_000, 'keep-1’s config under the old prefix cleared');
    assert.deepEqual([...(await retained(broker!.url, 'homeassistant')).keys()], [zigbee], 'Zigbee2MQTT’s config stays, and only it');
  });

  it('foreign configs under our prefix, even with look-alike ids, stay; a leftover of ours beside them goes', async (t) => {
    if (!need(t)) return;
    await hub!.stop('SIGTERM');
    const foreign = {
      // Tasmota-style id naming a node the hub also has
      'ha2/switch/keep-1/relay/config': { name: 'Relay', unique_id: 'keep-1_relay_tasmota', command_topic: 'cmnd/keep-1/POWER' },
      // our prefix of unique_id, but not for this topic's node
      'ha2/switch/lookalike-1/switch/config': { name: 'Look', unique_id: 'mqttkit:lookalike-2:switch', command_topic: 'x/set' },
      // our scheme spelled with another separator
      'ha2/switch/lookalike-3/switch/config': { name: 'Look', unique_id: 'mqttkit_lookalike-3_switch', command_topic: 'x/set' },
      // not JSON
      'ha2/sensor/lookalike-4/temp/config': 'not json',
    };
    for (const [topic, body] of Object.entries(foreign)) await config(topic, body);
    const ours = 'ha2/switch/ghost-7/switch/config';
    await config(ours, { name: 'Switch', unique_id: 'mqttkit:ghost-7:switch', command_topic: 'HomeKit/ghost-7/Switch/On/set' });

    await restart(['--ha-discovery', '--ha-discovery-prefix', 'ha2']);
    await eventually(async () => !(await retained(broker!.url, 'ha2')).has(ours), 10_000, 'the leftover of ours cleared');
    const now = await retained(broker!.url, 'ha2');
    for (const topic of Object.keys(foreign)) assert.ok(now.has(topic), `${topic} stays`);
    assert.ok(nodes(now).has('keep-1'), 'keep-1’s own config stays');
  });

  it('a flood of retained configs (thousands, some oversized) neither holds the start nor stops the leftover of ours from going', async (t) => {
    if (!need(t)) return;
    await hub!.stop('SIGTERM');
    const FLOOD = 3000;
    for (let i = 0; i < FLOOD; i++) {
      admin!.publish(`ha2/sensor/z2m_${i}/temperature/config`, JSON.stringify({ unique_id: `z2m_${i}_temperature`, state_topic: `zigbee2mqtt/${i}` }), {
        qos: 0,
        retain: true,
      });
    }
    // 1 MB each, one with our unique_id: too big to be ours, so never parsed, never cleared.
    const big = (id: string) => JSON.stringify({ unique_id: id, name: 'x'.repeat(1_000_000) });
    await config('ha2/sensor/big-1/x/config', big('big-1_x'));
    await config('ha2/switch/big-2/switch/config', big('mqttkit:big-2:switch'));
    const ours = 'ha2/switch/ghost-6/switch/config';
    await config(ours, { name: 'Switch', unique_id: 'mqttkit:ghost-6:switch', command_topic: 'HomeKit/ghost-6/Switch/On/set' });
    await eventually(async () => (await retained(broker!.url, 'ha2')).size >= FLOOD + 3, 15_000, 'the flood retained');

    await restart(['--ha-discovery', '--ha-discovery-prefix', 'ha2']);
    // The hub serves at once: a new device gets its config while the flood is being read.
    await device('fresh-1', [['Switch/On', '1']]);
    await eventually(async () => nodes(await retained(broker!.url, 'ha2')).has('fresh-1'), 10_000, 'fresh-1’s config');
    await eventually(async () => !(await retained(broker!.url, 'ha2')).has(ours), 15_000, 'the leftover of ours cleared');
    const now = await retained(broker!.url, 'ha2');
    assert.ok(now.has('ha2/sensor/z2m_0/temperature/config') && now.has(`ha2/sensor/z2m_${FLOOD - 1}/temperature/config`), 'the flood stays');
    assert.ok(now.has('ha2/switch/big-2/switch/config'), 'an oversized config is not ours');
    assert.equal(hub!.child.exitCode, null, 'the hub runs');
  });

  it('discovery turned off after it ran: every config of ours is cleared, others stay', async (t) => {
    if (!need(t)) return;
    await restart([]);
    await eventually(
      async () => {
        const n = nodes(await retained(broker!.url, 'ha2'));
        return !n.has('keep-1') && !n.has('fresh-1');
      },
      10_000,
      'our configs cleared',
    );
    const now = await retained(broker!.url, 'ha2');
    assert.ok(now.has('ha2/switch/keep-1/relay/config') && now.has('ha2/sensor/z2m_0/temperature/config'), 'the other integrations’ configs stay');
  });
});
