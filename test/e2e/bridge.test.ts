/**
 * The bridge end to end: the real hub process, MQTT.js devices, and hap-controller pairing over
 * loopback. The steps build on each other, as a user's first evening with mqttkit would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import {
  accessoryBySerial,
  assertValidDatabase,
  characteristicId,
  characteristicValue,
  idMap,
  type PairingData,
  pair,
  reconnect,
} from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';

const NO_RESPONSE = -70402;

async function device(url: string, id: string, will?: { topic: string; payload: string }): Promise<MqttClient> {
  return connectDevice(url, id, will ? { will } : {});
}

describe('bridge end to end', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let controller: HttpClient;
  let pairing: PairingData;
  const clients: MqttClient[] = [];
  let sensor: MqttClient;
  let test: MqttClient;

  before(async () => {
    hub = await startHub({ args: ['--confirm-timeout', '1500ms'] });
  });

  after(async () => {
    await controller?.close().catch(() => {});
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it("grows three accessories from the seed's four lines and pairs with the setup code", async () => {
    const url = hub.info.mqtt.address;
    sensor = await device(url, 'esp8266_12345678');
    const other = await device(url, '123456789ABCDEF');
    test = await device(url, 'TEST');
    clients.push(sensor, other, test);
    await sensor.publishAsync('HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature', '20', { qos: 1 });
    await sensor.publishAsync('HomeKit/esp8266_12345678/HumiditySensor/CurrentRelativeHumidity', '58', { qos: 1 });
    await other.publishAsync('HomeKit/123456789ABCDEF/TemperatureSensor/CurrentTemperature', '20.125', { qos: 1 });
    await test.publishAsync('HomeKit/TEST/Switch/On', '1', { qos: 1, retain: true });

    ({ client: controller, pairing } = await pair(hub.info.bridges[0]!.port!));
    const db = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return current.accessories.length === 4 ? current : undefined;
      },
      10_000,
      'three bridged accessories',
    );

    assertValidDatabase(db);
    for (const id of ['esp8266_12345678', '123456789ABCDEF', 'TEST']) assert.ok(accessoryBySerial(db, id), `accessory for ${id}`);
    assert.equal(characteristicValue(db, 'esp8266_12345678', 'TemperatureSensor', 'CurrentTemperature'), 20);
    assert.equal(characteristicValue(db, 'esp8266_12345678', 'HumiditySensor', 'CurrentRelativeHumidity'), 58);
    assert.equal(characteristicValue(db, '123456789ABCDEF', 'TemperatureSensor', 'CurrentTemperature'), 20.1);
    assert.ok([true, 1].includes(characteristicValue(db, 'TEST', 'Switch', 'On') as number), 'TEST switch is on');
  });

  it('turns a HomeKit write into HomeKit/TEST/Switch/On/set 0 on MQTT', async () => {
    const received: string[] = [];
    await test.subscribeAsync('HomeKit/TEST/#', { qos: 1 });
    test.on('message', (topic, payload) => {
      if (topic === 'HomeKit/TEST/Switch/On/set') received.push(payload.toString());
    });
    const db = await controller.getAccessories();
    const id = characteristicId(db, 'TEST', 'Switch', 'On')!;
    const response = await controller.setCharacteristics({ [id]: false });
    assertWriteOk(response);
    await eventually(() => received.includes('0'), 5000, 'the /set message');
    // The device obeys and confirms; HomeKit keeps showing off.
    await test.publishAsync('HomeKit/TEST/Switch/On', '0', { qos: 1, retain: true });
    await new Promise((r) => setTimeout(r, 2000)); // past the confirmation timeout
    const read = await controller.getCharacteristics([id]);
    assert.ok([false, 0].includes(read.characteristics[0]!.value as number));
  });

  it('reverts an unconfirmed write to the last confirmed value', async () => {
    const db = await controller.getAccessories();
    const id = characteristicId(db, 'TEST', 'Switch', 'On')!;
    assertWriteOk(await controller.setCharacteristics({ [id]: true }));
    const shown = await controller.getCharacteristics([id]);
    assert.ok([true, 1].includes(shown.characteristics[0]!.value as number), 'the written value is shown while waiting');
    await eventually(
      async () => {
        const read = await controller.getCharacteristics([id]);
        return [false, 0].includes(read.characteristics[0]!.value as number);
      },
      5000,
      'the value to revert',
    );
    await hub.printed(/did not confirm On = true/);
  });

  it('sends a HAP event when a device publishes a new temperature', async () => {
    const db = await controller.getAccessories();
    const id = characteristicId(db, 'esp8266_12345678', 'TemperatureSensor', 'CurrentTemperature')!;
    const [aid, iid] = id.split('.').map(Number);
    const events: Array<{ aid: number; iid: number; value: unknown }> = [];
    controller.on('event', (event: { characteristics: Array<{ aid: number; iid: number; value: unknown }> }) => events.push(...event.characteristics));
    await controller.subscribeCharacteristics([id]);
    await sensor.publishAsync('HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature', '21.5', { qos: 1 });
    await eventually(() => events.some((e) => e.aid === aid && e.iid === iid && e.value === 21.5), 5000, 'the HAP event');
  });

  it('adds a device that appears after pairing, without pairing again', async () => {
    const late = await device(hub.info.mqtt.address, 'late-lamp');
    clients.push(late);
    await late.publishAsync('HomeKit/late-lamp/$name', 'Desk lamp', { qos: 1 });
    await late.publishAsync('HomeKit/late-lamp/Lightbulb/On', 'on', { qos: 1 });
    await late.publishAsync('HomeKit/late-lamp/Lightbulb/Brightness', '40', { qos: 1 });
    const db = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return accessoryBySerial(current, 'late-lamp') ? current : undefined;
      },
      10_000,
      'the new accessory',
    );
    assertValidDatabase(db);
    assert.equal(characteristicValue(db, 'late-lamp', 'Lightbulb', 'Brightness'), 40);
    assert.equal(characteristicValue(db, 'late-lamp', 'AccessoryInformation', 'Name'), 'Desk lamp');
  });

  it('refuses bad input with a message to the device, leaving values and the database unchanged', async () => {
    const before = await controller.getAccessories();
    const errors: string[] = [];
    await sensor.subscribeAsync('HomeKit/esp8266_12345678/$error', { qos: 0 });
    sensor.on('message', (topic, payload) => {
      if (topic.endsWith('/$error')) errors.push(payload.toString());
    });
    const bad: Array<[string, string]> = [
      ['HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature', 'warm'],
      ['HomeKit/esp8266_12345678/HumiditySensor/CurrentRelativeHumidity', '140'],
      ['HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemprature', '22'],
      ['HomeKit/esp8266_12345678/TemperatureSenser/CurrentTemperature', '22'],
      ['HomeKit/esp8266_12345678/TemperatureSensor', '22'],
      ['HomeKit/esp8266_12345678/AccessoryInformation/Model', 'x'],
      ['HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature', '\u00ff\u00fe'],
    ];
    for (const [topic, payload] of bad) await sensor.publishAsync(topic, payload, { qos: 1 });
    await sensor.publishAsync('HomeKit/esp8266_12345678/TemperatureSensor/CurrentTemperature', Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 });
    await eventually(() => errors.length >= bad.length + 1, 5000, 'the $error reports (one per bad message)');
    assert.ok(
      errors.some((e) => /'warm' is not a number for CurrentTemperature/.test(e)),
      errors.join('\n'),
    );
    assert.ok(errors.some((e) => /140 is out of range for CurrentRelativeHumidity/.test(e)));
    assert.ok(errors.some((e) => /did you mean 'CurrentTemperature'/.test(e)));
    assert.ok(errors.some((e) => /did you mean 'TemperatureSensor'/.test(e)));
    assert.ok(errors.some((e) => /too few levels/.test(e)));
    assert.ok(errors.some((e) => /not UTF-8/.test(e)));

    const after = await controller.getAccessories();
    assertValidDatabase(after);
    assert.deepEqual(idMap(after), idMap(before));
    assert.equal(characteristicValue(after, 'esp8266_12345678', 'TemperatureSensor', 'CurrentTemperature'), 21.5);
    assert.equal(characteristicValue(after, 'esp8266_12345678', 'HumiditySensor', 'CurrentRelativeHumidity'), 58);
    assert.equal(hub.child.exitCode, null, 'the hub keeps running');
  });

  it('answers No Response (-70402) for a device whose connection dropped without DISCONNECT', async () => {
    const flaky = await device(hub.info.mqtt.address, 'flaky', { topic: 'HomeKit/flaky/$state', payload: 'offline' });
    await flaky.publishAsync('HomeKit/flaky/ContactSensor/ContactSensorState', '1', { qos: 1 });
    const id = await eventually(
      async () => characteristicId(await controller.getAccessories(), 'flaky', 'ContactSensor', 'ContactSensorState'),
      10_000,
      'flaky accessory',
    );
    const online = await controller.getCharacteristics([id]);
    assert.equal(online.characteristics[0]!.value, 1);
    flaky.stream.destroy(); // no DISCONNECT packet: the broker sends the last will
    await eventually(
      async () => {
        const read = await controller.getCharacteristics([id]);
        return (read.characteristics[0] as { status?: number }).status === NO_RESPONSE;
      },
      10_000,
      'No Response',
    );
  });

  it('keeps the pairing and every AID/IID across SIGTERM and restart; $state removed takes an accessory away', async () => {
    const beforeDb = await controller.getAccessories();
    await controller.close();
    const started = Date.now();
    const code = await hub.stop('SIGTERM');
    assert.equal(code, 0, hub.output());
    assert.ok(Date.now() - started < 5000, 'stopped within 5 s');
    for (const c of clients) c.end(true);

    hub = await startHub({ dataDir: hub.dataDir });
    const port = hub.info.bridges[0]!.port!;
    controller = reconnect(port, pairing);
    const afterDb = await controller.getAccessories(); // pair-verify with the stored pairing, no pair-setup
    assertValidDatabase(afterDb);
    assert.deepEqual(idMap(afterDb), idMap(beforeDb));
    // [P-19] No device is connected to a freshly started embedded broker: the sensor answers No Response
    // until it reconnects and speaks, then shows the value saved before the restart.
    const temperature = characteristicId(afterDb, 'esp8266_12345678', 'TemperatureSensor', 'CurrentTemperature')!;
    assert.equal(((await controller.getCharacteristics([temperature])).characteristics[0] as { status?: number }).status, NO_RESPONSE);
    const back = await device(hub.info.mqtt.address, 'esp8266_12345678');
    clients.push(back);
    await back.publishAsync('HomeKit/esp8266_12345678/$state', 'online', { qos: 1 });
    await eventually(
      async () => (await controller.getCharacteristics([temperature])).characteristics[0]!.value === 21.5,
      5000,
      'the saved value once the sensor is back',
    );

    const id = characteristicId(afterDb, 'flaky', 'ContactSensor', 'ContactSensorState')!;
    const read = await controller.getCharacteristics([id]);
    assert.equal((read.characteristics[0] as { status?: number }).status, NO_RESPONSE, 'still offline after restart');

    const gone = await device(hub.info.mqtt.address, '123456789ABCDEF');
    clients.push(gone);
    await gone.publishAsync('HomeKit/123456789ABCDEF/$state', 'removed', { qos: 1 });
    const final = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return accessoryBySerial(current, '123456789ABCDEF') ? undefined : current;
      },
      10_000,
      'the accessory to go',
    );
    assertValidDatabase(final);
    assert.ok(accessoryBySerial(final, 'esp8266_12345678'));
  });
});

function assertWriteOk(response: Record<string, unknown>): void {
  const statuses = (response as { characteristics?: Array<{ status?: number }> }).characteristics ?? [];
  for (const s of statuses) assert.ok(!s.status, `write refused with status ${s.status}`);
}
