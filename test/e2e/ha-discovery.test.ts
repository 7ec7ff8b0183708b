/**
 * [P-26] Home Assistant MQTT discovery, checked as Home Assistant would read it: a client with an admin
 * account subscribes to `homeassistant/#`, checks each config against its component's documented keys,
 * renders its templates with a Jinja engine (nunjucks) on what the device really published, sends a
 * command, and sees a removed device's configs cleared. A real hub and real MQTT devices.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import nunjucks from 'nunjucks';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cli, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

const jinja = new nunjucks.Environment();
const render = (template: string, value: string) => jinja.renderString(template, { value }).trim();

/** Keys Home Assistant's MQTT integration documents for each component (the ones a config may use), and the required ones. */
const COMMON = ['name', 'unique_id', 'object_id', 'device', 'availability_topic', 'availability_template', 'value_template'];
const SCHEMA: Record<string, { required: string[]; allowed: string[] }> = {
  sensor: { required: ['state_topic'], allowed: [...COMMON, 'state_topic', 'device_class', 'unit_of_measurement', 'state_class'] },
  binary_sensor: { required: ['state_topic'], allowed: [...COMMON, 'state_topic', 'device_class', 'payload_on', 'payload_off'] },
  switch: {
    required: ['command_topic'],
    allowed: [...COMMON, 'state_topic', 'command_topic', 'payload_on', 'payload_off', 'state_on', 'state_off', 'device_class'],
  },
  light: {
    required: ['command_topic'],
    allowed: [
      ...COMMON,
      'state_topic',
      'state_value_template',
      'command_topic',
      'payload_on',
      'payload_off',
      'brightness_state_topic',
      'brightness_command_topic',
      'brightness_scale',
      'color_temp_state_topic',
      'color_temp_command_topic',
    ],
  },
  cover: { required: [], allowed: [...COMMON, 'position_topic', 'set_position_topic', 'position_open', 'position_closed'] },
  lock: {
    required: ['command_topic'],
    allowed: [...COMMON, 'state_topic', 'command_topic', 'payload_lock', 'payload_unlock', 'state_locked', 'state_unlocked', 'state_jammed'],
  },
};

type Config = Record<string, unknown> & { device: { identifiers: string[]; name: string; sw_version?: string; model?: string; manufacturer?: string } };

