/**
 * Issue 15: the hub on PostgreSQL (`--database-url`), end to end: the real hub process, MQTT.js devices,
 * hap-controller as the iPhone and a throwaway PostgreSQL cluster; `mqttkit migrate` on a data dir made
 * by a real hub run; a server down at start and one lost while the hub runs.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import pg from 'pg';
import { characteristicId, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { cliAsync, connectDevice, devicePassword } from '../helpers/mqtt-device.js';
import { postgresBinDir, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const SENSOR = 'pg-sensor';
const VALUE_TOPIC = `HomeKit/${SENSOR}/TemperatureSensor/CurrentTemperature`;

let postgres: RunningPostgres | undefined;
const hubs: RunningHub[] = [];
const clients: Array<MqttClient | HttpClient> = [];
const dirs: string[] = [];

before(async () => {
  const bin = postgresBinDir();
  if (bin) postgres = await startPostgres(bin);
});
after(async () => {
  for (const c of clients.splice(0)) 'end' in c ? c.end(true) : await c.close().catch(() => {});
  for (const h of hubs.splice(0)) await h.stop('SIGKILL');
  for (const d of dirs) removeDataDir(d);
  await postgres?.stop();
});

const password = () => decodeURIComponent(new URL(postgres!.url).password);

async function hubOn(url: string | undefined, dataDir = tempDataDir()): Promise<RunningHub> {
  if (!dirs.includes(dataDir)) dirs.push(dataDir);
  const hub = await startHub({ dataDir, args: url ? ['--database-url', url] : [] });
  hubs.push(hub);
  return hub;
}

async function stop(hub: RunningHub): Promise<void> {
  assert.equal(await hub.stop(), 0, hub.output().slice(-2000));
  hubs.splice(hubs.indexOf(hub), 1);
}

async function sensor(hub: RunningHub, value: string, pw = devicePassword(SENSOR)): Promise<MqttClient> {
  const client = await connectDevice(hub.info.mqtt.address, SENSOR, { password: pw });
  clients.push(client);
  await client.publishAsync(VALUE_TOPIC, value, { qos: 1 });
  return client;
}

/** Pairs a controller and reads the sensor's temperature through HomeKit. */
async function readThroughHomeKit(client: HttpClient, expected: number): Promise<string> {
  const id = await eventually(
    async () => characteristicId(await client.getAccessories(), SENSOR, 'TemperatureSensor', 'CurrentTemperature'),
    10_000,
    'the accessory',
  );
  await eventually(
    async () => {
      const read = await client.getCharacteristics([id]);
      return read.characteristics[0]?.value === expected;
    },
    10_000,
    `${expected} through HomeKit`,
  );
  return id;
}

