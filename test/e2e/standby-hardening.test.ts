/**
 * Follow-ups of a hostile review of the standby hub ([H-1]–[H-4]) and the hub on PostgreSQL: a whole hub cut
 * off from its database steps down before the standby takes over and does not come back as a second active
 * hub; a database that cannot hold the active lock is refused at start; two instances announcing the same
 * address are told apart; a standby never migrates the schema under an older active hub; `/api/devices`
 * asks the database a constant number of times. One throwaway PostgreSQL cluster for the file.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import type { DeviceRecord } from '../../src/core/device.js';
import { PostgresEngine } from '../../src/store/engine/postgres-engine.js';
import { readRuntime } from '../../src/store/runtime-file.js';
import { StateStore } from '../../src/store/state-store.js';
import { BIN, eventually, PINCODE, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { cliAsync } from '../helpers/mqtt-device.js';
import { startPgBouncer } from '../helpers/pgbouncer.js';
import { POSTGRES_MISSING, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';
import { requireTool } from '../helpers/system-tools.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

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

/** A Mosquitto for the failover hubs, logging every connection to a file the test reads; started once. */
let broker: (RunningMosquitto & { log(): string }) | undefined;
async function sharedBroker(t: TestContext): Promise<(RunningMosquitto & { log(): string }) | undefined> {
  if (broker) return broker;
  const binary = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
  if (!binary) return undefined;
  const dir = tempDataDir();
  ends.push(() => removeDataDir(dir));
  const port = await freePort();
  const logFile = join(dir, 'mosquitto.log');
  // Mosquitto started as root writes its log as the `mosquitto` user.
  writeFileSync(logFile, '');
  chmodSync(logFile, 0o666);
  chmodSync(dir, 0o755);
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      `log_dest file ${logFile}`,
      'log_type all',
      'connection_messages true',
      '',
    ].join('\n'),
  );
  const started = await startMosquitto(binary, { config: join(dir, 'mosquitto.conf'), port });
  ends.push(() => started.stop());
  broker = {
    ...started,
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
  return broker;
}

interface Spawned {
  child: ChildProcess;
  httpPort: number;
  dataDir: string;
  output(): string;
  /** When output matching `pattern` first arrived (ms since the epoch), undefined before. */
  seenAt(pattern: RegExp): number | undefined;
  exited: Promise<number | null>;
  exitedAt(): number | undefined;
}

/** A `--failover` hub whose output is read as it comes (it may wait as standby, or be refused). */
async function failoverHub(databaseUrl: string, mqttUrl: string, instanceUrl?: string): Promise<Spawned> {
  const dataDir = tempDataDir();
  ends.push(() => removeDataDir(dataDir));
  const httpPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      BIN,
      'start',
      '--data-dir',
      dataDir,
      '--failover',
      '--database-url',
      databaseUrl,
      '--mqtt-url',
      mqttUrl,
      '--hap-host',
      '127.0.0.1',
      '--hap-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--http-port',
      String(httpPort),
      '--instance-url',
      instanceUrl ?? `http://127.0.0.1:${httpPort}`,
      '--pincode',
      PINCODE,
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const chunks: Array<{ at: number; end: number }> = [];
  const take = (d: Buffer) => {
    output += d.toString();
    chunks.push({ at: Date.now(), end: output.length });
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  let exitedAt: number | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitedAt = Date.now();
      resolve(code);
    }),
  );
  const seenAt = (pattern: RegExp) => {
    const match = pattern.exec(output);
    if (!match) return undefined;
    return chunks.find((c) => c.end >= match.index + match[0].length)?.at;
  };
  ends.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, httpPort, dataDir, output: () => output, seenAt, exited, exitedAt: () => exitedAt };
}

