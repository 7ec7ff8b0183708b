/** `--mqtt-url`: the hub as a client of a real Mosquitto, including what retained messages do across restarts. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { eventually, removeDataDir, startHub, type RunningHub } from '../helpers/hub-process.js';
import { accessoryBySerial, assertValidDatabase, characteristicId, characteristicValue, pair, reconnect } from '../helpers/homekit-controller.js';
import { startMosquitto, type RunningMosquitto } from '../helpers/mosquitto.js';
import { requireTool } from '../helpers/system-tools.js';

describe('external broker (Mosquitto)', { timeout: 120_000 }, () => {
  let broker: RunningMosquitto | undefined;
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    await broker?.stop();
  });

  it('bridges devices on Mosquitto both ways, and a removed device stays gone after a restart', async (t) => {
    const binary = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    if (!binary) return;
    broker = await startMosquitto(binary);
    // Devices publish retained before the hub exists: the hub must pick them up on subscribe.
    const lamp = await mqtt.connectAsync(broker.url, { clientId: 'lamp', protocolVersion: 4, reconnectPeriod: 0 });
    await lamp.publishAsync('HomeKit/lamp/Lightbulb/On', '1', { qos: 1, retain: true });
    await lamp.publishAsync('HomeKit/lamp/$name', 'Hall lamp', { qos: 1, retain: true });
    const old = await mqtt.connectAsync(broker.url, { clientId: 'old', protocolVersion: 4, reconnectPeriod: 0 });
    await old.publishAsync('HomeKit/old/TemperatureSensor/CurrentTemperature', '18', { qos: 1, retain: true });

    hub = await startHub({ args: ['--mqtt-url', broker.url] });
    assert.equal(hub.info.mqtt.embedded, false);
    const { client: controller, pairing } = await pair(hub.info.bridges[0]!.port!);
    const db = await eventually(async () => {
      const current = await controller.getAccessories();
      return accessoryBySerial(current, 'lamp') && accessoryBySerial(current, 'old') ? current : undefined;
    }, 10_000, 'retained devices');
    assertValidDatabase(db);
    assert.ok([true, 1].includes(characteristicValue(db, 'lamp', 'Lightbulb', 'On') as number));

    const sets: string[] = [];
    await lamp.subscribeAsync('HomeKit/lamp/+/+/set', { qos: 1 });
    lamp.on('message', (topic, payload) => sets.push(`${topic} ${payload.toString()}`));
    await controller.setCharacteristics({ [characteristicId(db, 'lamp', 'Lightbulb', 'On')!]: false });
    await eventually(() => sets.includes('HomeKit/lamp/Lightbulb/On/set 0'), 5000, '/set through Mosquitto');

    await old.publishAsync('HomeKit/old/$state', 'removed', { qos: 1 });
    await eventually(async () => !accessoryBySerial(await controller.getAccessories(), 'old'), 10_000, 'removal');
    await controller.close();

    assert.equal(await hub.stop('SIGTERM'), 0);
    hub = await startHub({ dataDir: hub.dataDir, args: ['--mqtt-url', broker.url] });
    const again = reconnect(hub.info.bridges[0]!.port!, pairing);
    await new Promise((r) => setTimeout(r, 1000)); // let retained messages replay
    const after = await again.getAccessories();
    assert.ok(accessoryBySerial(after, 'lamp'));
    assert.equal(accessoryBySerial(after, 'old'), undefined, 'its retained topics were cleared, so it does not come back');
    await again.close();
    lamp.end(true);
    old.end(true);
  });

  it('stops with a clear message when the external broker cannot be reached', async () => {
    const unreachable = await startHub({ args: ['--mqtt-url', 'mqtt://127.0.0.1:1'] }).then(
      () => assert.fail('the hub started without its broker'),
      (error: Error) => error.message,
    );
    assert.match(unreachable, /cannot connect to the MQTT broker at mqtt:\/\/127\.0\.0\.1:1.*check --mqtt-url/);
  });
});
