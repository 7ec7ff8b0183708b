/** [D-5] Only silence while the hub ran counts against a device's TTL. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EventBus } from '../../src/core/events.js';
import { ingest } from '../../src/core/ingest.js';
import { DeviceRegistry } from '../../src/core/registry.js';
import { HapCatalog } from '../../src/homekit/catalog.js';
import { Downtime, downtimeWithin } from '../../src/store/downtime.js';
import { openSqliteEngine } from '../../src/store/engine/open.js';
import { StateStore } from '../../src/store/state-store.js';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'mqttkit-downtime-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('hub downtime', () => {
  it('measures the overlap of a span with the downtime spans', () => {
    const spans = [
      [10, 20],
      [30, 40],
    ] as const;
    assert.equal(downtimeWithin(spans, 0, 100), 20);
    assert.equal(downtimeWithin(spans, 15, 35), 10);
    assert.equal(downtimeWithin(spans, 21, 29), 0);
    assert.equal(downtimeWithin(spans, 50, 40), 0, 'an empty span (a sleeper woken in the future)');
  });

  it('records the gap since the last heartbeat at start, across restarts, and sweeps by observed silence', async () => {
    const db = openSqliteEngine(join(dir, 'mqttkit.db'));
    const store = new StateStore(db);
    let now = 100 * DAY;
    const first = await Downtime.load(store, () => now);
    assert.equal(await first.start(undefined), undefined, 'a new hub has no downtime');
    now += 1 * DAY;
    await first.heartbeat(); // last sign of life, then the hub is off for 10 days
    now += 10 * DAY;
    const second = await Downtime.load(store, () => now);
    assert.deepEqual(await second.start(undefined), [101 * DAY, 111 * DAY]);
    assert.equal(second.within(90 * DAY, now), 10 * DAY);

    const bus = new EventBus(() => {});
    const registry = new DeviceRegistry(bus, new HapCatalog(), { writeTimeoutMs: 1000, now: () => now });
    now = 100.5 * DAY;
    ingest(registry, { topic: 'HomeKit/seen/Switch/On', payload: Buffer.from('1'), live: true });
    now = 96 * DAY;
    ingest(registry, { topic: 'HomeKit/quiet/Switch/On', payload: Buffer.from('1'), live: true });
    now = 111 * DAY;
    // `seen`: 10.5 days ago, but 10 of them the hub was off. `quiet`: 15 days ago, 5 of them with the hub on.
    assert.deepEqual(
      registry.sweep(3 * DAY, (from, to) => second.within(from, to)),
      ['quiet'],
    );
    assert.deepEqual(registry.sweep(3 * DAY), ['seen'], 'without the downtime both would have gone');

    // The spans survive a restart and are pruned once no device reaches back to them.
    const third = await Downtime.load(store, () => now);
    assert.equal(third.within(0, now), 10 * DAY);
    await third.prune(112 * DAY);
    assert.equal((await Downtime.load(store, () => now)).within(0, now), 0);
    await db.close();
  });
});
