/** One misbehaving device must not take the hub down or starve the others. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { characteristicId, pair } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';

describe('abuse', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('cuts off a flooding client and an oversized message while another device keeps getting through', async () => {
    hub = await startHub();
    const url = hub.info.mqtt.address;
    const good = await connectDevice(url, 'good');
    await good.publishAsync('HomeKit/good/TemperatureSensor/CurrentTemperature', '10', { qos: 1 });
    const { client: controller } = await pair(hub.info.bridges[0]!.port!);
    const id = await eventually(
      async () => characteristicId(await controller.getAccessories(), 'good', 'TemperatureSensor', 'CurrentTemperature'),
      10_000,
      'good device',
    );

    const flooder = await connectDevice(url, 'flooder');
    flooder.on('error', () => {}); // publishing after being cut off errors; that is the point
    const flooderClosed = new Promise<void>((resolve) => flooder.once('close', () => resolve()));
    const flood = (async () => {
      for (let i = 0; i < 50_000; i++) {
        flooder.publish('HomeKit/flooder/TemperatureSensor/CurrentTemperature', String(i % 50), { qos: 0 });
        if (i % 2000 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    // During the flood, the good device's updates still reach HomeKit.
    for (let t = 11; t <= 15; t++) {
      await good.publishAsync('HomeKit/good/TemperatureSensor/CurrentTemperature', String(t), { qos: 1 });
      await eventually(async () => (await controller.getCharacteristics([id])).characteristics[0]!.value === t, 5000, `update ${t} during the flood`);
    }
    await flood;
    await flooderClosed;
    flooder.end(true);

    const big = await connectDevice(url, 'big');
    const bigClosed = new Promise<void>((resolve) => big.once('close', () => resolve()));
    big.publish('HomeKit/big/TemperatureSensor/CurrentTemperature', Buffer.alloc(200_000, 0x31), { qos: 0 });
    await bigClosed;
    big.end(true);

    await good.publishAsync('HomeKit/good/TemperatureSensor/CurrentTemperature', '16.5', { qos: 1 });
    await eventually(async () => (await controller.getCharacteristics([id])).characteristics[0]!.value === 16.5, 5000, "the good device's value");
    assert.equal(hub.child.exitCode, null, 'the hub is still running');
    await hub.printed(/flood\): disconnecting it/);
    await hub.printed(/payload over 65536 bytes: disconnecting the client/);
    await controller.close();
    await good.endAsync();
  });
});
