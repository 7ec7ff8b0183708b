/**
 * [H-1] [H-2] [H-3] Two hubs, one PostgreSQL, one Mosquitto: the active one is killed with SIGKILL and the
 * standby takes over with the same HomeKit identity. A controller paired with the first reads, writes
 * and receives events from the second without pairing again; the AIDs are the same; a queued OTA job is
 * still queued. Real PostgreSQL, real Mosquitto, real hub processes, hap-controller.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { chromiumPath, launchChromium } from '../helpers/chromium.js';
import { characteristicId, characteristicValue, idMap, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';
import { POSTGRES_MISSING, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';
import { requireTool } from '../helpers/system-tools.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const BIN = fileURLToPath(new URL('../../../bin/mqttkit.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../examples/main.py', import.meta.url));
const PINCODE = '031-45-154';
const ADMIN_PASSWORD = 'correct horse battery';

async function health(port: number): Promise<{ role: string; active?: string; instance?: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/api/health`);
  return (await response.json()) as { role: string; active?: string; instance?: string };
}

describe('a standby hub takes over (PostgreSQL + Mosquitto)', { timeout: 240_000 }, () => {
  let cluster: RunningPostgres | undefined;
  let broker: RunningMosquitto | undefined;
  let first: RunningHub | undefined;
  let second: ChildProcess | undefined;
  const dirs: string[] = [];
  const clients: MqttClient[] = [];
  after(async () => {
    for (const c of clients) c.end(true);
    await first?.stop('SIGKILL').catch(() => {});
    if (second && second.exitCode === null) {
      second.kill('SIGTERM');
      await new Promise((r) => second!.once('exit', r));
    }
    await broker?.stop();
    await cluster?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('keeps the pairing, the AIDs, writes, events and a queued OTA job across kill -9 of the active hub', async (t) => {
    const mosquitto = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    const bin = requirePostgres(t);
    if (!mosquitto || !bin) return t.skip(POSTGRES_MISSING);
    cluster = await startPostgres(bin);
    const databaseUrl = await cluster.createDatabase();
    const env = { MQTTKIT_DATABASE_URL: databaseUrl };

    const dataA = tempDataDir();
    const dataB = tempDataDir();
    dirs.push(dataA, dataB);
    const confDir = mkdtempSync(join(tmpdir(), 'mqttkit-mosquitto-conf-'));
    dirs.push(confDir);
    const mqttPort = await freePort();
    const generated = await cliAsync(['mosquitto-config', confDir, '--data-dir', dataA, '--port', String(mqttPort), '--host', '127.0.0.1'], env);
    assert.equal(generated.status, 0, generated.stderr);
    broker = await startMosquitto(mosquitto, { config: join(confDir, 'mosquitto.conf'), port: mqttPort });
    // The second machine gets the hub's broker login the way an installer copies it.
    copyFileSync(join(dataA, 'broker-credentials.json'), join(dataB, 'broker-credentials.json'));

    const [hapA, hapB, httpA, httpB] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const common = ['--failover', '--mqtt-url', broker.url, '--database-url', databaseUrl, '--pincode', PINCODE, '--log-level', 'info'];
    first = await startHub({
      dataDir: dataA,
      pincode: null,
      args: [...common, '--hap-port', String(hapA), '--http-port', String(httpA), '--instance-url', `http://127.0.0.1:${httpA}`],
    });

    let secondOutput = '';
    second = spawn(
      process.execPath,
      [
        BIN,
        'start',
        '--data-dir',
        dataB,
        ...common,
        '--hap-port',
        String(hapB),
        '--http-port',
        String(httpB),
        '--hap-host',
        '127.0.0.1',
        '--http-host',
        '127.0.0.1',
        '--instance-url',
        `http://127.0.0.1:${httpB}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    second.stdout!.on('data', (d: Buffer) => (secondOutput += d.toString()));
    second.stderr!.on('data', (d: Buffer) => (secondOutput += d.toString()));
    await eventually(() => secondOutput.includes('mqttkit is the standby'), 30_000, `the second hub to wait as standby:\n${secondOutput}`);
    assert.deepEqual(await health(httpB), { status: 'standby', role: 'standby', instance: `http://127.0.0.1:${httpB}`, active: `http://127.0.0.1:${httpA}` });
    const redirected = await fetch(`http://127.0.0.1:${httpB}/#/devices`, { redirect: 'manual' });
    assert.equal(redirected.status, 307);
    assert.equal(redirected.headers.get('location'), `http://127.0.0.1:${httpA}/`);
    assert.equal((await health(httpA)).role, 'active');
    const setup = await fetch(`http://127.0.0.1:${httpA}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${httpA}` },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    assert.equal(setup.status, 200, await setup.text());

    // Devices: a thermometer, a relay that confirms its writes, a sleeper with an OTA job waiting for it.
    const passwords: Record<string, string> = {};
    for (const id of ['thermo', 'relay', 'sleepy']) {
      const added = await cliAsync(['device', 'add', id, '--json', '--data-dir', dataA], env);
      assert.equal(added.status, 0, added.stderr);
      passwords[id] = (JSON.parse(added.stdout) as { password: string }).password;
    }
    const thermo = await connectDevice(broker.url, 'thermo', { password: passwords.thermo! });
    const relay = await connectDevice(broker.url, 'relay', { password: passwords.relay! });
    clients.push(thermo, relay);
    const sets: string[] = [];
    relay.on('message', (topic, payload) => {
      sets.push(`${topic} ${payload.toString()}`);
      if (topic.endsWith('/set')) void relay.publishAsync(topic.slice(0, -4), payload, { qos: 1 });
    });
    await relay.subscribeAsync('HomeKit/relay/+/+/set', { qos: 1 });
    await thermo.publishAsync('HomeKit/thermo/TemperatureSensor/CurrentTemperature', '19.5', { qos: 1 });
    await relay.publishAsync('HomeKit/relay/Switch/On', '0', { qos: 1 });
    const sleepy = await connectDevice(broker.url, 'sleepy', { password: passwords.sleepy! });
    await sleepy.publishAsync('HomeKit/sleepy/ContactSensor/ContactSensorState', '0', { qos: 1 });
    await sleepy.publishAsync('HomeKit/sleepy/Switch/On', '0', { qos: 1 });
    await sleepy.publishAsync('HomeKit/sleepy/$state', 'sleeping 3600', { qos: 1, retain: true });
    await sleepy.endAsync();
    const queued = await cliAsync(['ota', 'push', 'sleepy', EXAMPLE, '--no-wait', '--json', '--data-dir', dataA], env);
    assert.equal(queued.status, 0, queued.stdout + queued.stderr);

    const { client, pairing } = await pair(first.info.bridges[0]!.port!, PINCODE);
    const before = await eventually(
      async () => {
        const db = await client.getAccessories();
        return characteristicValue(db, 'thermo', 'TemperatureSensor', 'CurrentTemperature') === 19.5 &&
          characteristicId(db, 'sleepy', 'ContactSensor', 'ContactSensorState')
          ? db
          : undefined;
      },
      15_000,
      'the devices in HomeKit',
    );
    // A write to the sleeper waits for it (a retained /set, docs/protocol.md 4.4): it must outlive the hub.
    await client.setCharacteristics({ [characteristicId(before, 'sleepy', 'Switch', 'On')!]: true });
    await client.close();

    // The active hub dies outright.
    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    await new Promise((r) => first!.child.once('exit', r));
    first = undefined;
    await eventually(() => secondOutput.includes('mqttkit is running'), 20_000, `the standby to take over:\n${secondOutput}`);
    const takeoverMs = Date.now() - killedAt;
    t.diagnostic(`takeover (kill -9 to the second hub running): ${takeoverMs} ms`);
    assert.ok(takeoverMs < 10_000, `took ${takeoverMs} ms`);
    assert.equal((await health(httpB)).role, 'active');

    // The same controller, the same pairing, the second hub's port: no pair-setup.
    const again = reconnect(hapB, pairing);
    const after_ = await eventually(
      async () => {
        const db = await again.getAccessories();
        return characteristicValue(db, 'thermo', 'TemperatureSensor', 'CurrentTemperature') === 19.5 ? db : undefined;
      },
      15_000,
      'the values through the second hub',
    );
    assert.deepEqual(idMap(after_), idMap(before), 'the same AIDs and IIDs');

    const on = characteristicId(after_, 'relay', 'Switch', 'On')!;
    await again.setCharacteristics({ [on]: true });
    await eventually(() => sets.includes('HomeKit/relay/Switch/On/set 1'), 10_000, `the write at the relay (got: ${sets.join(', ')})`);

    const temperature = characteristicId(after_, 'thermo', 'TemperatureSensor', 'CurrentTemperature')!;
    const events: unknown[] = [];
    again.on('event', (event: unknown) => events.push(event));
    await again.subscribeCharacteristics([temperature]);
    await thermo.publishAsync('HomeKit/thermo/TemperatureSensor/CurrentTemperature', '22.5', { qos: 1 });
    await eventually(() => JSON.stringify(events).includes('22.5'), 10_000, `the event (got: ${JSON.stringify(events)})`);
    await again.close();

    // The sleeper wakes: the write made through the dead hub reaches it, and its confirmation reaches HomeKit.
    const woken = await connectDevice(broker.url, 'sleepy', { password: passwords.sleepy! });
    clients.push(woken);
    const wokenSets: string[] = [];
    woken.on('message', (topic, payload) => {
      wokenSets.push(`${topic} ${payload.toString()}`);
      if (topic.endsWith('/set')) void woken.publishAsync(topic.slice(0, -4), payload, { qos: 1 });
    });
    await woken.subscribeAsync('HomeKit/sleepy/+/+/set', { qos: 1 });
    await woken.publishAsync('HomeKit/sleepy/$state', 'online', { qos: 1, retain: true });
    await eventually(() => wokenSets.includes('HomeKit/sleepy/Switch/On/set 1'), 10_000, `the pending write at the sleeper (got: ${wokenSets.join(', ')})`);
    const confirmed = reconnect(hapB, pairing);
    await eventually(
      async () => [true, 1].includes(characteristicValue(await confirmed.getAccessories(), 'sleepy', 'Switch', 'On') as number),
      10_000,
      'the confirmed write in HomeKit',
    );
    await confirmed.close();

    // The dashboard of the new active hub says so (the web accounts are in the database: the first hub's admin logs in).
    const browserPath = chromiumPath(t);
    if (browserPath) {
      const browser = await launchChromium(browserPath);
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${httpB}/#/login`);
        await page.fill('#username', 'admin');
        await page.fill('#password', ADMIN_PASSWORD);
        await page.click('#submit');
        await page.waitForSelector('#nav:not([hidden])');
        assert.equal(await page.textContent('#instance', { timeout: 10_000 }), `active · 127.0.0.1:${httpB}`);
      } finally {
        await browser.close();
      }
    }

    const jobs = await cliAsync(['ota', 'jobs', '--json', '--data-dir', dataB], env);
    const list = JSON.parse(jobs.stdout) as Array<{ device: string; state: string }>;
    assert.deepEqual(
      list.filter((j) => j.device === 'sleepy').map((j) => j.state),
      ['queued'],
      'the queued job waits for the sleeper on the new hub',
    );
    removeDataDir(dataA);
  });

  it('waits for a database that is down when it boots (the house lost power), then takes the active role', async (t) => {
    const mosquitto = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    const bin = requirePostgres(t);
    if (!mosquitto || !bin) return t.skip(POSTGRES_MISSING);
    cluster ??= await startPostgres(bin);
    const url = new URL(await cluster.createDatabase());
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    const port = proxy.port;
    await proxy.stop(); // nothing answers there yet
    url.port = String(port);
    const anonymous = await startMosquitto(mosquitto);
    const dataDir = tempDataDir();
    dirs.push(dataDir);
    let output = '';
    const hub = spawn(
      process.execPath,
      [
        BIN,
        'start',
        '--data-dir',
        dataDir,
        '--failover',
        '--database-url',
        url.toString(),
        '--mqtt-url',
        anonymous.url,
        '--hap-host',
        '127.0.0.1',
        '--hap-port',
        '0',
        '--http-host',
        '127.0.0.1',
        '--http-port',
        String(await freePort()),
        '--instance-url',
        'http://127.0.0.1:1',
        '--pincode',
        PINCODE,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    hub.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    hub.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await eventually(() => output.includes('waiting for the database'), 20_000, `the hub to say it waits:\n${output}`);
      assert.equal(hub.exitCode, null, 'it does not end');
      assert.equal(output.match(/waiting for the database/g)?.length, 1, 'said once');
      assert.doesNotMatch(output, new RegExp(decodeURIComponent(url.password)), 'no password in its output');
      await proxy.start(port);
      await eventually(() => output.includes('mqttkit is running'), 30_000, `the hub to become active once the database is up:\n${output}`);
    } finally {
      hub.kill('SIGTERM');
      await new Promise((r) => hub.once('exit', r));
      await proxy.stop();
      await anonymous.stop();
    }
  });
});
