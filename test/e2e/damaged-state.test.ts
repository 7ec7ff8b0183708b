/**
 * Finding 12: a damaged or missing store beside others that exist is refused by name, never replaced
 * by a new install (new setup code, no accounts, paired iPhones and AIDs lost). `--reset-state` moves
 * the damaged files aside and starts with what is left.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { homekitFile, runHub, snapshot } from '../helpers/data-dir.js';
import { idMap, type PairingData, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

const dirs: string[] = [];
function copyOf(source: string): string {
  const dir = tempDataDir();
  dirs.push(dir);
  cpSync(source, dir, { recursive: true });
  return dir;
}
after(() => dirs.forEach(removeDataDir));

describe('a damaged store is refused at start, by name', { timeout: 240_000 }, () => {
  let pristine: string;
  let pairing: PairingData;
  let ids: string[];

  before(async () => {
    const hub = await startHub();
    pristine = hub.dataDir;
    dirs.push(pristine);
    for (const id of ['lamp', 'sensor']) {
      const device = await connectDevice(hub.info.mqtt.address, id);
      await device.publishAsync(`HomeKit/${id}/${id === 'lamp' ? 'Lightbulb/On' : 'TemperatureSensor/CurrentTemperature'}`, '1', { qos: 1 });
      device.end(true);
    }
    const paired = await pair(hub.info.bridges[0]!.port!);
    pairing = paired.pairing;
    const db = await eventually(
      async () => {
        const current = await paired.client.getAccessories();
        return current.accessories.length === 3 ? current : undefined;
      },
      10_000,
      'two bridged accessories',
    );
    ids = idMap(db);
    await paired.client.close();
    assert.equal(await hub.stop(), 0);
  });

  it('an intact copy starts with the same pairing and ids (no false alarm)', async () => {
    const hub = await startHub({ dataDir: copyOf(pristine) });
    try {
      const client = reconnect(hub.info.bridges[0]!.port!, pairing);
      assert.deepEqual(idMap(await client.getAccessories()), ids);
      await client.close();
    } finally {
      await hub.stop();
    }
  });

  const damages: Array<[string, (dir: string) => string, RegExp]> = [
    ['a zero-length mqttkit.db', (dir) => (truncateSync(join(dir, 'mqttkit.db'), 0), 'mqttkit.db'), /mqttkit\.db is empty/],
    [
      'a truncated AccessoryInfo file (keys and pairings)',
      (dir) => cut(dir, homekitFile(dir, 'AccessoryInfo')),
      /AccessoryInfo\.[0-9A-F]{12}\.json is not valid JSON/,
    ],
    [
      'a truncated IdentifierCache file (AIDs)',
      (dir) => cut(dir, homekitFile(dir, 'IdentifierCache')),
      /IdentifierCache\.[0-9A-F]{12}\.json is not valid JSON/,
    ],
    [
      'a deleted AccessoryInfo file',
      (dir) => (rmSync(join(dir, homekitFile(dir, 'AccessoryInfo'))), 'AccessoryInfo'),
      /AccessoryInfo\.[0-9A-F]{12}\.json is missing/,
    ],
    [
      'a deleted mqttkit.db beside HomeKit keys',
      (dir) => (rmSync(join(dir, 'mqttkit.db')), 'mqttkit.db'),
      /mqttkit\.db is missing, while homekit\/ holds HomeKit keys/,
    ],
    [
      'a truncated broker-credentials.json',
      (dir) => (writeFileSync(join(dir, 'broker-credentials.json'), '{"username": "mqttkit-hub", "pass'), 'broker-credentials.json'),
      /broker-credentials\.json is not valid JSON/,
    ],
    [
      'a file that is not SQLite as mqttkit.db',
      (dir) => (writeFileSync(join(dir, 'mqttkit.db'), 'x'.repeat(4096)), 'mqttkit.db'),
      /mqttkit\.db is not an SQLite database/,
    ],
  ];
  for (const [what, damage, message] of damages) {
    it(`refuses ${what}: exit code not 0, the file and --reset-state named, nothing changed`, async () => {
      const dir = copyOf(pristine);
      const named = damage(dir);
      const before = snapshot(dir);
      const run = await runHub(dir);
      assert.equal(run.started, false, `the hub started as a new install on ${what}:\n${run.output}`);
      assert.notEqual(run.code, 0);
      assert.ok(run.output.includes(named.replace('homekit/', '')), `names ${named}:\n${run.output}`);
      assert.match(run.output, message);
      assert.match(run.output, /--reset-state/);
      assert.deepEqual(snapshot(dir), before, 'nothing in the data dir was created, removed or overwritten');
    });
  }

  it('management commands refuse a zero-length mqttkit.db too, instead of making it a new database', () => {
    const dir = copyOf(pristine);
    truncateSync(join(dir, 'mqttkit.db'), 0);
    const before = snapshot(dir);
    const result = cli(['device', 'list', '--data-dir', dir]);
    assert.notEqual(result.status, 0, result.stdout);
    assert.match(result.stderr, /mqttkit\.db is empty/);
    assert.deepEqual(snapshot(dir), before);
  });

  it('--reset-state moves a truncated mqttkit.db (and the keys it owned) aside and starts fresh', async () => {
    const dir = copyOf(pristine);
    truncateSync(join(dir, 'mqttkit.db'), 0);
    const keys = readFileSync(join(dir, homekitFile(dir, 'AccessoryInfo')));
    const run = await runHub(dir, ['--reset-state']);
    assert.ok(run.started, run.output);
    assert.match(run.output, /--reset-state: moved mqttkit\.db to mqttkit\.db\.damaged-/);
    const aside = readdirSync(dir).filter((f) => f.startsWith('mqttkit.db.damaged-'));
    assert.equal(aside.length, 1);
    assert.equal(readFileSync(join(dir, aside[0]!)).length, 0, 'the damaged file is kept as it was');
    const keptKeys = readdirSync(join(dir, 'homekit')).find((f) => f.startsWith('AccessoryInfo.') && f.includes('.damaged-'));
    assert.ok(keptKeys, 'the old bridge keys are kept aside, not deleted');
    assert.deepEqual(readFileSync(join(dir, 'homekit', keptKeys)), keys);
  });

  it('--reset-state moves a truncated AccessoryInfo aside, keeps accounts and AIDs, and the bridge can pair again', async () => {
    const dir = copyOf(pristine);
    const file = homekitFile(dir, 'AccessoryInfo');
    cut(dir, file);
    const damaged = readFileSync(join(dir, file));
    const run = await runHub(dir, ['--reset-state']);
    assert.ok(run.started, run.output);
    assert.match(run.output, /--reset-state: moved homekit\/AccessoryInfo\.[0-9A-F]{12}\.json to homekit\/AccessoryInfo\.[0-9A-F]{12}\.json\.damaged-/);
    const aside = readdirSync(join(dir, 'homekit')).filter((f) => f.includes('.damaged-'));
    assert.equal(aside.length, 1);
    assert.deepEqual(readFileSync(join(dir, 'homekit', aside[0]!)), damaged);

    // Closed registration: the device gets in only if its account survived.
    const hub = await startHub({ dataDir: dir, args: ['--registration', 'closed'] });
    try {
      // The old keys are gone, so the Home app pairs again; the ids it knew are unchanged.
      const { client } = await pair(hub.info.bridges[0]!.port!);
      assert.deepEqual(idMap(await client.getAccessories()), ids);
      await client.close();
      const device = await connectDevice(hub.info.mqtt.address, 'lamp');
      device.end(true);
    } finally {
      await hub.stop();
    }
  });

  it('a new, empty data dir still starts as a fresh install', async () => {
    const dir = tempDataDir();
    dirs.push(dir);
    const run = await runHub(dir);
    assert.ok(run.started, run.output);
    assert.ok(existsSync(join(dir, 'mqttkit.db')));
  });
});

/** Cuts a file to half its length, as a crash in the middle of a plain write would. */
function cut(dir: string, file: string): string {
  const path = join(dir, file);
  truncateSync(path, Math.floor(readFileSync(path).length / 2));
  return file;
}
