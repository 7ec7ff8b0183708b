/**
 * The MicroPython device library, run under CPython against the real hub: registration, HomeKit,
 * writes, observability commands, last will, stored identity, reconnects, and deep sleep.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { servePull } from '../../src/ota/pull-server.js';
import { accessoryBySerial, characteristicId, characteristicValue, pair } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cli, cliAsync, connectAdmin } from '../helpers/mqtt-device.js';
import { deviceRoot, EXAMPLES, LIBRARY, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const NO_RESPONSE = -70402;

describe('device library under CPython', { timeout: 180_000 }, () => {
  let hub: RunningHub;
  let controller: HttpClient;
  let admin: MqttClient;
  let python: string | undefined;
  const devices: RunningDevice[] = [];
  const roots: string[] = [];
  const messages: Array<{ topic: string; payload: string; at: number }> = [];

  const python3 = (t: TestContext) => {
    python ??= requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    return python;
  };
  const start = (script: string, config: Record<string, unknown>, args: string[] = [], root?: string) => {
    const dir = root ?? deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, backoff_min: 0.2, backoff_max: 2, ...config });
    if (!root) roots.push(dir);
    const device = runDevice(python!, script, dir, args);
    devices.push(device);
    return device;
  };
  /**
   * Sends a command through the hub (`mqttkit cmd`), which keeps one command in flight per device, so
   * its own questions to the device (version, reboot reason) cannot be mistaken for the answer.
   */
  const command = async (id: string, text: string) => {
    const result = await cliAsync(['cmd', id, text, '--data-dir', hub.dataDir]);
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trimEnd();
  };

  before(async () => {
    hub = await startHub();
    admin = await connectAdmin(hub.info.mqtt.address, 'tester', addAdmin(hub.dataDir, 'tester'));
    await admin.subscribeAsync(['HomeKit/#', 'stat/#'], { qos: 1 });
    admin.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString(), at: Date.now() }));
    ({ client: controller } = await pair(hub.info.bridges[0]!.port!));
  });

  after(async () => {
    for (const d of devices) await d.kill();
    await controller?.close().catch(() => {});
    admin?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    roots.forEach(removeRoot);
  });

  it('registers, appears in HomeKit, obeys a HomeKit write, and answers stats, msg_exception and getversion', async (t) => {
    if (!python3(t)) return;
    const probe = start(PROBE, { device_id: 'probe-1' });
    await probe.waitFor((e) => e.status === 'broker ok', 10_000, 'the connection');
    const db = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return accessoryBySerial(current, 'probe-1') ? current : undefined;
      },
      10_000,
      'the accessory',
    );
    assert.equal(characteristicValue(db, 'probe-1', 'AccessoryInformation', 'Name'), 'Probe');
    assert.equal(characteristicValue(db, 'probe-1', 'AccessoryInformation', 'FirmwareRevision'), '2.3.4');

    await controller.setCharacteristics({ [characteristicId(db, 'probe-1', 'Switch', 'On')!]: true });
    await probe.waitFor((e) => e.set === 'On' && e.value === true, 5000, 'on_set');
    await eventually(() => messages.some((m) => m.topic === 'HomeKit/probe-1/Switch/On' && m.payload === '1'), 5000, 'the confirmation');

    const stats = JSON.parse(await command('probe-1', 'stats')) as { uptime_s: number; reconnects: number; published: number };
    assert.ok(stats.published >= 3 && stats.reconnects === 0, JSON.stringify(stats));
    assert.equal(await command('probe-1', 'msg_exception'), 'no exception recorded');
    await command('probe-1', 'crash');
    assert.match(await command('probe-1', 'msg_exception'), /ZeroDivisionError/);
    assert.equal(await command('probe-1', 'msg_rm'), 'messages removed');
    assert.equal(await command('probe-1', 'msg_exception'), 'no exception recorded');
    const version = JSON.parse(await command('probe-1', 'getversion')) as {
      firmware: string;
      app: string;
      library: string;
      python: string;
      partition: string;
      ota: number;
    };
    assert.equal(version.app, '2.3.4');
    assert.equal(version.partition, 'a', 'the running firmware partition [O-6]');
    assert.equal(version.ota, 2, 'speaks the 5-field trigger [O-11]');
    assert.equal(version.firmware, '1.0.0');
    assert.match(version.python, /^cpython 3\./);
    assert.match(await command('probe-1', 'nonsense'), /unknown command nonsense \(known: .*stats/);
  });

  it('goes No Response when killed; comes back with its stored password; is refused without it', async (t) => {
    if (!python3(t)) return;
    const first = devices.find((d) => d.events.some((e) => e.started === 'probe-1'))!;
    const id = characteristicId(await controller.getAccessories(), 'probe-1', 'Switch', 'On')!;
    await first.kill();
    await eventually(
      async () => ((await controller.getCharacteristics([id])).characteristics[0] as { status?: number }).status === NO_RESPONSE,
      10_000,
      'No Response',
    );

    const again = start(PROBE, {}, [], first.root);
    await again.waitFor((e) => e.status === 'broker ok', 10_000, 'the reconnection');
    await eventually(async () => (await controller.getCharacteristics([id])).characteristics[0]!.value !== undefined, 10_000, 'answers again');
    await again.kill();

    rmSync(join(first.root, 'mqtt_password'));
    const reflashed = start(PROBE, {}, [], first.root);
    const refused = await reflashed.waitFor((e) => e.status === 'broker refused', 10_000, 'the refusal');
    assert.match(String(refused.detail), /bad username or password \(4\)/);
    await reflashed.kill();
    const reset = cli(['device', 'reset', 'probe-1', '--data-dir', hub.dataDir]);
    assert.equal(reset.status, 0, reset.stderr);
    const welcomed = start(PROBE, {}, [], first.root);
    await welcomed.waitFor((e) => e.status === 'broker ok', 10_000, 'registration after reset');
    await welcomed.kill();
  });

  it('reconnects with backoff when the broker link drops, and its queued publishes arrive', async (t) => {
    if (!python3(t)) return;
    const proxy = new TcpProxy(hub.info.mqtt.port!);
    await proxy.start();
    try {
      const counter = start(PROBE, { device_id: 'counter-1', port: proxy.port }, ['--counter']);
      await counter.waitFor((e) => typeof e.published === 'number' && (e.published as number) >= 3, 10_000, 'first values');
      await proxy.cut(2000);
      await counter.waitFor(
        (e) => e.status === 'broker ok' && e.at > Date.now() - 5000 && counter.events.filter((x) => x.status === 'broker ok').length >= 2,
        15_000,
        'the reconnection',
      );
      const failures = counter.events.filter((e) => e.status === 'broker lost').map((e) => e.at);
      assert.ok(failures.length >= 3, `several failed attempts: ${failures.length}`);
      const gaps = failures.slice(1).map((at, i) => at - failures[i]!);
      assert.ok(gaps[gaps.length - 1]! > gaps[0]! * 1.5, `the retry interval grows: ${gaps.join(', ')} ms`);

      const offline = counter.events.filter((e) => e.connected === false).map((e) => e.published as number);
      assert.ok(offline.length >= 3, 'values were published while the link was down');
      const arrived = () => new Set(messages.filter((m) => m.topic === 'HomeKit/counter-1/TemperatureSensor/CurrentTemperature').map((m) => Number(m.payload)));
      await eventually(() => offline.every((n) => arrived().has(n)), 10_000, 'the queued values');
      await counter.kill();
    } finally {
      await proxy.stop();
    }
  });

  it('a QoS 1 value whose publish breaks on a lost socket stays queued and arrives after the reconnect (Device._flush)', async (t) => {
    if (!python3(t)) return;
    // test/device/broken_publish.py: the socket dies while the value 42.5 is written to it. The old
    // _flush took the message off the queue before the write, so the reconnect had nothing to resend.
    const since = Date.now();
    const device = start(join(LIBRARY, '..', '..', 'test', 'device', 'broken_publish.py'), { device_id: 'broken-pub-1' });
    await device.waitFor((e) => e.broke === true, 10_000, 'the broken write');
    await device.waitFor((e) => e.status === 'broker lost', 5000, 'the lost connection');
    await eventually(() => device.events.filter((e) => e.status === 'broker ok').length >= 2, 15_000, 'the reconnection');
    await eventually(
      () => messages.some((m) => m.topic === 'HomeKit/broken-pub-1/TemperatureSensor/CurrentTemperature' && m.payload === '42.5' && m.at >= since),
      10_000,
      'the value, sent again in the new session',
    );
    await device.kill();
  });

  it('a sleepy device announces sleep and is not marked offline while asleep', async (t) => {
    if (!python3(t)) return;
    const sleepy = start(join(EXAMPLES, 'sleepy_sensor.py'), { device_id: 'sleepy-1', sleep: 30 });
    assert.equal(await sleepy.exited, 0, sleepy.output());
    const id = await eventually(
      async () => characteristicId(await controller.getAccessories(), 'sleepy-1', 'TemperatureSensor', 'CurrentTemperature'),
      10_000,
      'the sleepy accessory',
    );
    assert.ok(messages.some((m) => m.topic === 'HomeKit/sleepy-1/$state' && m.payload === 'sleeping 30'));
    await new Promise((r) => setTimeout(r, 1000)); // the process is gone: a dropped link would have sent the will by now
    const read = await controller.getCharacteristics([id]);
    assert.equal(read.characteristics[0]!.value, 12.5, 'the last value, not No Response');
    const listed = JSON.parse(cli(['device', 'list', '--json', '--data-dir', hub.dataDir]).stdout) as Array<{ id: string; state: string }>;
    assert.equal(listed.find((d) => d.id === 'sleepy-1')?.state, 'sleeping');
  });

  it('promises its keepalive to the hub and keeps it with heartbeats while idle, so it stays online [P-20]', async (t) => {
    if (!python3(t)) return;
    const beat = start(PROBE, { device_id: 'beat-1', keepalive: 2 });
    await beat.waitFor((e) => e.status === 'broker ok', 10_000, 'the connection');
    const id = await eventually(async () => characteristicId(await controller.getAccessories(), 'beat-1', 'Switch', 'On'), 10_000, 'the accessory');
    const since = Date.now();
    const beats = () => messages.filter((m) => m.topic === 'HomeKit/beat-1/$keepalive' && m.payload === '2' && m.at >= since);
    // Idle for over 3 keepalives: the hub would call it offline after 3 s of silence.
    await eventually(() => beats().length >= 3, 10_000, 'three heartbeats');
    const read = (await controller.getCharacteristics([id])).characteristics[0] as { value?: unknown; status?: number };
    assert.equal(read.status, undefined, 'still answering, not No Response');
    const announced = messages.filter((m) => m.topic.startsWith('HomeKit/beat-1/$')).map((m) => m.topic.slice('HomeKit/beat-1/'.length));
    assert.ok(announced.indexOf('$keepalive') > announced.indexOf('$state'), `$keepalive follows $state online: ${announced.join(', ')}`);
    await beat.kill();
  });

  it('reboots after too long without broker contact, and remembers why', async (t) => {
    if (!python3(t)) return;
    const unreachable = start(PROBE, { device_id: 'lonely-1', port: 1, reset_after: 1, backoff_min: 0.2 });
    await eventually(() => unreachable.events.filter((e) => e.started === 'lonely-1').length >= 2, 10_000, 'a restart of the device loop');
    await unreachable.kill();
    assert.equal(readFileSync(join(unreachable.root, 'last_reboot.txt'), 'utf8'), 'no broker contact for 1 s');
  });
  const sha1 = (bytes: Buffer) => createHash('sha1').update(bytes).digest('hex');
  const otaReports = (id: string) =>
    messages.filter((m) => m.topic === `stat/${id}/OTA`).map((m) => JSON.parse(m.payload) as { file: string; ok: boolean; error: string | null });

  it('an OTA transfer longer than the keepalive feeds the watchdog and keeps the MQTT link (finding 3)', async (t) => {
    if (!python3(t)) return;
    const slow = start(PROBE, { device_id: 'slow-1', keepalive: 2, watchdog_ms: 2000 });
    await slow.waitFor((e) => e.status === 'broker ok', 10_000, 'the connection');
    const bytes = Buffer.from(Array.from({ length: 512 * 28 }, (_, i) => (i * 7) % 256));
    // A slow pull server: 512 bytes every 250 ms, about 7 s, over twice the watchdog's 2 s and beyond the
    // 3 s after which the broker drops a client that neither pings nor publishes (1.5 keepalives).
    let timer: NodeJS.Timeout | undefined;
    let began = 0;
    const server: Server = createServer((socket) => {
      began = Date.now();
      let sent = 0;
      timer = setInterval(() => {
        if (sent >= bytes.length) {
          clearInterval(timer);
          socket.end();
          return;
        }
        socket.write(bytes.subarray(sent, sent + 512));
        sent += 512;
      }, 250);
      socket.on('error', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const since = Date.now();
      await admin.publishAsync('slow-1/OTA', `127.0.0.1|${port}|lib/slow.bin|${sha1(bytes)}|0`, { qos: 1 });
      const report = await eventually(() => otaReports('slow-1').find((r) => r.file === 'lib/slow.bin'), 30_000, 'the transfer report');
      assert.equal(report.ok, true, JSON.stringify(report));
      assert.ok(Date.now() - began > 6000, 'the transfer took over 6 s');
      assert.deepEqual(readFileSync(join(slow.root, 'lib', 'slow.bin.new')), bytes, 'staged intact');
      assert.ok(!slow.events.some((e) => e.status === 'broker lost' && e.at >= since), `the MQTT link held: ${slow.output().slice(-500)}`);
      assert.ok(!messages.some((m) => m.topic === 'HomeKit/slow-1/$state' && m.payload === 'offline' && m.at >= since), 'never offline');
      const dog = slow.events.filter((e) => typeof e.watchdog === 'object').map((e) => e.watchdog as { feeds: number; max_gap_ms: number });
      assert.ok(dog.length > 0, 'the watchdog was started and fed');
      assert.ok(dog[dog.length - 1]!.max_gap_ms < 2000, `fed at least every 2 s: longest gap ${dog[dog.length - 1]!.max_gap_ms} ms`);
      assert.ok(!slow.events.some((e) => e.watchdog === 'reset'), 'no watchdog reset');
    } finally {
      clearInterval(timer);
      server.close();
      await slow.kill();
    }
  });

  it('a 4-field trigger (seed 002) verifies, puts the file in place and reboots; a bad hash changes nothing (finding 7)', async (t) => {
    if (!python3(t)) return;
    const root = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: 'seed-1', backoff_min: 0.2, backoff_max: 2 });
    roots.push(root);
    mkdirSync(join(root, 'lib'));
    writeFileSync(join(root, 'lib', 'app.py'), 'print("old")\n');
    const seed = start(PROBE, {}, [], root);
    await seed.waitFor((e) => e.status === 'broker ok', 10_000, 'the connection');
    const log = pino({ level: 'silent' });
    const pull = async (bytes: Buffer) => servePull({ bytes, host: '127.0.0.1', allowedAddress: '127.0.0.1', timeoutMs: 20_000, log, deviceId: 'seed-1' });

    const wrong = Buffer.from('print("corrupt")\n');
    const refused = await pull(wrong);
    await admin.publishAsync('seed-1/OTA', `127.0.0.1|${refused.port}|lib/app.py|${sha1(Buffer.from('something else'))}`, { qos: 1 });
    const bad = await eventually(() => otaReports('seed-1').find((r) => r.file === 'lib/app.py'), 10_000, 'the report of the bad transfer');
    assert.equal(bad.ok, false);
    assert.match(bad.error ?? '', /hash mismatch/);
    assert.equal(readFileSync(join(root, 'lib', 'app.py'), 'utf8'), 'print("old")\n', 'a bad hash leaves the file');

    const fresh = Buffer.from('print("new")\n');
    const served = await pull(fresh);
    await admin.publishAsync('seed-1/OTA', `127.0.0.1|${served.port}|lib/app.py|${sha1(fresh)}`, { qos: 1 });
    await eventually(() => seed.events.filter((e) => e.started === 'seed-1').length >= 2, 15_000, 'the reboot after the update');
    assert.equal(seed.events.filter((e) => e.started === 'seed-1').length, 2, 'one reboot: the bad transfer did not reboot');
    assert.equal(readFileSync(join(root, 'lib', 'app.py'), 'utf8'), 'print("new")\n', 'the new file is in place');
    assert.ok(!existsSync(join(root, 'lib', 'app.py.new')) && !existsSync(join(root, 'lib', 'app.py.old')), 'nothing left staged');
    assert.equal(readFileSync(join(root, 'last_reboot.txt'), 'utf8'), 'update of lib/app.py');
    assert.deepEqual(
      otaReports('seed-1').map((r) => r.ok),
      [false, true],
    );
    await seed.kill();
  });

  it('a retained /set waiting for a sleeping device is applied once on connect and confirmed; an empty (cleared) one is no command (finding 8)', async (t) => {
    if (!python3(t)) return;
    const proxy = new TcpProxy(hub.info.mqtt.port!);
    await proxy.start();
    try {
      const first = start(PROBE, { device_id: 'waker-1', port: proxy.port });
      await first.waitFor((e) => e.status === 'broker ok', 10_000, 'registration');
      await first.kill();
      // The write the hub keeps for the device while it is away (retained).
      await admin.publishAsync('HomeKit/waker-1/Switch/On/set', '1', { qos: 1, retain: true });
      const since = Date.now();
      const waker = start(PROBE, {}, [], first.root);
      const confirmations = () => messages.filter((m) => m.topic === 'HomeKit/waker-1/Switch/On' && m.payload === '1' && m.at >= since).length;
      await waker.waitFor((e) => e.set === 'On' && e.value === true, 10_000, 'the retained write');
      await eventually(() => confirmations() >= 1, 5000, 'the confirmation');

      // Reconnect before the hub cleared it: delivered again, confirmed again, not applied again.
      const before = confirmations();
      await proxy.cut(500);
      await eventually(() => waker.events.filter((e) => e.status === 'broker ok').length >= 2, 15_000, 'the reconnection');
      await eventually(() => confirmations() > before, 10_000, 'the second confirmation');
      assert.equal(waker.events.filter((e) => e.set === 'On').length, 1, 'applied exactly once');

      // Cleared (empty retained payload): no command. Then a live write, which must be the next one applied.
      await admin.publishAsync('HomeKit/waker-1/Switch/On/set', '', { qos: 1, retain: true });
      await admin.publishAsync('HomeKit/waker-1/Switch/On/set', '0', { qos: 1 });
      await waker.waitFor((e) => e.set === 'On' && e.value === false, 10_000, 'the live write');
      assert.deepEqual(
        waker.events.filter((e) => e.set === 'On').map((e) => e.value),
        [true, false],
      );
      await waker.kill();
    } finally {
      await proxy.stop();
    }
  });
});
