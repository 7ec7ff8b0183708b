/**
 * [H-2] HomeKit's storage shared by two hubs through PostgreSQL: what one writes, the other takes over
 * (keys, pairings, ids), in order, through a database that goes away and comes back. Real cluster, real files.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresEngine } from '../../src/store/engine/postgres-engine.js';
import { ReplicatedHapStorage } from '../../src/store/hap-storage-replica.js';
import { eventually } from '../helpers/hub-process.js';
import { POSTGRES_MISSING, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const INFO = 'AccessoryInfo.0E5A3C9F1B22.json';
const IDS = 'IdentifierCache.0E5A3C9F1B22.json';
const pairing = (n: number) => ({ username: '0E:5A:3C:9F:1B:22', pairedClients: { [`iphone-${n}`]: { publicKey: 'ab'.repeat(32), permission: 1 } } });

describe('HomeKit storage replicated through PostgreSQL', () => {
  let cluster: RunningPostgres | undefined;
  const ends: Array<() => Promise<void> | void> = [];
  before(async () => {
    const bin = requirePostgres();
    if (bin) cluster = await startPostgres(bin);
  });
  after(async () => {
    for (const end of ends.reverse()) await end();
    await cluster?.stop();
  });
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'mqttkit-hap-'));
    ends.push(() => rmSync(d, { recursive: true, force: true }));
    return d;
  };
  /** A new database with mqttkit's schema (the table comes from the PostgreSQL migrations). */
  const database = async () => {
    const url = await cluster!.createDatabase();
    await (await PostgresEngine.open(url)).close();
    return url;
  };
  const pool = (url: string) => {
    const p = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 1000 });
    p.on('error', () => {});
    ends.push(() => p.end());
    return p;
  };

  it("a standby takes over the active hub's keys, pairings and ids, and later removals too", async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = await database();
    const a = new ReplicatedHapStorage(dir(), pool(url));
    assert.deepEqual(await a.takeOver(), { restored: 0, seeded: 0 }, 'a new cluster');
    a.setItemSync(INFO, pairing(1));
    a.setItemSync(IDS, { cache: { 'bench-dev|Switch': 10 } });
    a.setItemSync(INFO, pairing(2)); // the later write wins, in order
    await a.flush();

    const b = new ReplicatedHapStorage(dir(), pool(url));
    assert.deepEqual(await b.takeOver(), { restored: 2, seeded: 0 });
    assert.deepEqual(JSON.parse(readFileSync(join(b.dir, INFO), 'utf8')), pairing(2));
    assert.deepEqual(b.getItem(IDS), { cache: { 'bench-dev|Switch': 10 } });

    a.removeItemSync(IDS);
    await a.flush();
    await b.takeOver();
    assert.equal(existsSync(join(b.dir, IDS)), false, 'a removal reaches the other hub');
  });

  it('seeds an empty table from the first hub’s files (a single-machine install moving to a cluster)', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = await database();
    const local = new ReplicatedHapStorage(dir(), pool(url));
    // Written before the hub used the database: files only (HapFileStorage's own path).
    Object.getPrototypeOf(ReplicatedHapStorage.prototype).setItemSync.call(local, INFO, pairing(7));
    assert.deepEqual(await local.takeOver(), { restored: 0, seeded: 1 });
    const other = new ReplicatedHapStorage(dir(), pool(url));
    await other.takeOver();
    assert.deepEqual(other.getItem(INFO), pairing(7));
  });

  it('keeps working while the database is away: files at once, the table when it is back, one message', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = new URL(await database());
    const direct = pool(url.toString());
    await direct.query('SELECT 1');
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    ends.push(() => proxy.stop());
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const problems: string[] = [];
    const a = new ReplicatedHapStorage(dir(), pool(viaProxy.toString()), (p) => problems.push(p), 100);
    ends.push(() => void a.close());
    await a.takeOver();

    await proxy.stop(); // the database is unreachable
    a.setItemSync(INFO, pairing(3));
    assert.deepEqual(a.getItem(INFO), pairing(3), 'HAP-NodeJS reads its write back at once');
    await new Promise((r) => setTimeout(r, 800));
    assert.ok(a.pending > 0, 'the write waits for the database');
    assert.equal(problems.length, 1, `one message while it is away, not one per retry: ${problems.join(' | ')}`);

    await proxy.start(proxy.port);
    await a.flush();
    const { rows } = await direct.query('SELECT value FROM hap_storage WHERE key = $1', [INFO]);
    assert.deepEqual(rows[0]?.value, pairing(3));
  });

  it('never writes outside its directory, whatever the table holds', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = await database();
    const p = pool(url);
    const a = new ReplicatedHapStorage(dir(), p);
    await a.takeOver();
    a.setItemSync(INFO, pairing(1));
    await a.flush();
    await p.query(`INSERT INTO hap_storage (key, value, updated_at) VALUES ('../../escape.json', '{}', 0), ('x/../../y.json', '{}', 0)`);
    const b = new ReplicatedHapStorage(dir(), pool(url));
    await b.takeOver();
    assert.deepEqual(readdirSync(b.dir), [INFO]);
    assert.equal(existsSync(join(b.dir, '..', 'escape.json')), false);
  });

  it('a value the database refuses is dropped by name and does not block the writes after it', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = await database();
    const problems: string[] = [];
    const a = new ReplicatedHapStorage(dir(), pool(url), (p) => problems.push(p), 50);
    ends.push(() => void a.close());
    await a.takeOver();
    // JSONB refuses a NUL character in a string (SQLSTATE 22P05): no retry can ever store it.
    a.setItemSync(INFO, { username: '0E:5A:3C:9F:1B:22', name: 'bad\u0000name' });
    a.setItemSync(IDS, { cache: { 'bench-dev|Switch': 11 } });
    const direct = pool(url);
    await eventually(async () => (await direct.query('SELECT 1 FROM hap_storage WHERE key = $1', [IDS])).rowCount === 1, 10_000);
    await eventually(() => a.pending === 0, 10_000);
    const refusals = problems.filter((p) => p.includes(INFO));
    assert.equal(refusals.length, 1, `said once, by name: ${problems.join(' | ')}`);
    assert.match(refusals[0]!, /22P05/);
    assert.equal(Reflect.get(a, 'refused'), 1, 'counted');
    assert.deepEqual(a.getItem(INFO), { username: '0E:5A:3C:9F:1B:22', name: 'bad\u0000name' }, 'the local file keeps it');
  });

  it('keeps only the latest pending write of each key while the database is away', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = new URL(await database());
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    ends.push(() => proxy.stop());
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const a = new ReplicatedHapStorage(dir(), pool(viaProxy.toString()), () => {}, 50);
    ends.push(() => void a.close());
    await a.takeOver();
    await proxy.stop();
    for (let n = 0; n < 200; n++) a.setItemSync(INFO, pairing(n));
    a.setItemSync(IDS, { cache: {} });
    a.removeItemSync(IDS);
    assert.equal(a.pending, 2, 'one pending write per key, not one per write');
    await proxy.start(proxy.port);
    await a.flush();
    const { rows } = await pool(url.toString()).query<{ key: string; value: unknown }>('SELECT key, value FROM hap_storage ORDER BY key');
    assert.deepEqual(rows, [{ key: INFO, value: pairing(199) }], 'the latest of each key, the removal too');
  });
});
