/**
 * HomeKit against hostile or broken device data, on the real hub process with hap-controller as the
 * iPhone: one device's data never stops the hub from starting (finding 8), and every name HomeKit
 * shows passes one rule (finding 9).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { DATABASE_FILE } from '../../src/store/database.js';
import {
  type AccessoryDb,
  accessoryBySerial,
  assertValidDatabase,
  characteristicId,
  characteristicUuid,
  idMap,
  pair,
  reconnect,
  serviceUuid,
} from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

/** Every service of one type on a device's accessory, with its characteristics. */
function servicesOf(db: AccessoryDb, serial: string, service: string) {
  return accessoryBySerial(db, serial)?.services.filter((s) => s.type === serviceUuid(service)) ?? [];
}

function valueIn(service: { characteristics: Array<{ type?: string; value?: unknown }> } | undefined, characteristic: string): unknown {
  return service?.characteristics.find((c) => c.type === characteristicUuid(characteristic))?.value;
}

/** Collects what the hub publishes to a device's $error topic. */
async function errorsOf(client: MqttClient, id: string): Promise<string[]> {
  const errors: string[] = [];
  client.on('message', (topic, payload) => {
    if (topic === `HomeKit/${id}/$error`) errors.push(payload.toString());
  });
  await client.subscribeAsync(`HomeKit/${id}/$error`, { qos: 0 });
  return errors;
}

