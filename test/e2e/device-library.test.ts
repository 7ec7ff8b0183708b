/**
 * The MicroPython device library, run under CPython against the real hub: registration, HomeKit,
 * writes, observability commands, last will, stored identity, reconnects, and deep sleep.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { eventually, removeDataDir, startHub, type RunningHub } from '../helpers/hub-process.js';
import { accessoryBySerial, characteristicId, characteristicValue, pair } from '../helpers/homekit-controller.js';
import { addAdmin, cli, cliAsync, connectAdmin } from '../helpers/mqtt-device.js';
import { deviceRoot, EXAMPLES, PROBE, removeRoot, runDevice, type RunningDevice } from '../helpers/python-device.js';
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
    const db = await eventually(async () => {
      const current = await controller.getAccessories();
      return accessoryBySerial(current, 'probe-1') ? current : undefined;
    }, 10_000, 'the accessory');
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
    const version = JSON.parse(await command('probe-1', 'getversion')) as { firmware: string; app: string; library: string; python: string };
    assert.equal(version.app, '2.3.4');
    assert.equal(version.firmware, '1.0.0');
    assert.match(version.python, /^cpython 3\./);
    assert.match(await command('probe-1', 'nonsense'), /unknown command nonsense \(known: .*stats/);
  });

  it('goes No Response when killed; comes back with its stored password; is refused without it', async (t) => {
    if (!python3(t)) return;
    const first = devices.find((d) => d.events.some((e) => e.started === 'probe-1'))!;
    const id = characteristicId(await controller.getAccessories(), 'probe-1', 'Switch', 'On')!;
    await first.kill();
    await eventually(async () => ((await controller.getCharacteristics([id])).characteristics[0] as { status?: number }).status === NO_RESPONSE, 10_000, 'No Response');

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
      await counter.waitFor((e) => e.status === 'broker ok' && e.at > Date.now() - 5000 && counter.events.filter((x) => x.status === 'broker ok').length >= 2, 15_000, 'the reconnection');
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

  it('a sleepy device announces sleep and is not marked offline while asleep', async (t) => {
    if (!python3(t)) return;
    const sleepy = start(join(EXAMPLES, 'sleepy_sensor.py'), { device_id: 'sleepy-1', sleep: 30 });
    assert.equal(await sleepy.exited, 0, sleepy.output());
    const id = await eventually(async () => characteristicId(await controller.getAccessories(), 'sleepy-1', 'TemperatureSensor', 'CurrentTemperature'), 10_000, 'the sleepy accessory');
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
});