async function rowsIn(url: string, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('the hub on PostgreSQL', { timeout: 240_000 }, () => {
  it('registers a device, serves its value to HomeKit, and after a restart knows the device, its password and the pairing', async (t: TestContext) => {
    if (!postgres) return void requirePostgres(t);
    const url = await postgres.createDatabase();
    let hub = await hubOn(url);
    await hub.printed(/the store is PostgreSQL at postgres:\/\/mqttkit:\*\*\*@127\.0\.0\.1/);
    assert.ok(!hub.output().includes(password()), 'the password never appears in the output');
    assert.equal(existsSync(join(hub.dataDir, 'mqttkit.db')), false, 'no SQLite file: the store is the server');

    const device = await sensor(hub, '21.5');
    const { client, pairing } = await pair(hub.info.bridges[0]!.port!);
    clients.push(client);
    const id = await readThroughHomeKit(client, 21.5);
    device.end(true);
    await client.close();
    clients.splice(clients.indexOf(client), 1);
    await stop(hub);

    // The management commands use the same database (--database-url).
    const listed = await cliAsync(['device', 'list', '--json', '--data-dir', hub.dataDir, '--database-url', url]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ id: string; account: string }>).map((d) => [d.id, d.account]),
      [[SENSOR, 'registered']],
    );
    const accounts = await rowsIn(url, 'SELECT name, status, secret FROM accounts');
    assert.deepEqual(
      accounts.map((a) => [a.name, a.status, typeof a.secret]),
      [[SENSOR, 'active', 'string']],
    );

    hub = await hubOn(url, hub.dataDir);
    // Its password is the stored one: another is refused, its own gets in.
    await assert.rejects(connectDevice(hub.info.mqtt.address, SENSOR, { password: 'not-its-password-1234' }), /Bad username or password|Not authorized/i);
    await sensor(hub, '22');
    const again = reconnect(hub.info.bridges[0]!.port!, pairing);
    clients.push(again);
    assert.equal(await readThroughHomeKit(again, 22), id, 'the same pairing reads the same accessory and characteristic ids');
    await stop(hub);

    // [D-4] The bridge in the database was published: its key file lost from the data dir is damage, refused by name.
    const keys = readdirSync(join(hub.dataDir, 'homekit')).find((f) => f.startsWith('AccessoryInfo.'))!;
    rmSync(join(hub.dataDir, 'homekit', keys));
    const refused = await startHub({ dataDir: hub.dataDir, args: ['--database-url', url] }).then(
      () => assert.fail('the hub started without its bridge keys'),
      (e: Error) => e.message,
    );
    assert.match(refused, new RegExp(`homekit/${keys.replaceAll('.', '\\.')} is missing: HomeKit bridge 1 \\(\\w+\\) was published`));
    assert.ok(!refused.includes(password()));
  });

  it('a server that is down at start: exit 1, the host and the fix named, no stack trace, no password', async (t: TestContext) => {
    if (!postgres) return void requirePostgres(t);
    const dataDir = tempDataDir();
    dirs.push(dataDir);
    const url = `postgres://mqttkit:${encodeURIComponent('down-pass-4711')}@127.0.0.1:9/mqttkit`;
    const error = await startHub({ dataDir, args: ['--database-url', url] }).then(
      () => assert.fail('the hub started without its database'),
      (e: Error) => e.message,
    );
    assert.match(error, /hub exited with 1/);
    assert.match(error, /cannot reach PostgreSQL at 127\.0\.0\.1:9 \(database mqttkit\).*start the server, or fix --database-url/);
    assert.ok(!error.includes('down-pass-4711'), error);
    assert.ok(!/\n\s+at /.test(error), `no stack trace:\n${error}`);

    // A URL that is not PostgreSQL's is refused by the options check, without what might be a password.
    const bad = await cliAsync(['start', '--data-dir', dataDir, '--database-url', 'mysql://hub:hidden-pass-99@db/x']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--database-url: 'mysql:\/\/hub:\*\*\*@db\/x' is not valid; expected a PostgreSQL URL/);
    assert.ok(!bad.stderr.includes('hidden-pass-99'));

    // A backup copies the SQLite file: with the store in PostgreSQL it is refused, naming pg_dump.
    const backup = await cliAsync(['backup', join(dataDir, 'x.backup'), '--data-dir', dataDir], { MQTTKIT_DATABASE_URL: url });
    assert.equal(backup.status, 1);
    assert.match(backup.stderr, /keeps its store in PostgreSQL \(postgres:\/\/mqttkit:\*\*\*@127\.0\.0\.1:9\/mqttkit\).*pg_dump/);
    assert.ok(!backup.stderr.includes('down-pass-4711'));
  });

  it('a server lost while the hub runs: the hub keeps going, logs it, and writes what it kept once the server is back', async (t: TestContext) => {
    if (!postgres) return void requirePostgres(t);
    const url = new URL(await postgres.createDatabase());
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    t.after(() => proxy.stop());
    url.port = String(proxy.port);
    const hub = await hubOn(url.toString());
    const device = await sensor(hub, '19');
    await eventually(async () => (await rowsIn(url.toString(), 'SELECT doc FROM devices')).length === 1, 10_000, 'the device saved');

    await proxy.stop();
    await device.publishAsync(VALUE_TOPIC, '23.5', { qos: 1 });
    await hub.printed(/failed \(.*\); kept, tried again with the next batch/, 15_000);
    assert.equal(hub.child.exitCode, null, 'the hub is still running');
    assert.ok(!hub.output().includes(password()));

    await proxy.start(proxy.port);
    await hub.printed(/the store takes (writes|history) again/, 15_000);
    const saved = await eventually(
      async () => {
        const rows = await rowsIn(url.toString(), 'SELECT doc FROM devices WHERE id = $1', [SENSOR]);
        return typeof rows[0]?.doc === 'string' && rows[0].doc.includes('23.5') ? rows[0].doc : undefined;
      },
      10_000,
      'the value kept during the outage, saved',
    );
    assert.ok(saved);
    assert.doesNotMatch(hub.output(), /uncaught exception|unhandled promise rejection/i, 'the outage was handled, not survived by luck');
    // What the API shows of the hub's log (the dashboard's log page) names the server, never its password.
    const token = readFileSync(join(hub.dataDir, 'hub-token'), 'utf8').trim();
    const shown = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/hub-log`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(shown.status, 200);
    const text = await shown.text();
    assert.match(text, /postgres:\/\/mqttkit:\*\*\*@127\.0\.0\.1|127\.0\.0\.1:\d+ \(database/);
    assert.ok(!text.includes(password()), 'no password in /api/hub-log');
    device.end(true);
    await stop(hub);
  });

  it("migrate copies a real hub's data dir into an empty database, counted; the hub carries on there; a non-empty target is refused", async (t: TestContext) => {
    if (!postgres) return void requirePostgres(t);
    let hub = await hubOn(undefined);
    const device = await sensor(hub, '20.5');
    const { client, pairing } = await pair(hub.info.bridges[0]!.port!);
    const id = await readThroughHomeKit(client, 20.5);
    await client.close();
    device.end(true);
    await stop(hub);

    const sqlite = new Database(join(hub.dataDir, 'mqttkit.db'), { readonly: true });
    const tables = ['accounts', 'devices', 'bridges', 'bridge_members', 'settings', 'history'];
    const expected = Object.fromEntries(tables.map((name) => [name, (sqlite.prepare(`SELECT COUNT(*) AS n FROM ${name}`).get() as { n: number }).n]));
    sqlite.close();
    assert.ok(expected.accounts === 1 && expected.bridges === 1 && expected.devices === 1 && expected.settings! >= 2, JSON.stringify(expected));

    const url = await postgres.createDatabase();
    // Started on the new database before the copy: refused, and told to migrate (never a new identity over the old keys).
    const early = await startHub({ dataDir: hub.dataDir, args: ['--database-url', url] }).then(
      () => assert.fail('the hub started on an empty database beside its HomeKit keys'),
      (e: Error) => e.message,
    );
    assert.match(early, /is new, and this data dir's mqttkit\.db holds the hub's state; copy it there first: mqttkit migrate --from /);
    assert.deepEqual(await rowsIn(url, 'SELECT COUNT(*)::int AS n FROM bridges'), [{ n: 0 }], 'nothing was written');
    const migrated = await cliAsync(['migrate', '--from', hub.dataDir, '--to', url]);
    assert.equal(migrated.status, 0, migrated.stderr);
    for (const [name, n] of Object.entries(expected)) assert.match(migrated.stdout, new RegExp(`^\\s+${name}\\s+${n}$`, 'm'), `${name}: ${n} rows`);
    assert.match(migrated.stdout, /each count checked/);
    assert.ok(!(migrated.stdout + migrated.stderr).includes(password()), 'the password is not printed');

    hub = await hubOn(url, hub.dataDir);
    await sensor(hub, '24'); // its registered password, from the copy
    const again = reconnect(hub.info.bridges[0]!.port!, pairing);
    clients.push(again);
    assert.equal(await readThroughHomeKit(again, 24), id, 'the pairing and the ids carry on');
    await stop(hub);

    const refused = await cliAsync(['migrate', '--from', hub.dataDir, '--to', url]);
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /the PostgreSQL database postgres:\/\/mqttkit:\*\*\*@127\.0\.0\.1:\d+\/\w+ is not empty \(it holds accounts \(1 row\), bridge_members \(1 row\), bridges \(1 row\), device_info \(1 row\), devices \(1 row\)/,
    );
    assert.ok(!refused.stderr.includes(password()));
  });
});