describe("one device's data never stops the hub (finding 8)", { timeout: 120_000 }, () => {
  const hubs: RunningHub[] = [];
  const clients: MqttClient[] = [];
  const controllers: HttpClient[] = [];
  after(async () => {
    for (const c of controllers) await c.close().catch(() => {});
    for (const c of clients) c.end(true);
    for (const hub of hubs) await hub.stop('SIGKILL');
    for (const dir of new Set(hubs.map((h) => h.dataDir))) removeDataDir(dir);
  });
  const start = async (dataDir?: string) => {
    const hub = await startHub(dataDir ? { dataDir } : {});
    hubs.push(hub);
    return hub;
  };
  const device = async (hub: RunningHub, id: string) => {
    const client = await connectDevice(hub.info.mqtt.address, id);
    client.on('error', () => {});
    clients.push(client);
    return client;
  };

  it('refuses Switch/On after Switch/1/On on $error, and the hub restarts with a valid accessory database', async () => {
    let hub = await start();
    const relay = await device(hub, 'relay');
    const errors = await errorsOf(relay, 'relay');
    await relay.publishAsync('HomeKit/relay/Switch/1/On', '1', { qos: 1 });
    await relay.publishAsync('HomeKit/relay/Switch/On', '1', { qos: 1 });
    const refusal = await eventually(() => errors.find((e) => e.includes('Switch/On')), 5000, 'the $error refusal');
    assert.match(refusal, /without an index cannot join .*Switch 1/);
    assert.match(refusal, /Switch\/2/, 'the refusal says which topic to use instead');
    await relay.publishAsync('HomeKit/relay/Switch/2/On', '0', { qos: 1 });

    const { client, pairing } = await pair(hub.info.bridges[0]!.port!);
    controllers.push(client);
    const before = await eventually(
      async () => {
        const db = await client.getAccessories();
        return servicesOf(db, 'relay', 'Switch').length === 2 ? db : undefined;
      },
      10_000,
      'the relay with two switches',
    );
    assertValidDatabase(before);
    assert.doesNotMatch(hub.output(), /event listener failed/);

    await client.close();
    assert.equal(await hub.stop('SIGTERM'), 0, hub.output());
    hub = await start(hub.dataDir);
    const again = reconnect(hub.info.bridges[0]!.port!, pairing);
    controllers.push(again);
    const after = await again.getAccessories();
    assertValidDatabase(after);
    assert.deepEqual(idMap(after), idMap(before), 'every AID and IID kept');
    assert.equal(servicesOf(after, 'relay', 'Switch').length, 2);
  });

  it('starts without a stored device it cannot build, names it, serves the others, and keeps its record and ids', async () => {
    // First run: two ordinary devices get their accessories (and AIDs).
    let hub = await start();
    const lamp = await device(hub, 'lamp');
    await lamp.publishAsync('HomeKit/lamp/Lightbulb/On', '1', { qos: 1 });
    const spoiled = await device(hub, 'spoiled');
    await spoiled.publishAsync('HomeKit/spoiled/Outlet/On', '1', { qos: 1 });
    const { client, pairing } = await pair(hub.info.bridges[0]!.port!);
    controllers.push(client);
    const first = await eventually(
      async () => {
        const db = await client.getAccessories();
        return accessoryBySerial(db, 'lamp') && accessoryBySerial(db, 'spoiled') ? db : undefined;
      },
      10_000,
      'both accessories',
    );
    const spoiledAid = accessoryBySerial(first, 'spoiled')!.aid;
    await client.close();
    for (const c of clients.splice(0)) c.end(true);
    assert.equal(await hub.stop('SIGTERM'), 0, hub.output());

    // Plant records HAP-NodeJS cannot hold, or the hub cannot read, beside the good ones.
    const file = join(hub.dataDir, DATABASE_FILE);
    const db = new Database(file);
    // Seen just now: a record from long ago would be expired by the start-up sweep (device TTL), not held.
    const doc = (id: string, services: unknown) => JSON.stringify({ id, meta: {}, state: 'online', lastSeen: Date.now(), createdAt: Date.now(), services });
    const hundred = [
      { service: 'Switch', index: 0, values: {} },
      ...Array.from({ length: 99 }, (_, i) => ({ service: 'Switch', index: i + 1, values: { On: true } })),
    ];
    const saved = db.prepare<[string], { doc: string }>('SELECT doc FROM devices WHERE id = ?').get('spoiled')!.doc;
    const planted: Record<string, string> = {
      // 100 services + AccessoryInformation: over HAP-NodeJS's limit of 100 per accessory.
      spoiled: doc('spoiled', hundred),
      crowded: doc('crowded', hundred),
      // What the old hub saved after `Switch/1/On` then `Switch/On`: HAP-NodeJS can hold it if built unindexed-first.
      legacy: doc('legacy', [
        { service: 'Switch', index: 1, values: { On: true } },
        { service: 'Switch', index: 0, values: { On: false } },
      ]),
      garbled: doc('garbled', 'not a list'),
      truncated: '{"id":"truncated","meta":{',
    };
    const put = db.prepare('INSERT INTO devices (id, doc, updated_at) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc');
    for (const [id, text] of Object.entries(planted)) put.run(id, text);
    db.close();

    // Second run: it starts, names each bad device once, and serves the others.
    hub = await start(hub.dataDir);
    const controller = reconnect(hub.info.bridges[0]!.port!, pairing);
    controllers.push(controller);
    const second = await controller.getAccessories();
    assertValidDatabase(second);
    assert.ok(accessoryBySerial(second, 'lamp'), 'the good device is served');
    assert.equal(servicesOf(second, 'legacy', 'Switch').length, 2, 'the legacy record is built whole');
    for (const id of ['spoiled', 'crowded', 'garbled', 'truncated']) {
      assert.equal(accessoryBySerial(second, id), undefined, `${id} is left out`);
      const lines = hub
        .output()
        .split('\n')
        .filter((line) => line.includes(`device ${id} left out`));
      assert.equal(lines.length, 1, `one log line names ${id}:\n${hub.output()}`);
    }
    await hub.printed(/device crowded left out.*more than 100 services/);
    // A device arriving now makes the bridge save its ids: the left-out device's must survive that.
    const newcomer = await device(hub, 'newcomer');
    await newcomer.publishAsync('HomeKit/newcomer/Switch/On', '1', { qos: 1 });
    await eventually(async () => accessoryBySerial(await controller.getAccessories(), 'newcomer'), 10_000, 'the newcomer');
    // The way out the log names: removing a held device deletes its record, while the hub runs.
    const removed = cli(['device', 'remove', 'truncated', '--data-dir', hub.dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    const rows = () => {
      const reader = new Database(file, { readonly: true });
      try {
        return reader
          .prepare<[], { id: string }>('SELECT id FROM devices')
          .all()
          .map((r) => r.id);
      } finally {
        reader.close();
      }
    };
    await eventually(() => !rows().includes('truncated'), 10_000, 'the held record to be removed');
    delete planted.truncated;
    await controller.close();
    for (const c of clients.splice(0)) c.end(true);
    assert.equal(await hub.stop('SIGTERM'), 0, hub.output());

    const check = new Database(file, { readonly: true });
    for (const [id, text] of Object.entries(planted)) {
      if (id === 'legacy') continue;
      assert.equal(check.prepare<[string], { doc: string }>('SELECT doc FROM devices WHERE id = ?').get(id)?.doc, text, `${id}'s record is kept as it was`);
    }
    // The user repairs the record: the device comes back with the AID it had.
    check.close();
    const repair = new Database(file);
    repair.prepare('UPDATE devices SET doc = ? WHERE id = ?').run(saved, 'spoiled');
    repair.close();
    hub = await start(hub.dataDir);
    const third = reconnect(hub.info.bridges[0]!.port!, pairing);
    controllers.push(third);
    const repaired = await third.getAccessories();
    assertValidDatabase(repaired);
    assert.equal(accessoryBySerial(repaired, 'spoiled')?.aid, spoiledAid, 'the repaired device keeps its AID');
  });
});

describe('one name rule for everything HomeKit shows (finding 9)', { timeout: 60_000 }, () => {
  let hub: RunningHub;
  let controller: HttpClient;
  let tv: MqttClient;
  after(async () => {
    await controller?.close().catch(() => {});
    tv?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it("cleans Name and ConfiguredName values from a device and from a controller's write", async () => {
    hub = await startHub();
    tv = await connectDevice(hub.info.mqtt.address, 'tv');
    tv.on('error', () => {});
    const sets: string[] = [];
    tv.on('message', (topic, payload) => {
      if (topic.endsWith('/set')) sets.push(payload.toString());
    });
    await tv.subscribeAsync('HomeKit/tv/+/+/set', { qos: 1 });
    await tv.publishAsync('HomeKit/tv/$name', 'Living\u202Eroom TV', { qos: 1 });
    await tv.publishAsync('HomeKit/tv/Switch/Name', '<b>Desk\u200B lamp</b>\u2066', { qos: 1 });
    await tv.publishAsync('HomeKit/tv/InputSource/ConfiguredName', 'HDMI\u202E 1 "&amp;"', { qos: 1 });
    await tv.publishAsync('HomeKit/tv/InputSource/IsConfigured', '1', { qos: 1 });

    ({ client: controller } = await pair(hub.info.bridges[0]!.port!));
    const db = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return valueIn(servicesOf(current, 'tv', 'InputSource')[0], 'IsConfigured') === 1 ? current : undefined;
      },
      10_000,
      'the tv accessory',
    );
    assertValidDatabase(db);
    const info = servicesOf(db, 'tv', 'AccessoryInformation')[0];
    assert.equal(valueIn(info, 'Name'), 'Livingroom TV');
    assert.equal(valueIn(servicesOf(db, 'tv', 'Switch')[0], 'Name'), 'b Desk lamp b');
    assert.equal(valueIn(servicesOf(db, 'tv', 'InputSource')[0], 'ConfiguredName'), 'HDMI 1 amp');

    const id = characteristicId(db, 'tv', 'InputSource', 'ConfiguredName')!;
    const read = await controller.getCharacteristics([id]);
    assert.equal(read.characteristics[0]!.value, 'HDMI 1 amp');

    await controller.setCharacteristics({ [id]: '<i>Game\u202Econsole</i>' });
    await eventually(() => sets.includes('i Gameconsole i'), 5000, 'the cleaned /set');
    await tv.publishAsync('HomeKit/tv/InputSource/ConfiguredName', '<i>Game\u202Econsole</i>', { qos: 1 }); // a device echoing the raw text
    await eventually(async () => (await controller.getCharacteristics([id])).characteristics[0]!.value === 'i Gameconsole i', 5000, 'the cleaned name');
  });
});
