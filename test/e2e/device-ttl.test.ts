/**
 * Finding 14: `deviceTtl: "0"` in config.json removed every device at start. A TTL is refused below one
 * hour (and under a day without its unit), and the time the hub itself was not running never counts
 * as a device's silence.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { runHub } from '../helpers/data-dir.js';
import { eventually, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

const DAY = 86_400_000;
const dirs: string[] = [];
after(() => dirs.forEach(removeDataDir));

/** A stopped hub's data dir holding the given devices, each with a switch. */
async function dataDirWith(ids: string[]): Promise<string> {
  const hub = await startHub();
  dirs.push(hub.dataDir);
  for (const id of ids) {
    const device = await connectDevice(hub.info.mqtt.address, id);
    await device.publishAsync(`HomeKit/${id}/Switch/On`, '1', { qos: 1 });
    device.end(true);
  }
  await eventually(() => deviceIds(hub.dataDir).length === ids.length, 10_000, 'devices saved');
  assert.equal(await hub.stop(), 0);
  return hub.dataDir;
}

function deviceIds(dataDir: string): string[] {
  const result = cli(['devices', '--json', '--data-dir', dataDir]);
  if (result.status !== 0) throw new Error(result.stderr);
  return (JSON.parse(result.stdout) as Array<{ id: string }>).map((d) => d.id).sort();
}

describe('device TTL', { timeout: 240_000 }, () => {
  it('refuses deviceTtl "0" in config.json with a message naming the setting, and keeps every device', async () => {
    const dir = await dataDirWith(['kitchen', 'porch']);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ deviceTtl: '0' }));
    const run = await runHub(dir);
    assert.equal(run.started, false, `the hub started with deviceTtl "0":\n${run.output}`);
    assert.equal(run.code, 2);
    assert.match(run.output, /--device-ttl \(set by config\.json "deviceTtl"\): '0' is not valid; expected a duration such as 7d or 12h, from 1h to 3650d/);
    assert.match(run.output, /a bare number counts seconds/);
    assert.deepEqual(deviceIds(dir), ['kitchen', 'porch']);
  });

  it('does not count a long hub downtime as silence: devices seen just before it survive the restart', async () => {
    const dir = await dataDirWith(['survivor', 'silent']);
    // Simulated: the hub went down 20 days ago, a minute after it last heard `survivor`; `silent` had
    // already been quiet for 8 days of the hub running (more than the 7-day TTL) when it went down.
    const downSince = Date.now() - 20 * DAY;
    const db = new Database(join(dir, 'mqttkit.db'));
    const setLastSeen = (id: string, at: number) => {
      const row = db.prepare<[string], { doc: string }>('SELECT doc FROM devices WHERE id = ?').get(id)!;
      db.prepare('UPDATE devices SET doc = ? WHERE id = ?').run(JSON.stringify({ ...JSON.parse(row.doc), lastSeen: at, state: 'offline' }), id);
    };
    setLastSeen('survivor', downSince - 60_000);
    setLastSeen('silent', downSince - 8 * DAY);
    db.prepare("INSERT INTO settings (key, value) VALUES ('hub.aliveAt', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(downSince));
    db.close();

    const hub = await startHub({ dataDir: dir, args: ['--device-ttl', '7d'] });
    try {
      // The sweep still works: the device silent for 8 days while the hub ran goes (the first sweep may take a minute).
      await eventually(() => !deviceIds(dir).includes('silent'), 90_000, 'the device silent while the hub ran to be removed');
      assert.deepEqual(deviceIds(dir), ['survivor'], 'a device is not removed for the time the hub was off');
      const back = await connectDevice(hub.info.mqtt.address, 'survivor');
      back.end(true);
    } finally {
      await hub.stop();
    }
  });
});
