/** Past HomeKit's 149 accessories per bridge, the hub opens a second bridge; devices stay put across restarts. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Characteristic } from 'hap-nodejs';
import { type AccessoryDb, assertValidDatabase, type PairingData, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, connectAdmin } from '../helpers/mqtt-device.js';

const DEVICES = 160;

function serials(db: AccessoryDb): string[] {
  return db.accessories
    .flatMap((a) => a.services.flatMap((s) => s.characteristics))
    .filter((c) => c.type === Characteristic.SerialNumber.UUID && typeof c.value === 'string' && (c.value as string).startsWith('sensor-'))
    .map((c) => c.value as string)
    .sort();
}

describe('more than 149 devices', { timeout: 180_000 }, () => {
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('puts 149 on the first bridge and the rest on a second; a restart keeps each device on its bridge', async () => {
    hub = await startHub();
    // One admin account publishes for the whole fleet (a device may only publish its own topics).
    const client = await connectAdmin(hub.info.mqtt.address, 'fleet', addAdmin(hub.dataDir, 'fleet'));
    for (let i = 0; i < DEVICES; i++) {
      await client.publishAsync(`HomeKit/sensor-${String(i).padStart(3, '0')}/TemperatureSensor/CurrentTemperature`, String(i % 40), { qos: 1 });
    }
    await client.endAsync();
    const info = await eventually(
      () => {
        const current = hub!.refresh();
        return current.bridges.length === 2 && current.bridges.every((b) => b.port) ? current : undefined;
      },
      20_000,
      'a second bridge',
    );

    const pairings: PairingData[] = [];
    const before: string[][] = [];
    for (const bridge of info.bridges) {
      const { client: controller, pairing } = await pair(bridge.port!);
      pairings.push(pairing);
      const db = await eventually(
        async () => {
          const current = await controller.getAccessories();
          return serials(current).length === (bridge.index === 0 ? 149 : DEVICES - 149) ? current : undefined;
        },
        20_000,
        `bridge ${bridge.index} accessories`,
      );
      assertValidDatabase(db);
      before.push(serials(db));
      await controller.close();
    }
    assert.equal(new Set(before.flat()).size, DEVICES, 'every device on exactly one bridge');

    assert.equal(await hub.stop('SIGTERM'), 0);
    hub = await startHub({ dataDir: hub.dataDir });
    assert.equal(hub.info.bridges.length, 2);
    for (const [i, bridge] of hub.info.bridges.entries()) {
      const controller = reconnect(bridge.port!, pairings[i]!);
      const db = await controller.getAccessories();
      assertValidDatabase(db);
      assert.deepEqual(serials(db), before[i], `bridge ${i} holds the same devices after restart`);
      await controller.close();
    }
  });
});
