/**
 * Issue 15: the questions people ask of the history and of device info (src/store/queries.ts) give the
 * same answers on SQLite (JSON1) and PostgreSQL (JSONB), on known data written through the stores as
 * the hub writes it. PostgreSQL is a throwaway cluster (skipped only outside CI when not installed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { DeviceRecord } from '../../src/core/device.js';
import { openDatabase } from '../../src/store/database.js';
import { PostgresEngine } from '../../src/store/engine/postgres-engine.js';
import type { SqlEngine } from '../../src/store/engine/sql-engine.js';
import { SqliteEngine } from '../../src/store/engine/sqlite-engine.js';
import { HistoryStore } from '../../src/store/history-store.js';
import { OtaStore } from '../../src/store/ota-store.js';
import { queryInput, StoreQueries } from '../../src/store/queries.js';
import { StateStore } from '../../src/store/state-store.js';
import { postgresBinDir, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'mqttkit-queries-'));
let postgres: RunningPostgres | undefined;
let files = 0;

before(async () => {
  const bin = postgresBinDir();
  if (bin) postgres = await startPostgres(bin);
});
after(async () => {
  await postgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const ENGINES: Array<{ name: string; open: (t: TestContext) => Promise<SqlEngine | undefined> }> = [
  { name: 'SQLite', open: async () => new SqliteEngine(openDatabase(join(dir, `${++files}.db`))) },
  {
    name: 'PostgreSQL',
    open: async (t) => {
      if (!postgres) {
        requirePostgres(t);
        return undefined;
      }
      return PostgresEngine.open(await postgres.createDatabase());
    },
  },
];

const T0 = 1_764_000_000_000; // over 2^31 ms, as every stored time is
const MIN = 60_000;
const temperature = { deviceId: 'kitchen', service: 'TemperatureSensor', index: 0, characteristic: 'CurrentTemperature' };
const record = (id: string, firmware?: string): DeviceRecord => ({
  id,
  meta: firmware === undefined ? {} : { firmware },
  state: 'online',
  lastSeen: T0,
  createdAt: T0,
  services: [],
});
const series = (over: Partial<Parameters<StoreQueries['series']>[0]> = {}) => ({
  device: 'kitchen',
  service: 'TemperatureSensor',
  index: 0,
  characteristic: 'CurrentTemperature',
  from: T0,
  to: T0 + 20 * MIN,
  bucketMs: 5 * MIN,
  ...over,
});

for (const { name, open } of ENGINES) {
  describe(`queries on ${name}`, { timeout: 120_000 }, () => {
    const withEngine = async (t: TestContext, body: (engine: SqlEngine) => Promise<void>) => {
      const engine = await open(t);
      if (!engine) return;
      try {
        await body(engine);
      } finally {
        await engine.close();
      }
    };

    it('series: avg, min, max and count per bucket from the range start; empty buckets left out; other series, earlier and later samples not counted', (t) =>
      withEngine(t, async (engine) => {
        const history = new HistoryStore(engine);
        // Minutes 0-9 hold values 0-9 (buckets 0 and 1), minutes 15-19 nothing, minute 20 is the range's end (excluded).
        const points = Array.from({ length: 10 }, (_, k) => ({ ref: temperature, at: T0 + k * MIN, value: k }));
        points.push({ ref: temperature, at: T0 - 1, value: 1000 }, { ref: temperature, at: T0 + 20 * MIN, value: 1000 });
        points.push({ ref: { ...temperature, deviceId: 'hall' }, at: T0 + MIN, value: -50 }, { ref: { ...temperature, index: 1 }, at: T0 + MIN, value: -50 });
        points.push({ ref: { ...temperature, characteristic: 'StatusActive' }, at: T0 + MIN, value: 1 });
        await history.add(points);
        const buckets = await new StoreQueries(engine).series(series());
        assert.deepEqual(buckets, [
          { start: T0, avg: 2, min: 0, max: 4, count: 5 },
          { start: T0 + 5 * MIN, avg: 7, min: 5, max: 9, count: 5 },
        ]);
        // A range starting mid-bucket: buckets count from its start, not from the epoch.
        assert.deepEqual(
          (await new StoreQueries(engine).series(series({ from: T0 + 3 * MIN, to: T0 + 9 * MIN, bucketMs: 3 * MIN }))).map((b) => [b.start, b.count, b.avg]),
          [
            [T0 + 3 * MIN, 3, 4],
            [T0 + 6 * MIN, 3, 7],
          ],
        );
        // A range ending mid-bucket: the last bucket ends with the range (minute 7 is not in it).
        assert.deepEqual(
          (await new StoreQueries(engine).series(series({ to: T0 + 7 * MIN }))).map((b) => [b.start, b.count, b.avg, b.max]),
          [
            [T0, 5, 2, 4],
            [T0 + 5 * MIN, 2, 5.5, 6],
          ],
        );
        assert.deepEqual(await new StoreQueries(engine).series(series({ device: 'nobody' })), []);
      }));

    it('memory: devices whose last stats answer says mem_free under the threshold, lowest first; no stats, null and at-the-threshold not listed', (t) =>
      withEngine(t, async (engine) => {
        const ota = new OtaStore(engine, () => {});
        const stats = (mem_free: number | null, at = T0) => ({ stats: { at, uptime_s: 60, reconnects: 0, published: 10, received: 2, mem_free } });
        await ota.updateInfo('low', stats(18_000, T0 + 5));
        await ota.updateInfo('lower', stats(9_500));
        await ota.updateInfo('fine', stats(80_000));
        await ota.updateInfo('edge', stats(20_000));
        await ota.updateInfo('cannot-tell', stats(null));
        await ota.updateInfo('never-asked', { firmware: '1.27.0', answersCommands: true });
        // A newer answer replaces the older one; the rest of what is known stays.
        await ota.updateInfo('recovered', stats(5_000));
        await ota.updateInfo('recovered', { firmware: '1.27.0' });
        await ota.updateInfo('recovered', stats(70_000));
        assert.deepEqual(await new StoreQueries(engine).memory(20_000), [
          { device: 'lower', memFree: 9_500, statsAt: T0 },
          { device: 'low', memFree: 18_000, statsAt: T0 + 5 },
        ]);
        assert.equal((await ota.info('recovered')).firmware, '1.27.0');
        assert.deepEqual(
          (await new StoreQueries(engine).memory(1_000_000)).map((d) => d.device),
          ['lower', 'low', 'edge', 'recovered', 'fine'],
        );
      }));

    it("firmware: every known device whose app version ($firmware, else getversion's app) or runtime differs, unknown versions listed as null", (t) =>
      withEngine(t, async (engine) => {
        const state = new StateStore(engine);
        const ota = new OtaStore(engine, () => {});
        await state.saveDevices([
          record('a-current', '1.4.2'),
          record('b-old', '1.4.1'),
          record('c-app-only'),
          record('d-silent'),
          record('e-runtime-old', '1.4.2'),
        ]);
        await ota.updateInfo('a-current', { firmware: '1.27.0', app: '1.0.0' }); // $firmware wins over getversion's app [P-22]
        await ota.updateInfo('b-old', { firmware: '1.27.0' });
        await ota.updateInfo('c-app-only', { firmware: '1.27.0', app: '1.4.2' });
        await ota.updateInfo('e-runtime-old', { firmware: '1.26.1' });
        await ota.updateInfo('removed-device', { firmware: '1.0.0', app: '0.1' }); // info without a device: not a device
        const queries = new StoreQueries(engine);
        assert.deepEqual(await queries.firmware('1.4.2', 'app'), [
          { device: 'b-old', version: '1.4.1' },
          { device: 'd-silent', version: null },
        ]);
        assert.deepEqual(await queries.firmware('1.27.0', 'runtime'), [
          { device: 'd-silent', version: null },
          { device: 'e-runtime-old', version: '1.26.1' },
        ]);
        // A version is compared as text, whole: no pattern, no injection.
        assert.equal((await queries.firmware("1.4.2' OR '1'='1", 'app')).length, 5);
      }));

    it('what a device says with a NUL in it is kept (as U+FFFD) and read back on both engines', (t) =>
      withEngine(t, async (engine) => {
        const ota = new OtaStore(engine, () => {});
        await ota.updateInfo('nul', { lastException: 'Traceback\u0000 here' });
        assert.equal((await ota.info('nul')).lastException, 'Traceback\uFFFD here');
      }));
  });
}

describe('query inputs are bounded before any SQL runs ([A-10])', () => {
  const problem = (input: Record<string, string>) => {
    const parsed = queryInput.safeParse(input);
    return parsed.success ? undefined : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  };
  const base = { kind: 'series', device: 'kitchen', service: 'TemperatureSensor', characteristic: 'CurrentTemperature' };
  it('a range of more than 5000 buckets, a bucket under a second, a range that ends before it starts, a bad threshold or kind are named', () => {
    assert.match(
      problem({ ...base, from: '0', to: String(5001 * 60_000), bucket: '1m' }) ?? '',
      /^bucket: the range holds 5001 buckets .* over the limit of 5000/,
    );
    assert.equal(problem({ ...base, from: '0', to: String(5000 * 60_000), bucket: '1m' }), undefined);
    assert.match(problem({ ...base, bucket: '500ms' }) ?? '', /^bucket: from 1s to 366d/);
    assert.match(problem({ ...base, bucket: '5 minutes' }) ?? '', /^bucket: a duration such as 5m/);
    assert.match(problem({ ...base, from: '2000', to: '1000', bucket: '1s' }) ?? '', /^from: must be before to/);
    assert.match(problem({ ...base, device: '../x', bucket: '1m' }) ?? '', /^device: not a device id/);
    assert.match(problem({ kind: 'memory', below: '0' }) ?? '', /^below: at least 1/);
    assert.match(problem({ kind: 'memory', below: String(2 ** 40) }) ?? '', /^below: at most 4294967296/);
    assert.match(problem({ kind: 'firmware', version: 'x'.repeat(201) }) ?? '', /^version: at most 200 characters/);
    assert.match(problem({ kind: 'everything' }) ?? '', /^kind: one of series, memory, firmware/);
  });
});