async function health(port: number): Promise<{ role?: string; problem?: string } | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/api/health`, { signal: AbortSignal.timeout(3000) });
    return (await response.json()) as { role?: string; problem?: string };
  } catch {
    return undefined; // not listening (or not answering): not acting as active either
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const schemaVersion = async (url: string) => Number((await sql(url, 'SELECT version FROM schema_version')).rows[0]?.version);

describe('[H-5] a database that cannot hold the active lock is refused at start', () => {
  for (const [label, settings] of [
    ['PgBouncer in transaction pooling, start-up options ignored', { ignore_startup_parameters: 'options' }],
    ['PgBouncer in transaction pooling, as installed', {}],
  ] as const)
    it(`${label}: exit 1, the pooler and the fix named`, async (t) => {
      if (!cluster) return t.skip(POSTGRES_MISSING);
      const bouncer = requireTool(t, 'pgbouncer', ['pgbouncer', '/usr/sbin/pgbouncer'], 'apt-get install pgbouncer');
      const mqtt = await sharedBroker(t);
      if (!bouncer || !mqtt) return;
      const url = await cluster.createDatabase();
      const pooled = await startPgBouncer(bouncer, url, settings);
      ends.push(() => pooled.stop());
      const hub = await failoverHub(pooled.url(url), mqtt.url);
      const code = await Promise.race([hub.exited, eventually(() => hub.output().includes('mqttkit is running') && 'running', 30_000, 'an exit')]);
      assert.equal(code, 1, `refused, not running:\n${hub.output()}`);
      assert.match(hub.output(), /PgBouncer/);
      assert.match(hub.output(), /--database-url/);
    });
});

describe('[H-3] two instances announcing the same address', () => {
  it('the standby says so, with the fix, in its log and its health; it redirects to no one', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const mqtt = await sharedBroker(t);
    if (!mqtt) return;
    const url = await cluster.createDatabase();
    const same = 'http://hub.local:8581';
    const a = await failoverHub(url, mqtt.url, same);
    await eventually(() => a.output().includes('mqttkit is running'), 30_000, `the first hub active:\n${a.output()}`);
    const b = await failoverHub(url, mqtt.url, same);
    await eventually(() => b.output().includes('mqttkit is the standby'), 30_000, `the second hub standby:\n${b.output()}`);
    await eventually(() => /same address as this one.*--instance-url/.test(b.output()), 10_000, `the collision named:\n${b.output()}`);
    assert.match((await health(b.httpPort))?.problem ?? '', /--instance-url/);
    const response = await fetch(`http://127.0.0.1:${b.httpPort}/`, { redirect: 'manual' });
    assert.equal(response.status, 503);
    assert.match(await response.text(), /--instance-url/);
  });
});

describe('[H-6] a newer standby never migrates the schema under the active hub', () => {
  it('waits with the migration until it holds the lock; a CLI command is refused with the upgrade order', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const mqtt = await sharedBroker(t);
    if (!mqtt) return;
    const url = await cluster.createDatabase();
    const a = await failoverHub(url, mqtt.url);
    await eventually(() => a.output().includes('mqttkit is running'), 30_000, `the first hub active:\n${a.output()}`);
    // The active hub as if it were one version older: its schema lacks this mqttkit's last migration
    // (the last one is `CREATE TABLE IF NOT EXISTS`, so running it again is visible only in schema_version).
    const latest = await schemaVersion(url);
    await sql(url, `UPDATE schema_version SET version = ${latest - 1}`);

    const cli = await cliAsync(['token', 'list', '--json', '--data-dir', tempDataDir()], { MQTTKIT_DATABASE_URL: url });
    assert.notEqual(cli.status, 0, 'the CLI does not migrate under the active hub');
    assert.match(cli.stderr + cli.stdout, /another mqttkit is active on it.*Upgrading/s);

    const b = await failoverHub(url, mqtt.url);
    await eventually(() => b.output().includes('mqttkit is the standby'), 30_000, `the newer hub waits as standby:\n${b.output()}`);
    assert.equal(await schemaVersion(url), latest - 1, 'the schema is untouched while the older hub is active');
    assert.match(b.output(), /migrated when this instance takes the active role/);

    a.child.kill('SIGKILL');
    await eventually(() => b.output().includes('mqttkit is running'), 30_000, `the newer hub takes over:\n${b.output()}`);
    assert.equal(await schemaVersion(url), latest, 'migrated by the new holder of the lock');
  });
});

