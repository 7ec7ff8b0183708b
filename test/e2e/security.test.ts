/**
 * Broker security with the embedded broker: registration on first connect, each device confined to
 * its own topics, throttled guessing, the closed and approve policies through the CLI, and logs that
 * never hold a password or a hash.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { accessoryBySerial, characteristicValue, pair } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice, devicePassword, subackCode } from '../helpers/mqtt-device.js';

const hubs: RunningHub[] = [];
const clients: MqttClient[] = [];
/** Every secret the tests used, to look for in the logs at the end. */
const secrets = new Set<string>();

after(async () => {
  for (const c of clients) c.end(true);
  for (const hub of hubs) {
    await hub.stop('SIGKILL');
    removeDataDir(hub.dataDir);
  }
});

async function start(args: string[] = [], dataDir?: string): Promise<RunningHub> {
  const hub = await startHub({ args: ['--log-level', 'trace', ...args], ...(dataDir ? { dataDir } : {}) });
  hubs.push(hub);
  return hub;
}

async function connect(url: string, id: string, password = devicePassword(id), extra = {}): Promise<MqttClient> {
  secrets.add(password);
  const client = await connectDevice(url, id, { password, ...extra });
  clients.push(client);
  return client;
}

/** The CONNACK return code of a refused connection. */
async function refusal(url: string, id: string, password: string, extra = {}): Promise<number> {
  secrets.add(password);
  try {
    const client = await connectDevice(url, id, { password, ...extra });
    client.end(true);
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

function storedSecrets(dataDir: string): Array<{ name: string; secret: string | null; status: string }> {
  const db = new Database(join(dataDir, 'mqttkit.db'), { readonly: true });
  try {
    return db.prepare('SELECT name, secret, status FROM accounts').all() as Array<{ name: string; secret: string | null; status: string }>;
  } finally {
    db.close();
  }
}

describe('broker security (embedded)', { timeout: 180_000 }, () => {
  let hub: RunningHub;

  it('registers a device on first connect, refuses another password, keeps the registration across a restart, stores only a hash', async () => {
    hub = await start();
    const first = await connect(hub.info.mqtt.address, 'sensor-a');
    await first.endAsync();
    assert.equal(await refusal(hub.info.mqtt.address, 'sensor-a', 'another-password-123'), 4, 'bad username or password');
    assert.equal(await refusal(hub.info.mqtt.address, 'sensor-a', ''), 4);
    assert.equal(await refusal(hub.info.mqtt.address, 'short', 'abc'), 4, 'a too-short first password does not register');

    const row = storedSecrets(hub.dataDir).find((r) => r.name === 'sensor-a')!;
    assert.match(row.secret!, /^scrypt\$16384\$8\$1\$/);
    assert.ok(!row.secret!.includes(devicePassword('sensor-a')));
    secrets.add(row.secret!);

    assert.equal(await hub.stop('SIGTERM'), 0);
    hub = await start([], hub.dataDir);
    const again = await connect(hub.info.mqtt.address, 'sensor-a');
    assert.ok(again.connected);
    assert.equal(await refusal(hub.info.mqtt.address, 'sensor-a', 'yet-another-password'), 4);
  });

  it('confines a device to its own topics', async () => {
    const url = hub.info.mqtt.address;
    const a = await connect(url, 'dev-a');
    const b = await connect(url, 'dev-b');
    await b.publishAsync('HomeKit/dev-b/TemperatureSensor/CurrentTemperature', '20', { qos: 1 });
    await a.publishAsync('HomeKit/dev-a/TemperatureSensor/CurrentTemperature', '30', { qos: 1 });
    const { client: controller } = await pair(hub.info.bridges[0]!.port!);
    await eventually(
      async () => {
        const db = await controller.getAccessories();
        return accessoryBySerial(db, 'dev-a') && accessoryBySerial(db, 'dev-b');
      },
      10_000,
      'both accessories',
    );

    // A publishes into B's space: dropped, A stays connected, B's value in HomeKit is unchanged.
    const received: string[] = [];
    await b.subscribeAsync('HomeKit/dev-b/#', { qos: 1 });
    b.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    await a.publishAsync('HomeKit/dev-b/TemperatureSensor/CurrentTemperature', '99', { qos: 1 });
    await a.publishAsync('HomeKit/dev-b/$state', 'removed', { qos: 1 });
    await a.publishAsync('HomeKit/dev-a/TemperatureSensor/CurrentTemperature', '31', { qos: 1 });
    await eventually(
      async () => characteristicValue(await controller.getAccessories(), 'dev-a', 'TemperatureSensor', 'CurrentTemperature') === 31,
      5000,
      "A's own update",
    );
    const db = await controller.getAccessories();
    assert.equal(characteristicValue(db, 'dev-b', 'TemperatureSensor', 'CurrentTemperature'), 20, 'B unchanged');
    assert.ok(a.connected, 'a misdirected publish does not cost the device its connection');
    assert.deepEqual(
      received.filter((m) => m.includes(' 99') || m.includes('removed')),
      [],
      "B never saw A's messages",
    );

    for (const filter of ['HomeKit/#', 'HomeKit/dev-b/#', 'cmnd/dev-b/#', '#', '+/OTA', 'HomeKit/+/Switch/On/set', '$SYS/#']) {
      assert.equal(await subackCode(a, filter), 128, `${filter} refused`);
    }
    for (const filter of ['HomeKit/dev-a/#', 'HomeKit/dev-a/+/+/set', 'cmnd/dev-a/#', 'dev-a/OTA']) {
      assert.equal(await subackCode(a, filter), 1, `${filter} granted`);
    }

    const foreignWill = await refusal(url, 'dev-a', devicePassword('dev-a'), {
      will: { topic: 'HomeKit/dev-b/$state', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    assert.equal(foreignWill, 5, 'a last will outside its space is refused');
    assert.equal(await refusal(url, 'dev-a', devicePassword('dev-a'), { clientId: 'someone-else' }), 5, 'client id must equal the username');
    await controller.close();
  });

  it('throttles a guessing loop, and lets the real device in afterwards', async () => {
    const guessHub = await start(['--auth-max-delay', '300ms']);
    const url = guessHub.info.mqtt.address;
    (await connect(url, 'target')).end(true);
    const started = Date.now();
    for (let i = 0; i < 50; i++) assert.equal(await refusal(url, 'target', `guess-number-${i}`), 4);
    const elapsed = Date.now() - started;
    // 100, 200, then 300 ms for each further failure: at least ~14.7 s, where 50 unthrottled attempts take ~2 s.
    assert.ok(elapsed > 12_000, `50 guesses took only ${elapsed} ms`);
    const before = Date.now();
    const real = await connect(url, 'target');
    assert.ok(real.connected);
    assert.ok(Date.now() - before < 3000, 'the real device gets in within seconds');
  });

  it('closed policy: only devices added with the CLI connect', async () => {
    const closed = await start(['--registration', 'closed']);
    const url = closed.info.mqtt.address;
    assert.equal(await refusal(url, 'stranger', 'stranger-password'), 5, 'unknown device not authorized');
    await closed.printed(/unknown device stranger \(registration is closed\): add it with 'mqttkit device add stranger'/);

    const added = cli(['device', 'add', 'garage', '--json', '--data-dir', closed.dataDir]);
    assert.equal(added.status, 0, added.stderr);
    const { password } = JSON.parse(added.stdout) as { password: string };
    secrets.add(password);
    const garage = await connect(url, 'garage', password);
    assert.ok(garage.connected);
    assert.equal(await refusal(url, 'garage', 'not-the-password'), 4);
    assert.equal(cli(['device', 'add', 'garage', '--data-dir', closed.dataDir]).status, 1, 'adding twice is an error');
  });

  it('approve policy: an unknown device waits until approved; reset and remove take effect on the running hub', async () => {
    const approving = await start(['--registration', 'approve']);
    const url = approving.info.mqtt.address;
    assert.equal(await refusal(url, 'newbie', devicePassword('newbie')), 5);
    const listed = JSON.parse(cli(['device', 'list', '--json', '--data-dir', approving.dataDir]).stdout) as Array<{ id: string; account: string }>;
    assert.deepEqual(
      listed.find((d) => d.id === 'newbie'),
      { ...listed.find((d) => d.id === 'newbie'), account: 'waiting for approval' },
    );
    assert.equal(await refusal(url, 'newbie', devicePassword('newbie')), 5, 'still waiting');

    const approved = cli(['device', 'approve', 'newbie', '--data-dir', approving.dataDir]);
    assert.equal(approved.status, 0, approved.stderr);
    const newbie = await connect(url, 'newbie');
    await newbie.publishAsync('HomeKit/newbie/Switch/On', '1', { qos: 1 });
    assert.equal(cli(['device', 'approve', 'newbie', '--data-dir', approving.dataDir]).status, 1, 'approving twice is an error');

    // Reset: the running hub disconnects it; the reflashed device registers a new password.
    const closedByReset = new Promise<void>((resolve) => newbie.once('close', () => resolve()));
    assert.equal(cli(['device', 'reset', 'newbie', '--data-dir', approving.dataDir]).status, 0);
    await closedByReset;
    const reflashed = await connect(url, 'newbie', 'a-brand-new-password');
    assert.ok(reflashed.connected);

    // Remove: account gone, accessory gone, connection closed.
    const { client: controller } = await pair(approving.info.bridges[0]!.port!);
    await eventually(async () => accessoryBySerial(await controller.getAccessories(), 'newbie'), 10_000, 'newbie accessory');
    const closedByRemove = new Promise<void>((resolve) => reflashed.once('close', () => resolve()));
    const removed = cli(['device', 'remove', 'newbie', '--data-dir', approving.dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    await closedByRemove;
    await eventually(async () => !accessoryBySerial(await controller.getAccessories(), 'newbie'), 10_000, 'accessory removed');
    assert.equal(await refusal(url, 'newbie', 'a-brand-new-password'), 5, 'after removal it waits for approval again');
    await controller.close();
  });

  it('never writes a password or a hash to the log, at any level', () => {
    for (const hub of hubs) {
      for (const row of storedSecrets(hub.dataDir)) if (row.secret) secrets.add(row.secret);
    }
    secrets.delete(''); // the empty password of the refusal test is no secret
    assert.ok(secrets.size > 10);
    for (const hub of hubs) {
      const output = hub.output();
      assert.match(output, /"level":20/, 'debug logging was on');
      for (const secret of secrets)
        assert.ok(
          !output.includes(secret),
          `a secret (${secret.slice(0, 3)}…) appeared in the log of ${hub.dataDir}: ${output.split('\n').find((l) => l.includes(secret))}`,
        );
      assert.ok(!output.includes('scrypt$'), 'no hash in the log');
    }
  });
});
