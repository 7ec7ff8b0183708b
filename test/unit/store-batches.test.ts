/**
 * Issue 13: under a 500-device load the event latency of another device rose to p99 17–26 ms because the
 * hub wrote each second's values in one long transaction and checkpointed the WAL on its event loop.
 * Batches are now written in slices with the event loop free between them, and checkpoints run in a
 * thread of their own. These tests hold the properties; the latency itself is measured by `npm run bench`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { EventBus } from '../../src/core/events.js';
import { ingest } from '../../src/core/ingest.js';
import { DeviceRegistry } from '../../src/core/registry.js';
import { HapCatalog } from '../../src/homekit/catalog.js';
import { openDatabase } from '../../src/store/database.js';
import { SqliteEngine } from '../../src/store/engine/sqlite-engine.js';
import { HistoryRecorder, POINTS_PER_SLICE } from '../../src/store/history-recorder.js';
import { HistoryStore } from '../../src/store/history-store.js';
import { DEVICES_PER_SLICE, RegistryPersistence } from '../../src/store/registry-persistence.js';
import { StateStore } from '../../src/store/state-store.js';
import { DEFAULT_CHECKPOINT_TIMING, WalCheckpointer } from '../../src/store/wal-checkpointer.js';
import { eventually } from '../helpers/hub-process.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-batches-'));
  dirs.push(dir);
  const file = join(dir, 'mqttkit.db');
  const db = openDatabase(file);
  const engine = new SqliteEngine(db);
  const bus = new EventBus((event, error) => {
    throw new Error(`listener for ${event} failed: ${String(error)}`);
  });
  const registry = new DeviceRegistry(bus, new HapCatalog(), { writeTimeoutMs: 1000 });
  const send = (topic: string, payload: string) => ingest(registry, { topic, payload: Buffer.from(payload), live: true });
  return { dir, file, db, engine, bus, registry, send };
}

/** Counts the turns of the event loop while `until` is false: each turn is a chance for MQTT and HomeKit I/O. */
async function turnsUntil(until: () => boolean): Promise<number> {
  let turns = 0;
  while (!until()) {
    await new Promise((resolve) => setImmediate(resolve));
    turns++;
    if (turns > 10_000) throw new Error('never finished');
  }
  return turns;
}

