/**
 * Issue 15: one set of store classes, two engines. The same behaviour is asked of both: the SQLite
 * file in the data dir (the default) and PostgreSQL (`--database-url`, a throwaway cluster here).
 * PostgreSQL is skipped only outside CI when it is not installed (test/helpers/postgres.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { DeviceRecord } from '../../src/core/device.js';
import { EventBus } from '../../src/core/events.js';
import { ingest } from '../../src/core/ingest.js';
import { DeviceRegistry } from '../../src/core/registry.js';
import { HapCatalog } from '../../src/homekit/catalog.js';
import { AccountStore } from '../../src/store/account-store.js';
import { DATABASE_FILE, openDatabase, SCHEMA_VERSION } from '../../src/store/database.js';
import { Downtime } from '../../src/store/downtime.js';
import { PostgresEngine, postgresSchemaVersion } from '../../src/store/engine/postgres-engine.js';
import { POSTGRES_SCHEMA_VERSION } from '../../src/store/engine/postgres-migrations.js';
import { redactUrl, type SqlEngine } from '../../src/store/engine/sql-engine.js';
import { SqliteEngine } from '../../src/store/engine/sqlite-engine.js';
import { EspNowPairings } from '../../src/store/espnow-pairings.js';
import { HistoryStore } from '../../src/store/history-store.js';
import { OtaStore } from '../../src/store/ota-store.js';
import { copySqliteToPostgres } from '../../src/store/sqlite-to-postgres.js';
import { HA_CONFIGS_SETTING_PREFIX, HA_DISCOVERY_SETTING, HA_LEFTOVERS_SETTING, PUBLISHED_SETTING_PREFIX, StateStore } from '../../src/store/state-store.js';
import { WebStore } from '../../src/store/web-store.js';
import { postgresBinDir, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const dir = mkdtempSync(join(tmpdir(), 'mqttkit-contract-'));
let postgres: RunningPostgres | undefined;
let sqliteFiles = 0;

before(async () => {
  const bin = postgresBinDir();
  if (bin) postgres = await startPostgres(bin);
});
after(async () => {
  await postgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh, empty store on one engine: its place (file or URL) and a way to open it again. */
interface Fresh {
  engine: SqlEngine;
  reopen(): Promise<SqlEngine>;
  /** Sets the stored schema version behind the engine's back (a database from a newer mqttkit). */
  setVersion(version: number): Promise<void>;
  /** Opens it as the hub does; rejects as the hub would refuse it. */
  open(): Promise<SqlEngine>;
}