describe('Home Assistant discovery (--ha-discovery)', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let ha: MqttClient;
  const devices: MqttClient[] = [];
  /** Retained configs as Home Assistant holds them: topic → config ('' removes). */
  const configs = new Map<string, string>();
  /** What the devices published, topic → payload (what Home Assistant's templates will see). */
  const published = new Map<string, string>();

  before(async () => {
    hub = await startHub({ args: ['--ha-discovery', '--log-level', 'warn'] });
    ha = await connectAdmin(hub.info.mqtt.address, 'homeassistant', addAdmin(hub.dataDir, 'homeassistant'));
    ha.on('message', (topic, payload) => {
      if (topic.startsWith('homeassistant/')) {
        if (payload.length === 0) configs.delete(topic);
        else configs.set(topic, payload.toString());
      }
    });
    await ha.subscribeAsync('homeassistant/#', { qos: 1 });
  });

  after(async () => {
    for (const d of devices) await d.endAsync().catch(() => {});
    await ha?.endAsync().catch(() => {});
    await hub?.stop('SIGTERM');
    if (hub) removeDataDir(hub.dataDir);
  });

  async function device(id: string, values: Array<[string, string]>): Promise<MqttClient> {
    const client = await connectDevice(hub.info.mqtt.address, id);
    devices.push(client);
    for (const [topic, payload] of values) {
      const full = `HomeKit/${id}/${topic}`;
      published.set(full, payload);
      await client.publishAsync(full, payload, { qos: 1, retain: topic.startsWith('$') });
    }
    return client;
  }

  const mine = (id: string) =>
    [...configs].filter(([topic]) => topic.split('/')[2] === id).map(([topic, text]) => ({ topic, config: JSON.parse(text) as Config }));

  it('publishes a config per entity that Home Assistant accepts, whose templates turn the device’s payloads into HA states', async () => {
    const id = 'ha-house-1';
    const dev = await device(id, [
      ['$name', 'Hall sensor'],
      ['$manufacturer', 'Acme'],
      ['$model', 'ESP32 multi'],
      ['$firmware', '2.4.1'],
      ['TemperatureSensor/CurrentTemperature', '21.5'],
      ['HumiditySensor/CurrentRelativeHumidity', '40'],
      ['MotionSensor/MotionDetected', 'true'],
      ['ContactSensor/ContactSensorState', '1'],
      ['Switch/1/On', '1'],
      ['Switch/2/On', 'off'],
      ['Lightbulb/On', '1'],
      ['Lightbulb/Brightness', '50'],
      ['WindowCovering/CurrentPosition', '30'],
      ['WindowCovering/TargetPosition', '30'],
      ['WindowCovering/PositionState', '2'],
      ['LockMechanism/LockCurrentState', '1'],
      ['LockMechanism/LockTargetState', '1'],
      ['$state', 'online'],
    ]);
    await eventually(() => mine(id).length >= 10, 10_000, `the configs of ${id} (have: ${[...configs.keys()].join(', ')})`);
    const byComponent = (component: string) => mine(id).filter(({ topic }) => topic.split('/')[1] === component);

    for (const { topic, config } of mine(id)) {
      const [, component, node, object, last] = topic.split('/');
      assert.equal(last, 'config');
      assert.equal(node, id);
      assert.match(object!, /^[a-z0-9_-]+$/, topic);
      const schema = SCHEMA[component!];
      assert.ok(schema, `a component Home Assistant has: ${component}`);
      for (const key of schema.required) assert.ok(key in config, `${topic}: required ${key}`);
      for (const key of Object.keys(config)) assert.ok(schema.allowed.includes(key), `${topic}: ${key} is not a documented ${component} key`);
      assert.deepEqual(config.device.identifiers, [id]);
      assert.equal(config.device.name, 'Hall sensor');
      assert.equal(config.device.sw_version, '2.4.1');
      assert.equal(config.device.model, 'ESP32 multi');
      assert.equal(config.availability_topic, `HomeKit/${id}/$state`);
      for (const [state, shown] of [
        ['online', 'online'],
        ['sleeping', 'online'],
        ['sleeping 3600', 'online'],
        ['offline', 'offline'],
        ['removed', 'offline'],
      ])
        assert.equal(render(config.availability_template as string, state), shown, `${topic}: $state ${state}`);
    }
    const uniques = mine(id).map(({ config }) => config.unique_id);
    assert.equal(new Set(uniques).size, uniques.length, 'unique ids are unique');
    // Device `d` with a SmartSpeaker's Volume and device `d_smart` with a Speaker's: snake-cased names
    // joined by `_` would make one unique id of the two (Home Assistant keeps only the first).
    const { discoveryMessages } = await import('../../src/homeassistant/discovery.js');
    const facts = () => ({ name: 'Volume', uuid: 'x', format: 'uint8' as const, perms: ['pr'] });
    const record = (deviceId: string, service: string) => ({
      id: deviceId,
      meta: {},
      state: 'online' as const,
      lastSeen: 0,
      createdAt: 0,
      services: [{ service, index: 0, values: { Volume: 10 } }],
    });
    const idsOf = (d: ReturnType<typeof record>) => discoveryMessages(d, facts).map((m) => (JSON.parse(m.payload) as { unique_id: string }).unique_id);
    assert.notDeepEqual(idsOf(record('d', 'SmartSpeaker')), idsOf(record('d_smart', 'Speaker')), 'two devices never share a unique id');

    // States as Home Assistant would compute them from what the device published.
    const state = (config: Record<string, unknown>, topicKey = 'state_topic', templateKey = 'value_template') => {
      const payload = published.get(config[topicKey] as string);
      assert.ok(payload !== undefined, `${config.name}: ${String(config[topicKey])} is a topic the device publishes`);
      const template = config[templateKey] as string | undefined;
      return template ? render(template, payload) : payload;
    };
    const find = (component: string, name: string) => {
      const found = byComponent(component).find(({ config }) => config.name === name);
      assert.ok(
        found,
        `${component} "${name}" in ${byComponent(component)
          .map(({ config }) => config.name)
          .join(', ')}`,
      );
      return found.config;
    };
    const temperature = find('sensor', 'Temperature');
    assert.deepEqual([temperature.device_class, temperature.unit_of_measurement, state(temperature)], ['temperature', '°C', '21.5']);
    const humidity = find('sensor', 'Relative Humidity');
    assert.deepEqual([humidity.device_class, humidity.unit_of_measurement, state(humidity)], ['humidity', '%', '40']);
    const motion = find('binary_sensor', 'Motion Detected');
    assert.deepEqual([motion.device_class, state(motion), motion.payload_on], ['motion', 'ON', 'ON']);
    const contact = find('binary_sensor', 'Contact Sensor State');
    assert.deepEqual([contact.device_class, state(contact)], ['opening', 'ON'], 'HAP 1 (no contact) is open');
    const switch1 = find('switch', 'Switch 1');
    const switch2 = find('switch', 'Switch 2');
    assert.deepEqual([state(switch1), state(switch2)], [switch1.state_on, switch2.state_off], 'on and off, however spelled');
    const light = find('light', 'Light');
    assert.deepEqual(
      [state(light, 'state_topic', 'state_value_template'), light.brightness_scale, state(light, 'brightness_state_topic', 'none')],
      ['ON', 100, '50'],
    );
    const lock = find('lock', 'Lock');
    assert.equal(state(lock), lock.state_locked);
    const cover = find('cover', 'Cover');
    assert.equal(state(cover, 'position_topic', 'none'), '30');

    // A command from Home Assistant reaches the device as the hub's own writes do.
    const got: string[] = [];
    dev.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    await dev.subscribeAsync(`HomeKit/${id}/+/+/+/set`, { qos: 1 });
    await ha.publishAsync(switch2.command_topic as string, switch2.payload_on as string, { qos: 1 });
    await eventually(() => got.includes(`HomeKit/${id}/Switch/2/On/set 1`), 5000, `the /set at the device (got: ${got.join(', ')})`);
  });

  it('follows the device: a new characteristic adds an entity, a new $firmware updates every config', async () => {
    const id = 'ha-late-1';
    const dev = await device(id, [
      ['TemperatureSensor/CurrentTemperature', '19'],
      ['$firmware', '1.0.0'],
    ]);
    await eventually(() => mine(id).length === 1, 10_000, 'the first config');
    await dev.publishAsync(`HomeKit/${id}/TemperatureSensor/StatusLowBattery`, '0', { qos: 1 });
    await eventually(() => mine(id).length === 2, 10_000, 'a config for the new characteristic');
    await dev.publishAsync(`HomeKit/${id}/$firmware`, '1.1.0', { qos: 1, retain: true });
    await eventually(() => mine(id).every(({ config }) => config.device.sw_version === '1.1.0'), 10_000, 'the new version in every config');
  });

  it('clears a removed device’s configs (empty retained messages): a Home Assistant starting later sees none', async () => {
    const id = 'ha-gone-1';
    await device(id, [
      ['Switch/On', '1'],
      ['MotionSensor/MotionDetected', '0'],
    ]);
    await eventually(() => mine(id).length === 2, 10_000, 'its configs');
    assert.equal(cli(['device', 'remove', id, '--data-dir', hub.dataDir]).status, 0);
    await eventually(() => mine(id).length === 0, 10_000, 'its configs cleared');

    const late = await connectAdmin(hub.info.mqtt.address, 'ha-late', addAdmin(hub.dataDir, 'ha-late'));
    const seen: string[] = [];
    late.on('message', (topic, payload) => {
      if (payload.length > 0) seen.push(topic);
    });
    await late.subscribeAsync('homeassistant/#', { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    await late.endAsync();
    assert.deepEqual(
      seen.filter((t) => t.includes(`/${id}/`)),
      [],
      'no retained config of the removed device',
    );
    assert.ok(
      seen.some((t) => t.includes('/ha-house-1/')),
      'the others are retained',
    );
  });
});
