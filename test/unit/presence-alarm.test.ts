/**
 * Issue 13: presence and expiry without a poll. [P-20] a silent device goes offline and [P-13] an
 * expired one is removed on time when the only timer is the one alarm armed for the earliest moment;
 * an event that brings a moment forward (a shorter keepalive, a sleeper's wake) re-arms it. Real
 * registry, bus, SQLite store and feature scope; the clock is the real one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { EventBus } from '../../src/core/events.js';
import { ingest } from '../../src/core/ingest.js';
import { DeviceRegistry } from '../../src/core/registry.js';
import { HapCatalog } from '../../src/homekit/catalog.js';
import { FeatureRunner } from '../../src/hub/feature.js';
import type { HubContext } from '../../src/hub/features/context.js';
import { PresenceFeature } from '../../src/hub/features/presence.js';
import { openSqliteEngine } from '../../src/store/engine/open.js';
import { StateStore } from '../../src/store/state-store.js';
import { eventually } from '../helpers/hub-process.js';

const dir = mkdtempSync(join(tmpdir(), 'mqttkit-presence-alarm-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let dbs = 0;

/** The presence feature on a fresh registry and store, with the repeating timers it creates recorded. */
async function setup(deviceTtlMs: number) {
  const bus = new EventBus((event, error) => {
    throw new Error(`listener for ${event} failed: ${String(error)}`);
  });
  const registry = new DeviceRegistry(bus, new HapCatalog(), { writeTimeoutMs: 1000 });
  const db = openSqliteEngine(join(dir, `state-${dbs++}.db`));
  const store = new StateStore(db);
  const intervals: number[] = [];
  const setIntervalBefore = globalThis.setInterval;
  globalThis.setInterval = ((handler: () => void, ms: number) => {
    intervals.push(ms);
    return setIntervalBefore(handler, ms);
  }) as typeof setInterval;
  const runner = new FeatureRunner(bus, pino({ level: 'silent' }));
  // The feature reads only these from the hub's context.
  const ctx = { registry, store, options: { deviceTtlMs } } as unknown as HubContext;
  try {
    await runner.start(new PresenceFeature(ctx));
  } finally {
    globalThis.setInterval = setIntervalBefore;
  }
  const send = (topic: string, payload: string) => ingest(registry, { topic, payload: Buffer.from(payload), live: true });
  const stop = async () => {
    await runner.stop();
    await db.close();
  };
  return { registry, send, intervals, stop };
}

describe('presence and expiry by one armed alarm', { timeout: 60_000 }, () => {
  it('takes a silent device offline after 1.5 keepalives with no repeating timer under a minute', async () => {
    const { registry, send, intervals, stop } = await setup(3_600_000);
    try {
      assert.ok(send('HomeKit/quiet/Switch/On', '1').ok);
      assert.ok(send('HomeKit/quiet/$keepalive', '1').ok);
      const spoke = Date.now();
      await eventually(() => registry.get('quiet')?.state === 'offline', 10_000, 'offline after its keepalive');
      const silent = Date.now() - spoke;
      assert.ok(silent >= 1500, `offline only after 1.5 × 1 s of silence, not after ${silent} ms`);
      assert.deepEqual(
        intervals.filter((ms) => ms < 60_000),
        [],
        'the only repeating timer is the once-a-minute alive note [D-5]',
      );
    } finally {
      await stop();
    }
  });

  it('brings the alarm forward when a device announces a shorter keepalive', async () => {
    const { registry, send, stop } = await setup(3_600_000);
    try {
      send('HomeKit/slow/$keepalive', '3600'); // the alarm is armed for 90 minutes from now
      send('HomeKit/slow/$keepalive', '1'); // announced on the bus: armed again, for 1.5 s
      await eventually(() => registry.get('slow')?.state === 'offline', 10_000, 'offline after the shorter keepalive');
    } finally {
      await stop();
    }
  });

  it('removes a device silent past the TTL on time, and counts a sleeper from its wake time', async () => {
    const { registry, send, stop } = await setup(1500);
    try {
      send('HomeKit/gone/Switch/On', '1');
      send('HomeKit/sleeper/Switch/On', '1');
      send('HomeKit/sleeper/$state', 'sleeping 2');
      const spoke = Date.now();
      await eventually(() => registry.get('gone') === undefined, 10_000, 'the silent device removed');
      const gone = Date.now() - spoke;
      assert.ok(gone >= 1500, `removed only after the TTL, not after ${gone} ms`);
      assert.ok(registry.get('sleeper'), 'a sleeper counts from its wake time (2 s + the TTL)');
      await eventually(() => registry.get('sleeper') === undefined, 10_000, 'the sleeper removed after its wake time and the TTL');
      const slept = Date.now() - spoke;
      assert.ok(slept >= 3500, `a sleeper removed only after its wake time and the TTL, not after ${slept} ms`);
    } finally {
      await stop();
    }
  });
});
