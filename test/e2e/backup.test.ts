/**
 * Finding 13: `mqttkit backup` while the hub runs, `mqttkit restore` into a new data dir, and the hub
 * there is the same hub to the Home app (old pairing, same AIDs, same setup code) and to devices
 * (their passwords still work).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { snapshot } from '../helpers/data-dir.js';
import { accessoryBySerial, idMap, type PairingData, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, PINCODE, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { cli, cliAsync, connectDevice, devicePassword } from '../helpers/mqtt-device.js';

const DEVICES = ['lamp', 'thermometer', 'door'];
const dirs: string[] = [];
const hubs: RunningHub[] = [];
const clients: MqttClient[] = [];
after(async () => {
  for (const c of clients) c.end(true);
  for (const hub of hubs) await hub.stop('SIGKILL');
  dirs.forEach(removeDataDir);
});

function newDir(): string {
  const dir = tempDataDir();
  dirs.push(dir);
  return dir;
}

describe('backup and restore', { timeout: 240_000 }, () => {
  let original: RunningHub;
  let pairing: PairingData;
  let ids: string[];
  let aids: Record<string, number>;
  let backup: string;
  let restored: string;

  before(async () => {
    original = await startHub();
    hubs.push(original);
    dirs.push(original.dataDir);
    for (const id of DEVICES) {
      const device = await connectDevice(original.info.mqtt.address, id);
      clients.push(device);
      const topic = { lamp: 'Lightbulb/On', thermometer: 'TemperatureSensor/CurrentTemperature', door: 'ContactSensor/ContactSensorState' }[id]!;
      await device.publishAsync(`HomeKit/${id}/${topic}`, '1', { qos: 1 });
    }
    const paired = await pair(original.info.bridges[0]!.port!);
    pairing = paired.pairing;
    const db = await eventually(
      async () => {
        const current = await paired.client.getAccessories();
        return current.accessories.length === DEVICES.length + 1 ? current : undefined;
      },
      10_000,
      'three bridged accessories',
    );
    ids = idMap(db);
    aids = Object.fromEntries(DEVICES.map((id) => [id, accessoryBySerial(db, id)!.aid]));
    await paired.client.close();
  });

  it('backs up while the hub runs and devices report, into one owner-only file that says it holds secrets', async () => {
    backup = join(newDir(), 'hub.backup');
    // Traffic during the backup: the hub keeps writing while SQLite's online backup copies.
    const thermometer = clients[1]!;
    let reporting = true;
    const traffic = (async () => {
      for (let t = 0; reporting; t++) {
        await thermometer.publishAsync('HomeKit/thermometer/TemperatureSensor/CurrentTemperature', String(15 + (t % 10)), { qos: 1 });
        await new Promise((r) => setTimeout(r, 20)); // a chatty device's pace (an unpaced flood is throttled by the hub)
      }
    })();
    const result = await cliAsync(['backup', backup, '--data-dir', original.dataDir]);
    reporting = false;
    await traffic;
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Backup written to .*hub\.backup/);
    assert.match(result.stdout, /It holds secrets .*keep it private/);
    assert.equal(statSync(backup).mode & 0o077, 0, 'owner-only');
    assert.equal(original.child.exitCode, null, 'the hub kept running');
  });

  it('refuses to overwrite a backup file unless --force', () => {
    const result = cli(['backup', backup, '--data-dir', original.dataDir]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /exists already: choose another name, or pass --force/);
  });

  it('refuses a damaged backup before writing anything', () => {
    const bytes = readFileSync(backup);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 10]! ^= 0xff;
    const cases: Array<[string, Buffer, RegExp]> = [
      ['a flipped byte', flipped, /is damaged: .* does not match its checksum/],
      ['a cut-short file', bytes.subarray(0, bytes.length - 100), /is damaged: it is \d+ bytes, its manifest says \d+/],
      ['not a backup', Buffer.from('hello'), /is not an mqttkit backup/],
      [
        'a newer format',
        Buffer.concat([Buffer.from('mqttkit-backup 9\n'), bytes.subarray(bytes.indexOf(0x0a) + 1)]),
        /made by a newer mqttkit \(backup format 9/,
      ],
      [
        'well-formed, but without the keys of its published bridge',
        without(bytes, /^homekit\/AccessoryInfo\./),
        /does not hold a consistent state:\n.*AccessoryInfo\.[0-9A-F]{12}\.json is missing/,
      ],
    ];
    for (const [what, content, message] of cases) {
      const file = join(newDir(), 'bad.backup');
      writeFileSync(file, content);
      const target = join(newDir(), 'target');
      const result = cli(['restore', file, '--data-dir', target]);
      assert.notEqual(result.status, 0, what);
      assert.match(result.stderr, message, what);
      assert.ok(!existsSync(target), `${what}: nothing was written`);
    }
  });

  it('restores into a new data dir: same setup code, the old pairing verifies, same AIDs, device passwords work', async () => {
    await original.stop();
    restored = join(newDir(), 'restored');
    const result = cli(['restore', backup, '--data-dir', restored]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /3 devices, 3 accounts, 1 HomeKit bridge/);

    // No --pincode: the code comes from the restored state. Closed registration: only known accounts get in.
    const hub = await startHub({ dataDir: restored, pincode: null, args: ['--registration', 'closed'] });
    hubs.push(hub);
    assert.ok(hub.output().includes(`HomeKit setup code: ${PINCODE}`), hub.output());

    const controller = reconnect(hub.info.bridges[0]!.port!, pairing);
    const db = await controller.getAccessories();
    assert.deepEqual(idMap(db), ids, 'every AID and IID as before');
    for (const id of DEVICES) assert.equal(accessoryBySerial(db, id)!.aid, aids[id], `${id} keeps its AID`);
    await controller.close();

    for (const id of DEVICES) {
      const device = await connectDevice(hub.info.mqtt.address, id, { password: devicePassword(id) });
      clients.push(device);
    }
    await assert.rejects(connectDevice(hub.info.mqtt.address, 'lamp', { password: 'not-the-password-0123' }), 'a wrong password is still refused');
  });

  it('refuses to restore into the data dir of a running hub, even with --force', () => {
    const before = snapshot(restored);
    for (const args of [[], ['--force']]) {
      const result = cli(['restore', backup, '--data-dir', restored, ...args]);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /a hub is running on .* stop it before restoring/);
    }
    // The running hub rewrites its own files; what matters is that restore moved or added none.
    const names = (files: Record<string, string>) =>
      Object.keys(files)
        .filter((n) => !n.startsWith('mqttkit.db-'))
        .sort();
    assert.deepEqual(names(snapshot(restored)), names(before));
  });

  it('refuses to restore over an existing state without --force; with --force moves the old state aside', async () => {
    await hubs.at(-1)!.stop();
    const plain = cli(['restore', backup, '--data-dir', restored]);
    assert.notEqual(plain.status, 0);
    assert.match(plain.stderr, /holds a hub's state already .*pass --force/);
    const result = cli(['restore', backup, '--data-dir', restored, '--force']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Moved the previous mqttkit\.db → mqttkit\.db\.before-restore-/);
    const hub = await startHub({ dataDir: restored, pincode: null });
    hubs.push(hub);
    const controller = reconnect(hub.info.bridges[0]!.port!, pairing);
    assert.deepEqual(idMap(await controller.getAccessories()), ids);
    await controller.close();
  });
});

/** The archive rebuilt without the entries whose names match (checksums of the rest stay right). */
function without(archive: Buffer, drop: RegExp): Buffer {
  const first = archive.indexOf(0x0a);
  const second = archive.indexOf(0x0a, first + 1);
  const manifest = JSON.parse(archive.subarray(first + 1, second).toString('utf8')) as { entries: Array<{ name: string; size: number }> };
  const parts: Buffer[] = [];
  let offset = second + 1;
  const kept = manifest.entries.filter((entry) => {
    const data = archive.subarray(offset, offset + entry.size);
    offset += entry.size;
    if (drop.test(entry.name)) return false;
    parts.push(data);
    return true;
  });
  return Buffer.concat([archive.subarray(0, first + 1), Buffer.from(`${JSON.stringify({ ...manifest, entries: kept })}\n`), ...parts]);
}