const ENGINES: Array<{ name: string; fresh: (t: TestContext) => Promise<Fresh | undefined> }> = [
  {
    name: 'SQLite',
    fresh: async () => {
      const file = join(dir, `${++sqliteFiles}-${DATABASE_FILE}`);
      const open = async () => new SqliteEngine(openDatabase(file));
      return {
        engine: await open(),
        reopen: open,
        open,
        setVersion: async (version) => {
          const raw = new Database(file);
          raw.pragma(`user_version = ${version}`);
          raw.close();
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    fresh: async (t) => {
      if (!postgres) {
        requirePostgres(t);
        return undefined;
      }
      const url = await postgres.createDatabase();
      const open = () => PostgresEngine.open(url);
      return {
        engine: await open(),
        reopen: open,
        open,
        setVersion: async (version) => {
          const engine = await PostgresEngine.connect(url);
          await engine.run('UPDATE schema_version SET version = ?', [version]);
          await engine.close();
        },
      };
    },
  },
];

/** A device as the hub records it: reported over MQTT to a real registry. */
const registry = new DeviceRegistry(new EventBus(() => {}), new HapCatalog(), { writeTimeoutMs: 1000 });
const device = (id: string, temperature: number): DeviceRecord => {
  ingest(registry, { topic: `HomeKit/${id}/TemperatureSensor/CurrentTemperature`, payload: Buffer.from(String(temperature)), live: true });
  return structuredClone(registry.get(id)!);
};

const T0 = 1_764_000_000_000; // late 2025 in ms: over 2^31, as every stored time is

for (const { name, fresh } of ENGINES) {
  describe(`the store on ${name}`, { timeout: 120_000 }, () => {
    /** Runs `body` on a fresh store, closed afterwards. */
    const withStore = async (t: TestContext, body: (engine: SqlEngine, store: Fresh) => Promise<void>) => {
      const store = await fresh(t);
      if (!store) return;
      try {
        await body(store.engine, store);
      } finally {
        await store.engine.close();
      }
    };

    it('accounts: created once, changed, listed in order, removed; a second create of a name is refused', (t) =>
      withStore(t, async (engine) => {
        const accounts = new AccountStore(engine);
        assert.equal(await accounts.create('esp-b', 'device', 'active', 'hash-b'), true);
        assert.equal(await accounts.create('esp-b', 'device', 'active', 'other'), false, 'the name exists: refused, not overwritten');
        assert.equal(await accounts.create('root', 'admin', 'active', 'hash-r'), true);
        assert.equal(await accounts.create('esp-a', 'device', 'pending', null), true);
        assert.deepEqual(
          (await accounts.list()).map((a) => [a.name, a.role, a.status]),
          [
            ['root', 'admin', 'active'],
            ['esp-a', 'device', 'pending'],
            ['esp-b', 'device', 'active'],
          ],
        );
        assert.equal((await accounts.get('esp-b'))?.secret, 'hash-b');
        await accounts.setSecret('esp-b', null);
        await accounts.setStatus('esp-a', 'active');
        await accounts.recordLogin('esp-a', '192.168.1.20');
        const a = await accounts.get('esp-a');
        assert.equal(a?.status, 'active');
        assert.equal(a?.lastAddress, '192.168.1.20');
        assert.ok(typeof a?.lastLoginAt === 'number' && a.lastLoginAt > T0, 'a time in ms, as a number');
        assert.equal((await accounts.get('esp-b'))?.secret, null);
        assert.equal(await accounts.remove('esp-b'), true);
        assert.equal(await accounts.remove('esp-b'), false);
        assert.equal(await accounts.get('esp-b'), undefined);
        await assert.rejects(accounts.create('x', 'nobody' as 'admin', 'active', null), 'a role the schema does not know is refused');
      }));

    it('devices and values: the newest record wins, a removed device leaves no bridge assignment behind', (t) =>
      withStore(t, async (engine) => {
        const store = new StateStore(engine);
        await store.saveDevices([device('d1', 20), device('d2', 21)]);
        await store.saveDevices([device('d1', 22.5)]);
        const loaded = await store.loadDevices();
        assert.deepEqual(
          loaded.map((d) => [d.id, d.services[0]!.values.CurrentTemperature]),
          [
            ['d1', 22.5],
            ['d2', 21],
          ],
        );
        await store.addBridge({ index: 0, username: '0A:1B:2C:3D:4E:5F' });
        await store.assignBridge('d1', 0);
        await store.assignBridge('d2', 0);
        await store.deleteDevice('d1');
        assert.deepEqual(
          (await store.loadDevices()).map((d) => d.id),
          ['d2'],
        );
        assert.deepEqual([...(await store.bridgeMembers())], [['d2', 0]]);
      }));

    it('a stored record that is not JSON is named and skipped, never fatal', (t) =>
      withStore(t, async (engine) => {
        const store = new StateStore(engine);
        await store.saveDevices([device('good', 20)]);
        await engine.run('INSERT INTO devices (id, doc, updated_at) VALUES (?, ?, ?)', ['bad', '{"id": "bad", ', T0]);
        const damaged: string[] = [];
        const loaded = await store.loadDevices((id) => damaged.push(id));
        assert.deepEqual(
          loaded.map((d) => d.id),
          ['good'],
        );
        assert.deepEqual(damaged, ['bad']);
      }));

    it('bridges and AIDs rows: bridges in order, a bridge username only once, assignments moved, the published mark set once', (t) =>
      withStore(t, async (engine) => {
        const store = new StateStore(engine);
        await store.addBridge({ index: 1, username: '0A:00:00:00:00:02' });
        await store.addBridge({ index: 0, username: '0A:00:00:00:00:01' });
        await assert.rejects(store.addBridge({ index: 2, username: '0A:00:00:00:00:01' }), 'a HAP username is one bridge');
        assert.deepEqual(await store.bridges(), [
          { index: 0, username: '0A:00:00:00:00:01' },
          { index: 1, username: '0A:00:00:00:00:02' },
        ]);
        await store.assignBridge('dev', 0);
        await store.assignBridge('dev', 1);
        assert.equal((await store.bridgeMembers()).get('dev'), 1);
        await assert.rejects(store.assignBridge('dev', 7), 'a device lives on a bridge that exists');
        await store.markBridgePublished('0a:00:00:00:00:01');
        const mark = await store.getSetting(`${PUBLISHED_SETTING_PREFIX}0A0000000001`);
        assert.ok(mark);
        await store.markBridgePublished('0A:00:00:00:00:01');
        assert.equal(await store.getSetting(`${PUBLISHED_SETTING_PREFIX}0A0000000001`), mark, 'the first mark stays');
      }));

    it('settings: read, written, overwritten; the hub downtime across restarts', (t) =>
      withStore(t, async (engine) => {
        const store = new StateStore(engine);
        assert.equal(await store.getSetting('homekit.pincode'), undefined);
        await store.setSetting('homekit.pincode', '031-45-154');
        await store.setSetting('homekit.pincode', '111-22-333');
        assert.equal(await store.getSetting('homekit.pincode'), '111-22-333');
        let now = T0;
        const first = await Downtime.load(store, () => now);
        assert.equal(await first.start(undefined), undefined);
        now += 60_000;
        await first.heartbeat();
        now += 3_600_000;
        const second = await Downtime.load(store, () => now);
        assert.deepEqual(await second.start(undefined), [T0 + 60_000, now]);
        assert.equal((await Downtime.load(store, () => now)).within(T0, now), 3_600_000);
      }));

    it('Home Assistant discovery prefixes [P-27]: none at first, written, kept across a reopen; a damaged record is named and reads as none', (t) =>
      withStore(t, async (engine, fresh) => {
        const store = new StateStore(engine);
        assert.deepEqual(await store.haDiscoveryPrefixes(), [], 'a hub that never ran discovery has none');
        await store.setHaDiscoveryPrefixes(['homeassistant', 'ha-old', 'homeassistant']);
        await store.setHaDiscoveryPrefixes(['ha-old', 'ha2']);
        const again = await fresh.reopen();
        try {
          assert.deepEqual(await new StateStore(again).haDiscoveryPrefixes(), ['ha-old', 'ha2']);
        } finally {
          await again.close();
        }
        await store.setHaDiscoveryPrefixes([]);
        assert.deepEqual(await store.haDiscoveryPrefixes(), [], 'cleared');
        await store.setSetting(HA_DISCOVERY_SETTING, '{"not":"a list"}');
        const problems: string[] = [];
        assert.deepEqual(await store.haDiscoveryPrefixes((p) => problems.push(p)), []);
        assert.match(problems.join(), new RegExp(HA_DISCOVERY_SETTING.replace(/\./g, '\\.')));
      }));

    it('Home Assistant discovery record [P-27]: configs per device and leftovers, in one transaction, kept across a reopen; a damaged key is named and reads as empty, the others still count', (t) =>
      withStore(t, async (engine, fresh) => {
        const store = new StateStore(engine);
        assert.deepEqual(await store.haDiscoveryRecord(), { configs: new Map(), leftovers: [] }, 'a hub that never ran discovery has none');
        const a = ['homeassistant/switch/dev-a/switch/config', 'homeassistant/sensor/dev-a/temperature_sensor_current_temperature/config'];
        await store.saveHaDiscoveryRecord({
          configs: new Map([
            ['dev-a', a],
            ['dev-b', ['ha2/light/dev-b/lightbulb/config', 'HomeKit/dev-b/$state', 'ha2/light/dev-b/lightbulb/config']],
          ]),
          leftovers: ['homeassistant/lock/gone/lock_mechanism/config'],
        });
        const again = await fresh.reopen();
        try {
          const record = await new StateStore(again).haDiscoveryRecord();
          assert.deepEqual(
            [...record.configs].sort(),
            [
              ['dev-a', a],
              ['dev-b', ['ha2/light/dev-b/lightbulb/config']],
            ],
            'kept across a reopen; a topic that is not a discovery config is never recorded, a repeated one once',
          );
          assert.deepEqual(record.leftovers, ['homeassistant/lock/gone/lock_mechanism/config']);
        } finally {
          await again.close();
        }
        await store.saveHaDiscoveryRecord({ configs: new Map([['dev-b', []]]), leftovers: [] });
        assert.deepEqual(await store.haDiscoveryRecord(), { configs: new Map([['dev-a', a]]), leftovers: [] }, 'an empty list forgets');
        await store.setSetting(`${HA_CONFIGS_SETTING_PREFIX}dev-c`, '["HomeKit/dev-c/Switch/On/set"]');
        await store.setSetting(HA_LEFTOVERS_SETTING, '{oops');
        const problems: string[] = [];
        assert.deepEqual(await store.haDiscoveryRecord((p) => problems.push(p)), { configs: new Map([['dev-a', a]]), leftovers: [] });
        assert.equal(problems.length, 2, problems.join('; '));
        assert.match(problems.join(), /homeassistant\.discovery\.configs\.dev-c/);
        assert.match(problems.join(), /homeassistant\.discovery\.leftovers/);
      }));

    it('OTA jobs: numbered in order, started once, the first end wins, requeued after a restart', (t) =>
      withStore(t, async (engine) => {
        const ota = new OtaStore(engine, () => {});
        const changes: number[] = [];
        ota.onChange(() => changes.push(1));
        const a = await ota.addJob('sync', 'esp-a', { manifest: '/m.json' });
        const b = await ota.addJob('push', 'esp-b', { file: '/f', as: 'main.py', reboot: true });
        const c = await ota.addJob('firmware', 'esp-a', { image: '/fw.bin' });
        assert.ok(a < b && b < c, `ids in order: ${a} ${b} ${c}`);
        assert.equal(await ota.startJob(a), true);
        assert.equal(await ota.startJob(a), false, 'started once');
        await ota.setProgress(a, { files: 1, filesTotal: 2, bytes: 10, bytesTotal: 20, step: 'sending' });
        await ota.progressSaved(a);
        assert.equal((await ota.job(a))?.progress?.step, 'sending');
        assert.equal(await ota.finishJob(b, 'cancelled', 'cancelled by you'), true);
        assert.equal(await ota.finishJob(b, 'succeeded', 'too late'), false, 'a cancel is not overwritten');
        assert.deepEqual(
          (await ota.jobsIn('queued')).map((j) => j.id),
          [c],
        );
        assert.deepEqual(
          (await ota.unfinishedJobs()).map((j) => j.id),
          [a, c],
        );
        await ota.requeueRunning();
        const requeued = await ota.job(a);
        assert.equal(requeued?.state, 'queued');
        assert.match(requeued?.message ?? '', /restarted/);
        assert.deepEqual(
          (await ota.deviceJobs('esp-a')).map((j) => j.id),
          [c, a],
        );
        assert.deepEqual(
          (await ota.jobs(2)).map((j) => j.id),
          [c, b],
        );
        assert.ok(changes.length >= 5, 'every queue, start and end is told');
        // A row another version (or a hand) damaged ends as failed, named; it never runs.
        await engine.run('UPDATE ota_jobs SET spec = ? WHERE id = ?', ['{"manifest": 5}', c]);
        const damaged = await ota.job(c);
        assert.equal(damaged?.state, 'failed');
        assert.equal((await ota.job(c))?.state, 'failed', 'and stays failed in the store');
      }));

    it('transfers and rollouts: recorded with their outcome, rollouts driven, resumed and ended', (t) =>
      withStore(t, async (engine) => {
        const ota = new OtaStore(engine, () => {});
        const job = await ota.addJob('sync', 'esp-a', { manifest: '/m.json' });
        await ota.recordTransfer({ jobId: job, device: 'esp-a', file: 'main.py', bytes: 1234, ok: true, error: null, at: T0 });
        await ota.recordTransfer({ jobId: job, device: 'esp-a', file: 'lib.py', bytes: 99, ok: false, error: 'hash mismatch', at: T0 + 1 });
        assert.deepEqual(await ota.transfers(job), [
          { jobId: job, device: 'esp-a', file: 'main.py', bytes: 1234, ok: true, error: null, at: T0 },
          { jobId: job, device: 'esp-a', file: 'lib.py', bytes: 99, ok: false, error: 'hash mismatch', at: T0 + 1 },
        ]);
        assert.equal(await ota.lastRolloutId(), undefined);
        const spec = { manifest: '/m.json', pattern: 'esp-*', canary: 1, concurrency: 2, devices: ['esp-a', 'esp-b'] };
        const r1 = await ota.addRollout(spec);
        const r2 = await ota.addRollout(spec);
        assert.deepEqual(await ota.runningRollouts(), [r1, r2]);
        const inRollout = await ota.addJob('sync', 'esp-a', { manifest: '/m.json' }, r1);
        assert.deepEqual(
          (await ota.rolloutJobs(r1)).map((j) => j.id),
          [inRollout],
        );
        assert.equal(await ota.finishRollout(r1, 'failed', 'canary failed'), true);
        assert.equal(await ota.finishRollout(r1, 'succeeded', 'no'), false);
        assert.equal((await ota.rollout(r1))?.state, 'failed');
        assert.equal(await ota.resumeRollout(r1), true);
        assert.equal(await ota.resumeRollout(999), false);
        assert.deepEqual((await ota.rollout(r1))?.spec, spec);
        assert.equal(await ota.lastRolloutId(), r2);
      }));

    it('device logs: in order, read after an id, the newest 500 kept per device', (t) =>
      withStore(t, async (engine) => {
        const ota = new OtaStore(engine, () => {});
        assert.equal(await ota.lastLogId('esp-a'), 0);
        const first = await ota.appendLog('esp-a', 'stat/esp-a/Log', 'line 0');
        await ota.appendLog('esp-b', 'stat/esp-b/Log', 'other');
        for (let i = 1; i < 505; i++) await ota.appendLog('esp-a', 'stat/esp-a/Log', `line ${i}`);
        const last = await ota.lastLogId('esp-a');
        assert.ok(last > first.id);
        const kept: string[] = [];
        for (let after = 0; ; ) {
          const lines = await ota.logsAfter('esp-a', after, 200);
          if (lines.length === 0) break;
          kept.push(...lines.map((l) => l.text));
          after = lines.at(-1)!.id;
        }
        assert.equal(kept.length, 500);
        assert.equal(kept[0], 'line 5');
        assert.equal(kept.at(-1), 'line 504');
        assert.deepEqual(
          (await ota.logsAfter('esp-b', 0)).map((l) => l.text),
          ['other'],
        );
      }));

    it('device info: changes merge, concurrent ones are all kept, an over-long answer is cut, a removed device forgotten', (t) =>
      withStore(t, async (engine) => {
        const ota = new OtaStore(engine, () => {});
        assert.deepEqual(await ota.info('esp-a'), {});
        await Promise.all([
          ota.updateInfo('esp-a', { firmware: '1.20' }),
          ota.updateInfo('esp-a', { name: 'Kitchen' }),
          ota.updateInfo('esp-a', { notes: 'by the window' }),
          ota.updateInfo('esp-a', { answersCommands: true }),
        ]);
        assert.deepEqual(await ota.info('esp-a'), { firmware: '1.20', name: 'Kitchen', notes: 'by the window', answersCommands: true });
        await ota.updateInfo('esp-a', { lastException: 'x'.repeat(70_000) });
        const info = await ota.info('esp-a');
        assert.equal(info.name, 'Kitchen', 'one long answer does not take the rest with it');
        assert.ok((info.lastException?.length ?? 0) <= 10_000);
        await ota.forgetDevice('esp-a');
        assert.deepEqual(await ota.info('esp-a'), {});
      }));

    it('dashboard users and sessions: a session names its user until it ends or its user is removed', (t) =>
      withStore(t, async (engine) => {
        const web = new WebStore(engine);
        assert.equal(await web.hasUsers(), false);
        await web.addUser('anna', 'scrypt-anna');
        await web.addUser('ben', 'scrypt-ben');
        await assert.rejects(web.addUser('anna', 'again'), 'a name is one account');
        assert.equal(await web.hasUsers(), true);
        assert.deepEqual(await web.user('anna'), { name: 'anna', secret: 'scrypt-anna' });
        assert.deepEqual(
          (await web.users()).map((u) => u.name),
          ['anna', 'ben'],
        );
        const s1 = await web.createSession('anna');
        const s2 = await web.createSession('ben');
        assert.equal(await web.sessionUser(s1), 'anna');
        assert.equal(await web.sessionUser('not-a-session'), undefined);
        await web.endSession(s1);
        assert.equal(await web.sessionUser(s1), undefined);
        assert.equal(await web.removeUser('ben'), true);
        assert.equal(await web.sessionUser(s2), undefined, "a removed user's pages are logged out");
        assert.equal(await web.removeUser('ben'), false);
        // Expired sessions are pruned when the next one starts.
        await engine.run('UPDATE web_sessions SET expires_at = ?', [T0]);
        const s3 = await web.createSession('anna');
        assert.equal((await engine.get<{ n: number }>('SELECT COUNT(*) AS n FROM web_sessions'))?.n, 1);
        assert.equal(await web.sessionUser(s3), 'anna');
      }));

    it('API tokens: stored only as hashes, named, listed and revoked', (t) =>
      withStore(t, async (engine) => {
        const web = new WebStore(engine);
        const token = await web.createToken('home-assistant');
        assert.match(token, /^mk_/);
        assert.equal(await web.tokenName(token), 'home-assistant');
        assert.equal(await web.tokenName(`${token}x`), undefined);
        const stored = await engine.all<{ token_hash: string }>('SELECT token_hash FROM api_tokens');
        assert.ok(!stored.some((r) => r.token_hash.includes(token)), 'the token itself is never stored');
        assert.deepEqual(
          (await web.tokens()).map((x) => x.name),
          ['home-assistant'],
        );
        assert.equal(await web.removeToken('home-assistant'), true);
        assert.equal(await web.tokenName(token), undefined);
        assert.equal(await web.removeToken('home-assistant'), false);
      }));

    it('ESP-NOW pairings: one gateway per peripheral, moved and unpaired, a removed gateway takes its pairings; all kept across a reopen', (t) =>
      withStore(t, async (engine, fresh) => {
        const pairings = await EspNowPairings.load(engine);
        assert.deepEqual(pairings.list(), []);
        await pairings.pair('soil-2', 'gw-a', T0);
        await pairings.pair('soil-1', 'gw-a', T0);
        await pairings.pair('door', 'gw-b', T0 + 1);
        await pairings.pair('door', 'gw-a', T0 + 2); // moved: still one row, the new gateway's
        await pairings.pair('window', 'gw-b', T0 + 1);
        assert.equal(pairings.get('door')?.gateway, 'gw-a');
        assert.deepEqual(pairings.peripheralsOf('gw-a', T0).sort(), ['soil-1', 'soil-2'], 'only the pairings made with that account');
        assert.deepEqual(pairings.peripheralsOf('gw-a', T0 + 2), ['door']);
        assert.equal((await pairings.unpair('soil-2'))?.gateway, 'gw-a');
        assert.equal(await pairings.unpair('soil-2'), undefined);
        assert.deepEqual(await pairings.removeGateway('gw-b'), ['window']);
        assert.equal(pairings.hasGateway('gw-b'), false);
        const reopened = await fresh.reopen();
        try {
          const again = await EspNowPairings.load(reopened);
          assert.deepEqual(
            again.list().map((p) => [p.peripheral, p.gateway, p.gatewaySince]),
            [
              ['door', 'gw-a', T0 + 2],
              ['soil-1', 'gw-a', T0],
            ],
          );
          const row = again.get('soil-1');
          assert.ok(typeof row?.createdAt === 'number' && row.createdAt > T0, 'times in ms, as numbers');
        } finally {
          await reopened.close();
        }
      }));

    it('history: raw points when few, bucket averages when many, pruned and forgotten', (t) =>
      withStore(t, async (engine) => {
        const history = new HistoryStore(engine);
        const ref = { deviceId: 'h1', service: 'TemperatureSensor', index: 0, characteristic: 'CurrentTemperature' };
        const other = { ...ref, deviceId: 'h2' };
        await history.add(Array.from({ length: 100 }, (_, i) => ({ ref, at: T0 + i * 1000, value: i % 2 === 0 ? 20 : 21 })));
        await history.add([{ ref: other, at: T0, value: 1 }]);
        const raw = await history.series(ref, T0, T0 + 9_000, 50);
        assert.equal(raw.length, 10);
        assert.deepEqual(raw[1], { at: T0 + 1000, value: 21 });
        const buckets = await history.series(ref, T0, T0 + 99_999, 10);
        assert.ok(buckets.length >= 10 && buckets.length <= 11, `${buckets.length} buckets`);
        assert.ok(
          buckets.every((b) => typeof b.at === 'number' && Math.abs(b.value - 20.5) < 0.01),
          JSON.stringify(buckets.slice(0, 3)),
        );
        assert.equal(await history.prune(T0 + 50_000), 51, 'the points before the cut, of every device');
        assert.equal((await history.series(ref, T0, T0 + 99_999, 1000)).length, 50);
        await history.forget('h1');
        assert.equal((await history.series(ref, T0, T0 + 99_999, 1000)).length, 0);
      }));

    it('transactions: one that fails leaves nothing; statements of others never join it', (t) =>
      withStore(t, async (engine) => {
        const store = new StateStore(engine);
        const failing = engine.transaction(async (tx) => {
          await tx.run('INSERT INTO settings (key, value) VALUES (?, ?)', ['in-failed', '1']);
          // Another caller writes while this transaction waits between its statements.
          await new Promise((resolve) => setTimeout(resolve, 20));
          await tx.run('INSERT INTO settings (key, value) VALUES (?, ?)', ['in-failed-2', '1']);
          throw new Error('fails on purpose');
        });
        const outside = store.setSetting('outside', 'kept');
        const other = engine.transaction(async (tx) => {
          await tx.run('INSERT INTO settings (key, value) VALUES (?, ?)', ['in-other', '1']);
        });
        await assert.rejects(failing, /fails on purpose/);
        await outside;
        await other;
        assert.equal(await store.getSetting('in-failed'), undefined);
        assert.equal(await store.getSetting('in-failed-2'), undefined);
        assert.equal(await store.getSetting('outside'), 'kept');
        assert.equal(await store.getSetting('in-other'), '1');
      }));

    it('migrations: a new store is at the current version and keeps its rows when opened again', (t) =>
      withStore(t, async (engine, store) => {
        const version = engine instanceof SqliteEngine ? (engine.db.pragma('user_version', { simple: true }) as number) : await postgresSchemaVersion(engine);
        assert.equal(version, engine.dialect === 'sqlite' ? SCHEMA_VERSION : POSTGRES_SCHEMA_VERSION);
        await new AccountStore(engine).create('kept', 'device', 'active', 'h');
        const again = await store.reopen();
        try {
          assert.equal((await new AccountStore(again).get('kept'))?.secret, 'h');
        } finally {
          await again.close();
        }
      }));

    it('a store from a newer mqttkit is refused by name, and left as it is', (t) =>
      withStore(t, async (engine, store) => {
        await new AccountStore(engine).create('kept', 'device', 'active', 'h');
        await engine.close();
        await store.setVersion(99);
        await assert.rejects(store.open(), (error: Error) => {
          assert.match(error.message, /newer mqttkit \(schema 99, this one knows \d+\): upgrade mqttkit/);
          assert.match(error.message, engine.dialect === 'sqlite' ? /mqttkit\.db/ : /postgres:\/\/mqttkit:\*\*\*@127\.0\.0\.1/);
          if (postgres) assert.ok(!error.message.includes(decodeURIComponent(new URL(postgres.url).password)), 'no password in the message');
          return true;
        });
        await store.setVersion(engine.dialect === 'sqlite' ? SCHEMA_VERSION : POSTGRES_SCHEMA_VERSION);
        const again = await store.open();
        assert.equal((await new AccountStore(again).get('kept'))?.secret, 'h', 'nothing was changed by the refusal');
        await again.close();
      }));
  });
}

describe('PostgreSQL specifics', { timeout: 60_000 }, () => {
  it('migrate copies every SQLite table into PostgreSQL with the same columns (ESP-NOW pairings included)', async (t) => {
    if (!postgres) return void requirePostgres(t);
    const file = join(dir, `copy-${DATABASE_FILE}`);
    const source = openDatabase(file);
    const url = await postgres.createDatabase();
    const target = await PostgresEngine.connect(url);
    try {
      const sqlite = new SqliteEngine(source);
      await new AccountStore(sqlite).create('garden-gw', 'device', 'active', 'hash');
      await (await EspNowPairings.load(sqlite)).pair('soil-1', 'garden-gw', T0);
      const counts = await copySqliteToPostgres(source, target);
      // Every table SQLite holds is one migrate knows (a table left out of STORE_TABLES would stay behind).
      const sqliteTables = (
        source.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>
      ).map((r) => r.name);
      assert.deepEqual(counts.map((c) => c.table).sort(), sqliteTables);
      for (const table of sqliteTables) {
        const columns = (source.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name).sort();
        const copied = (
          await target.all<{ name: string }>(
            'SELECT column_name AS name FROM information_schema.columns WHERE table_name = ? AND table_schema = current_schema()',
            [table],
          )
        )
          .map((r) => r.name)
          .sort();
        assert.deepEqual(copied, columns, `${table}: the same columns on both engines`);
      }
      assert.deepEqual(
        (await EspNowPairings.load(target)).list().map((p) => [p.peripheral, p.gateway, p.gatewaySince]),
        [['soil-1', 'garden-gw', T0]],
      );
    } finally {
      source.close();
      await target.close();
    }
  });

  it('a server that cannot be reached is named by host and port with the fix, and its password is never shown', async (t) => {
    if (!postgres) return void requirePostgres(t);
    // A port nothing listens on: this cluster's port while it runs is taken, so its neighbour below 1024 is safe to miss.
    const url = 'postgres://mqttkit:s3cret-pass@127.0.0.1:9/mqttkit';
    await assert.rejects(PostgresEngine.open(url), (error: Error) => {
      assert.match(error.message, /cannot reach PostgreSQL at 127\.0\.0\.1:9 \(database mqttkit\)/);
      assert.match(error.message, /start the server, or fix --database-url/);
      assert.ok(!error.message.includes('s3cret-pass'), error.message);
      return true;
    });
  });

  it('a wrong password and a missing database are told apart, without the password', async (t) => {
    if (!postgres) return void requirePostgres(t);
    const good = new URL(postgres.url);
    const wrong = `postgres://mqttkit:not-the-password-123@127.0.0.1:${good.port}/postgres`;
    await assert.rejects(PostgresEngine.open(wrong), (error: Error) => {
      assert.match(error.message, /refused the login/);
      assert.ok(!error.message.includes('not-the-password-123'));
      return true;
    });
    await assert.rejects(PostgresEngine.open(postgres.databaseUrl('no_such_db')), /database "no_such_db" does not exist.*createdb/);
  });

  it('a connection lost in the middle of a transaction rejects it, throws nothing at the process, and the next one reconnects', async (t) => {
    if (!postgres) return void requirePostgres(t);
    const url = new URL(await postgres.createDatabase());
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    t.after(() => proxy.stop());
    url.port = String(proxy.port);
    const lost: string[] = [];
    const engine = await PostgresEngine.open(url.toString(), { onError: (message) => lost.push(message) });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    t.after(() => void process.off('uncaughtException', onUncaught));
    try {
      const store = new StateStore(engine);
      await store.setSetting('before', '1');
      const inFlight = engine.transaction(async (tx) => {
        await tx.run('INSERT INTO settings (key, value) VALUES (?, ?)', ['during', '1']);
        await proxy.stop(); // the server goes away between two statements
        await tx.run('INSERT INTO settings (key, value) VALUES (?, ?)', ['during-2', '1']);
      });
      await assert.rejects(inFlight, /Connection terminated|ECONNRESET|cannot reach/);
      await assert.rejects(store.setSetting('while-down', '1'), /cannot reach PostgreSQL at 127\.0\.0\.1:\d+/);
      await proxy.start(proxy.port);
      await store.setSetting('after', '1');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(uncaught, [], 'nothing reached the process');
      assert.equal(await store.getSetting('during'), undefined, 'the interrupted transaction left nothing');
      assert.equal(await store.getSetting('after'), '1');
    } finally {
      await engine.close();
    }
  });

  it('redacts a URL password wherever a URL is shown', () => {
    assert.equal(redactUrl('postgres://hub:pa%40ss@db.local:5432/mqttkit'), 'postgres://hub:***@db.local:5432/mqttkit');
    assert.equal(redactUrl('postgres://db.local/mqttkit'), 'postgres://db.local/mqttkit');
    assert.ok(!redactUrl('postgres://hub:pa ss@[bad').includes('pa ss'));
  });
});