describe('batched writes under load', () => {
  it("writes a second's changes of 500 devices in slices, the event loop free between them, and every device on disk", async () => {
    const { db, engine, bus, registry, send } = setup();
    const store = new StateStore(engine);
    const commits: number[] = [];
    const persistence = new RegistryPersistence(bus, registry, store, 20, () => commits.push(Date.now()));
    const sizes: number[] = [];
    const save = store.saveDevices.bind(store);
    store.saveDevices = (devices) => {
      const list = [...devices];
      sizes.push(list.length);
      return save(list);
    };
    persistence.start();
    for (let i = 0; i < 500; i++) send(`HomeKit/load-${i}/TemperatureSensor/CurrentTemperature`, '20');
    await new Promise((resolve) => setTimeout(resolve, 30)); // the new devices, written at once
    sizes.length = 0;
    commits.length = 0;
    for (let i = 0; i < 500; i++) send(`HomeKit/load-${i}/TemperatureSensor/CurrentTemperature`, '21.5');
    const turns = await turnsUntil(() => sizes.reduce((a, b) => a + b, 0) >= 500);
    assert.ok(Math.max(...sizes) <= DEVICES_PER_SLICE, `one write held ${Math.max(...sizes)} devices`);
    assert.ok(turns >= 500 / DEVICES_PER_SLICE - 1, `the batch took ${turns} turns of the event loop`);
    assert.equal(commits.length, sizes.length, 'the checkpointer is told of every commit');
    await persistence.stop();
    const saved = await new StateStore(engine).loadDevices();
    assert.equal(saved.length, 500);
    assert.ok(saved.every((d) => d.services[0]!.values.CurrentTemperature === 21.5));
    db.close();
  });

  it('writes a value change that arrives while the slices run, as it is then, and everything left at stop', async () => {
    const { db, engine, bus, registry, send } = setup();
    const store = new StateStore(engine);
    const persistence = new RegistryPersistence(bus, registry, store, 10);
    persistence.start();
    for (let i = 0; i < 200; i++) send(`HomeKit/d-${i}/TemperatureSensor/CurrentTemperature`, '20');
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 200; i++) send(`HomeKit/d-${i}/TemperatureSensor/CurrentTemperature`, '22');
    await new Promise((resolve) => setTimeout(resolve, 12));
    send('HomeKit/d-199/TemperatureSensor/CurrentTemperature', '23');
    await persistence.stop();
    const saved = new Map((await new StateStore(engine).loadDevices()).map((d) => [d.id, d.services[0]!.values.CurrentTemperature]));
    assert.equal(saved.size, 200);
    assert.equal(saved.get('d-0'), 22);
    assert.equal(saved.get('d-199'), 23);
    db.close();
  });

  it('records history in slices too, and every point', async () => {
    const { db, engine, bus, send } = setup();
    const history = new HistoryStore(engine);
    const sizes: number[] = [];
    const add = history.add.bind(history);
    history.add = (points) => {
      sizes.push(points.length);
      return add(points);
    };
    const recorder = new HistoryRecorder(bus, history, 3_600_000);
    recorder.start();
    for (let i = 0; i < 1000; i++) send(`HomeKit/h-${i % 100}/TemperatureSensor/CurrentTemperature`, String(15 + (i % 7)));
    await eventually(() => sizes.reduce((a, b) => a + b, 0) >= 1000, 5000, 'the history batch');
    assert.ok(Math.max(...sizes) <= POINTS_PER_SLICE, `one write held ${Math.max(...sizes)} points`);
    await recorder.stop();
    const now = Date.now();
    const points = await history.series(
      { deviceId: 'h-3', service: 'TemperatureSensor', index: 0, characteristic: 'CurrentTemperature' },
      now - 60_000,
      now,
      1000,
    );
    assert.equal(points.length, 10);
    db.close();
  });

  const walCase = () => {
    const { dir, file, db, engine } = setup();
    const history = new HistoryStore(engine);
    const ref = { deviceId: 'wal', service: 'TemperatureSensor', index: 0, characteristic: 'CurrentTemperature' };
    let at = 0;
    const write = (n: number) => history.add(Array.from({ length: n }, () => ({ ref, at: at++, value: at })));
    /** A copy of the database file without its WAL shows only what was checkpointed into it. */
    const rowsInFileAlone = () => {
      const copy = join(dir, `alone-${Math.random()}.db`);
      copyFileSync(file, copy);
      const alone = new Database(copy, { readonly: true });
      try {
        return (alone.prepare('SELECT COUNT(*) AS n FROM history').get() as { n: number }).n;
      } finally {
        alone.close();
      }
    };
    return { db, write, rowsInFileAlone, log: pino({ level: 'silent' }) };
  };

  it("checkpoints on its own turn of the event loop a moment after a write, and SQLite's in-commit checkpoint is only a safety net", async () => {
    const { db, write, rowsInFileAlone, log } = walCase();
    const checkpointer = new WalCheckpointer(db, log, { ...DEFAULT_CHECKPOINT_TIMING, delayMs: 20 });
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 10_000);
    await write(2000);
    assert.equal(rowsInFileAlone(), 0, 'the rows are in the WAL only (the check can fail)');
    checkpointer.wrote();
    assert.equal(rowsInFileAlone(), 0, 'not inside the commit that wrote them');
    await eventually(() => rowsInFileAlone() === 2000, 10_000, 'the checkpoint');
    assert.equal(checkpointer.where, 'event loop');
    await checkpointer.stop();
    db.close();
  });

  it('moves checkpoints to a thread when the disk makes them slow, ends the thread when quiet and starts it on the next write', async () => {
    const { db, write, rowsInFileAlone, log } = walCase();
    // slowMs -1: every checkpoint counts as slow, as on an SD card.
    const checkpointer = new WalCheckpointer(db, log, { delayMs: 5, slowMs: -1, slowCount: 2, idleMs: 300 });
    for (let round = 1; round <= 2; round++) {
      await write(100);
      checkpointer.wrote();
      await eventually(() => rowsInFileAlone() === 100 * round, 10_000, `checkpoint ${round} on the event loop`);
    }
    assert.equal(checkpointer.where, 'thread (not running)', 'two slow checkpoints move them to the thread');
    await write(2000);
    checkpointer.wrote();
    assert.equal(checkpointer.where, 'thread');
    await eventually(() => rowsInFileAlone() === 2200, 10_000, 'the thread to copy the WAL into the database');
    await eventually(() => checkpointer.where === 'thread (not running)', 10_000, 'the thread to end when nothing more is written');
    await write(10);
    checkpointer.wrote();
    assert.equal(checkpointer.where, 'thread', 'a new write starts it again');
    await eventually(() => rowsInFileAlone() === 2210, 10_000, 'the next checkpoint in the new thread');
    await checkpointer.stop();
    db.close();
  });
});