describe('[H-1] a whole hub cut off from its database', () => {
  it('stops acting (bridges, MQTT, health) before the standby takes over, and does not come back when the network does', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const mqtt = await sharedBroker(t);
    if (!mqtt) return;
    const url = new URL(await cluster.createDatabase());
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    ends.push(() => proxy.stop());
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const logFrom = mqtt.log().length;
    const brokerLog = () => mqtt.log().slice(logFrom);
    const hubClients = () => [...brokerLog().matchAll(/New client connected from \S+ as (mqttkit-hub-[0-9a-f]+)/g)].map((m) => m[1]!);

    const a = await failoverHub(viaProxy.toString(), mqtt.url);
    await eventually(() => a.output().includes('mqttkit is running'), 30_000, `the first hub active:\n${a.output()}`);
    const hapA = await eventually(() => readRuntime(a.dataDir)?.bridges[0]?.port, 10_000, 'the first hub’s bridge');
    const clientA = await eventually(() => hubClients()[0], 10_000, `the first hub's MQTT link:\n${brokerLog()}`);
    const b = await failoverHub(url.toString(), mqtt.url);
    await eventually(() => b.output().includes('mqttkit is the standby'), 30_000, `the second hub standby:\n${b.output()}`);
    assert.equal(await accepts(hapA), true);
    assert.equal((await health(a.httpPort))?.role, 'active');

    // A cable pulled between the active hub and the database: nothing passes, nothing is closed.
    proxy.freeze();
    const frozenAt = Date.now();
    const leftLink = new RegExp(`Client ${clientA} (disconnected|closed its connection)|Socket error on client ${clientA}`);
    await eventually(
      async () => !(await accepts(hapA)) && (await health(a.httpPort))?.role !== 'active' && leftLink.test(brokerLog()),
      20_000,
      `the cut-off hub to stop acting (its output:\n${a.output()}\nthe broker's:\n${brokerLog()})`,
    );
    await eventually(() => b.output().includes('mqttkit is running'), 30_000, `the standby takes over:\n${b.output()}`);
    // When the old hub had stopped acting: its process ended, or it said it waits as standby again (after its stop).
    const standbyAgain = /mqttkit is the standby \(the database/;
    const stoppedAt = Math.min(a.exitedAt() ?? Number.POSITIVE_INFINITY, a.seenAt(standbyAgain) ?? Number.POSITIVE_INFINITY);
    // The standby's first step on taking the lock (its log line's own time).
    const tookOver = Number(/\{[^\n]*"time":(\d+)[^\n]*HomeKit storage taken/.exec(b.output())?.[1]);
    t.diagnostic(`frozen → old hub stopped: ${stoppedAt - frozenAt} ms; frozen → standby took the lock: ${tookOver - frozenAt} ms`);
    assert.ok(
      stoppedAt < tookOver,
      `the old hub stopped acting (${stoppedAt - frozenAt} ms) before the standby took over (${tookOver - frozenAt} ms); the old hub said (frozen at ${frozenAt}):\n${a
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .join('\n')}`,
    );
    assert.equal(hubClients().length, 2, 'the new active hub connected to the broker after the old one left');

    // The network comes back: the old hub finds the lock taken and stays out (or has ended, as [H-1] allows).
    proxy.thaw();
    const quietUntil = Date.now() + 4000; // several of its retries (1 s each)
    while (Date.now() < quietUntil) {
      assert.notEqual((await health(a.httpPort))?.role, 'active', 'the old hub never says it is active again');
      assert.equal(await accepts(hapA), false, 'its bridge stays unpublished');
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(hubClients().length, 2, `no third hub link to the broker:\n${brokerLog()}`);
    assert.equal((await health(b.httpPort))?.role, 'active');
    t.diagnostic(`the old hub ${a.child.exitCode === null ? 'waits as standby' : `ended (exit ${a.child.exitCode})`}`);
  });
});
