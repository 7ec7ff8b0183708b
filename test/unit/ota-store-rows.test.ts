/**
 * issue 13: database rows holding JSON (ota_jobs.spec/progress, rollouts.spec, device_info.info) are
 * checked when read. A damaged row is named (table, row, field) and its job ends as failed; the other
 * jobs still run, and nothing throws at the hub.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openDatabase } from '../../src/store/database.js';
import { SqliteEngine } from '../../src/store/engine/sqlite-engine.js';
import { OtaStore } from '../../src/store/ota-store.js';

const dir = mkdtempSync(join(tmpdir(), 'mqttkit-rows-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fresh(name: string) {
  const db = openDatabase(join(dir, `${name}.db`));
  const damaged: string[] = [];
  // the two-argument form is this change's; older code ignores the second argument
  const store = new (OtaStore as unknown as new (db: unknown, onDamaged: (w: string, p: string) => void) => OtaStore)(new SqliteEngine(db), (where, problem) =>
    damaged.push(`${where}: ${problem}`),
  );
  return { db, store, damaged };
}

describe('OTA rows holding JSON', () => {
  it('a job whose spec is not JSON ends as failed, named by its row; the good job still runs', async () => {
    const { db, store } = fresh('spec');
    const good = await store.addJob('sync', 'esp32_a', { manifest: '/tmp/m.json' });
    const bad = await store.addJob('sync', 'esp32_b', { manifest: '/tmp/m.json' });
    db.prepare('UPDATE ota_jobs SET spec = ? WHERE id = ?').run('{"manifest": "/tmp/m', bad);
    let unfinished: number[] = [];
    unfinished = (await store.unfinishedJobs()).map((j) => j.id);
    assert.deepEqual(unfinished, [good]);
    const job = (await store.job(bad))!;
    assert.equal(job.state, 'failed');
    assert.match(job.message ?? '', new RegExp(`ota_jobs row ${bad}: spec: not valid JSON.*queue it again`));
    await assert.doesNotReject(store.jobs());
    db.close();
  });

  it('a job whose spec has a field of the wrong type ends as failed, naming the field', async () => {
    const { db, store } = fresh('field');
    const bad = await store.addJob('push', 'esp32_b', { file: '/tmp/x', as: 'main.py', reboot: true });
    db.prepare('UPDATE ota_jobs SET spec = ? WHERE id = ?').run('{"file": 5, "as": "main.py", "reboot": true}', bad);
    assert.deepEqual(await store.jobsIn('queued'), []);
    assert.match((await store.job(bad))!.message ?? '', /ota_jobs row \d+: spec: file: /);
    db.close();
  });

  it('damaged progress does not stop the job list', async () => {
    const { db, store } = fresh('progress');
    const id = await store.addJob('sync', 'esp32_a', { manifest: '/tmp/m.json' });
    db.prepare('UPDATE ota_jobs SET progress = ? WHERE id = ?').run('{"files":', id);
    await assert.doesNotReject(store.jobs());
    assert.match((await store.job(id))!.message ?? '', /ota_jobs row \d+: progress: /);
    db.close();
  });

  it('a damaged rollout ends as failed, named; a damaged device_info row is named and read as empty', async () => {
    const { db, store, damaged } = fresh('rollout');
    const id = await store.addRollout({ manifest: '/tmp/m.json', pattern: '*', canary: 1, concurrency: 2, devices: ['esp32_a'] });
    db.prepare('UPDATE rollouts SET spec = ? WHERE id = ?').run('{"manifest": "/tmp/m.json", "devices": "esp32_a"}', id);
    const rollout = await store.rollout(id);
    assert.equal(rollout!.state, 'failed');
    assert.match(rollout!.message ?? '', new RegExp(`rollouts row ${id}: spec: `));
    assert.equal((await store.rollout(id))!.state, 'failed');

    await store.updateInfo('esp32_a', { firmware: '1.0' });
    db.prepare('UPDATE device_info SET info = ? WHERE device = ?').run('{"firmware": ', 'esp32_a');
    await assert.doesNotReject(store.info('esp32_a'));
    assert.deepEqual(await store.info('esp32_a'), {});
    assert.ok(
      damaged.some((d) => /device_info row esp32_a/.test(d)),
      damaged.join('\n'),
    );
    db.close();
  });

  it('a device answering null for a field is read back without it (not as null)', async () => {
    const { db, store } = fresh('null');
    db.prepare('INSERT INTO device_info (device, info, updated_at) VALUES (?, ?, ?)').run(
      'esp32_a',
      '{"firmware":"1.27","app":null,"otaProtocol":2}',
      Date.now(),
    );
    assert.deepEqual(await store.info('esp32_a'), { firmware: '1.27', app: undefined, otaProtocol: 2 });
    db.close();
  });
});
