/**
 * OTA end to end: the real hub, the CLI, and the CPython device library as devices.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { sha1, triggerMessage } from '../../src/ota/protocol.js';
import { servePull } from '../../src/ota/pull-server.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';
import { deviceRoot, EXAMPLES, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';

interface JobJson {
  state: string;
  message: string;
  transfers: Array<{ file: string; ok: boolean }>;
  startedAt: number;
  finishedAt: number;
  device: string;
}

describe('OTA', { timeout: 300_000 }, () => {
  let hub: RunningHub;
  let admin: MqttClient;
  let python: string | undefined;
  const devices: RunningDevice[] = [];
  const roots: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-ota-'));
  const reports: Array<{ topic: string; text: string }> = [];

  const py = (t: TestContext) => (python ??= requireTool(t, 'python3', ['python3'], 'apt-get install python3'));
  const start = (id: string, script = PROBE, extra: Record<string, unknown> = {}, root?: string) => {
    const dir = root ?? deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: id, backoff_min: 0.2, backoff_max: 1, ...extra });
    if (!root) roots.push(dir);
    const device = runDevice(python!, script, dir);
    devices.push(device);
    return device;
  };
  const online = (d: RunningDevice) => d.waitFor((e) => e.status === 'broker ok', 15_000, 'the device to connect');
  const ota = async (args: string[]) => {
    const result = await cliAsync(['ota', ...args, '--json', '--data-dir', hub.dataDir]);
    try {
      return { status: result.status, job: JSON.parse(result.stdout) as JobJson, stderr: result.stderr };
    } catch {
      throw new Error(`ota ${args.join(' ')} printed no JSON:\n${result.stdout}\n${result.stderr}`);
    }
  };
  const file = (name: string, content: string | Buffer) => {
    const path = join(work, name);
    writeFileSync(path, content);
    return path;
  };

  before(async () => {
    hub = await startHub({ args: ['--ota-reboot-timeout', '20s'] });
    admin = await connectAdmin(hub.info.mqtt.address, 'ota-tester', addAdmin(hub.dataDir, 'ota-tester'));
    await admin.subscribeAsync('stat/+/OTA', { qos: 1 });
    admin.on('message', (topic, payload) => reports.push({ topic, text: payload.toString() }));
  });

  after(async () => {
    for (const d of devices) await d.kill();
    admin?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    roots.forEach(removeRoot);
    rmSync(work, { recursive: true, force: true });
  });

  it('pull transfer: binary bytes arrive identical; other addresses are refused; corrupt or cut-off transfers leave nothing behind', async (t) => {
    if (!py(t)) return;
    const device = start('ota-a');
    await online(device);
    const allBytes = Buffer.from(Array.from({ length: 256 * 20 }, (_, i) => i % 256));
    const pushed = await ota(['push', 'ota-a', file('data.bin', allBytes), '--no-reboot']);
    assert.equal(pushed.status, 0, pushed.stderr);
    assert.equal(pushed.job.state, 'succeeded', pushed.job.message);
    assert.ok(readFileSync(join(device.root, 'data.bin')).equals(allBytes), 'bit-identical');

    // The hub's server hands the bytes only to the device's address.
    const server = await servePull({
      bytes: allBytes,
      host: '127.0.0.1',
      allowedAddress: '127.0.0.1',
      timeoutMs: 5000,
      log: pino({ level: 'silent' }),
      deviceId: 'x',
    });
    const stranger = await new Promise<Buffer>((resolve) => {
      const socket = connect({ port: server.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', () => {});
    });
    assert.equal(stranger.length, 0, 'nothing for another address');
    const owner = await new Promise<Buffer>((resolve) => {
      const socket = connect({ port: server.port, host: '127.0.0.1' });
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    assert.ok(owner.equals(allBytes));
    assert.equal(await server.served, true);

    // A test server that flips one byte, or cuts off half-way, with the true hash in the trigger.
    const evil = async (mode: 'flip' | 'cut') => {
      const corrupt = createServer((socket) => {
        const copy = Buffer.from(allBytes);
        if (mode === 'flip') {
          copy[1000] = copy[1000]! ^ 0xff;
          socket.end(copy);
        } else socket.write(copy.subarray(0, 2000), () => socket.destroy());
      });
      await new Promise<void>((r) => corrupt.listen(0, '127.0.0.1', () => r()));
      const since = reports.length;
      await admin.publishAsync(
        'ota-a/OTA',
        triggerMessage('127.0.0.1', (corrupt.address() as { port: number }).port, 'data.bin', sha1(Buffer.alloc(allBytes.length, 7)), false),
        { qos: 1 },
      );
      const report = await eventually(() => reports.slice(since).find((r) => r.topic === 'stat/ota-a/OTA'), 10_000, 'the device report');
      corrupt.close();
      return JSON.parse(report.text) as { ok: boolean; error: string };
    };
    const flipped = await evil('flip');
    assert.equal(flipped.ok, false);
    assert.match(flipped.error, /hash mismatch/);
    const cut = await evil('cut');
    assert.equal(cut.ok, false);
    assert.ok(readFileSync(join(device.root, 'data.bin')).equals(allBytes), 'the old file is untouched');
    assert.deepEqual(
      readdirSync(device.root).filter((f) => f.endsWith('.part') || f.endsWith('.new')),
      [],
      'no partial or staged file left',
    );
  });

  it('sync sends only the files that changed, and verifies the hashes afterwards', async (t) => {
    if (!py(t)) return;
    const device = devices.find((d) => d.events.some((e) => e.started === 'ota-a'))!;
    writeFileSync(
      join(work, 'manifest.txt'),
      '# local file, path on the device\nprofile-one.py one.py\nprofile-two.py lib/two.py\nprofile-three.bin three.bin\n',
    );
    file('profile-one.py', 'print("one")\n');
    file('profile-two.py', 'VALUE = 2\n');
    file('profile-three.bin', Buffer.from([0, 1, 2, 255]));
    const first = await ota(['sync', 'ota-a', join(work, 'manifest.txt')]);
    assert.equal(first.job.state, 'succeeded', first.job.message);
    assert.equal(first.job.transfers.length, 3);

    file('profile-two.py', 'VALUE = 22\n');
    const second = await ota(['sync', 'ota-a', join(work, 'manifest.txt')]);
    assert.equal(second.status, 0, second.job.message);
    assert.deepEqual(
      second.job.transfers.map((x) => x.file),
      ['lib/two.py'],
      'exactly the changed file',
    );
    assert.equal(readFileSync(join(device.root, 'lib/two.py'), 'utf8'), 'VALUE = 22\n');
    assert.match(second.job.message, /1 of 3 files sent.*verified/);

    const stats = await cliAsync(['cmd', 'ota-a', 'stats', '--data-dir', hub.dataDir]);
    assert.equal(stats.status, 0, stats.stderr);
    assert.ok((JSON.parse(stats.stdout) as { uptime_s: number }).uptime_s >= 0);

    const third = await ota(['sync', 'ota-a', join(work, 'manifest.txt')]);
    assert.deepEqual(third.job.transfers, []);
    assert.match(third.job.message, /up to date/);
  });

  it('firmware: a healthy image is confirmed; one that comes back on the old version is rolled back without keepversion', async (t) => {
    if (!py(t)) return;
    const device = start('ota-fw');
    await online(device);
    const healthy = await ota(['firmware', 'ota-fw', file('fw-2.bin', JSON.stringify({ version: '2.0.0', boots: true }))]);
    assert.equal(healthy.job.state, 'succeeded', healthy.job.message);
    assert.match(healthy.job.message, /1\.0\.0 -> 2\.0\.0, confirmed \(keepversion sent\)/);
    assert.equal((JSON.parse(readFileSync(join(device.root, 'boot.json'), 'utf8')) as { confirmed: boolean }).confirmed, true);

    const logsBefore = (await cliAsync(['logs', 'ota-fw', '-n', '1000', '--data-dir', hub.dataDir])).stdout;
    const kept = (text: string) => (text.match(/firmware [\d.]+ kept/g) ?? []).length;
    assert.ok(kept(logsBefore) > 0, `the confirmed firmware's keepversion answer is in the logs (else the check below proves nothing):\n${logsBefore}`);
    const broken = await ota(['firmware', 'ota-fw', file('fw-3.bin', JSON.stringify({ version: '3.0.0', boots: false }))]);
    assert.equal(broken.status, 1);
    assert.equal(broken.job.state, 'rolled-back');
    assert.match(broken.job.message, /came back on the old version 2\.0\.0; keepversion not sent/);
    const logsAfter = (await cliAsync(['logs', 'ota-fw', '-n', '1000', '--data-dir', hub.dataDir])).stdout;
    assert.equal(kept(logsAfter), kept(logsBefore), 'no keepversion answered after the broken image');
    const shown = JSON.parse((await cliAsync(['device', 'show', 'ota-fw', '--json', '--data-dir', hub.dataDir])).stdout) as {
      firmware: string;
      lastReboot: string;
      ota: Array<{ state: string }>;
    };
    assert.equal(shown.firmware, '2.0.0');
    assert.deepEqual(
      shown.ota.map((j) => j.state),
      ['rolled-back', 'succeeded'],
    );
    await eventually(
      async () => {
        const again = JSON.parse((await cliAsync(['device', 'show', 'ota-fw', '--json', '--data-dir', hub.dataDir])).stdout) as { lastReboot: string };
        return /rolled back: firmware 3\.0\.0 did not start/.test(again.lastReboot);
      },
      10_000,
      'the hub to learn the reboot reason',
    );
  });

  it('a job for a sleeping device waits, survives a hub restart, and completes when the device wakes', async (t) => {
    if (!py(t)) return;
    const first = start('ota-sleepy', join(EXAMPLES, 'sleepy_sensor.py'), { sleep: 30 });
    assert.equal(await first.exited, 0, first.output());
    await eventually(
      async () =>
        JSON.parse((await cliAsync(['devices', '--json', '--data-dir', hub.dataDir])).stdout).some(
          (d: { id: string; state: string }) => d.id === 'ota-sleepy' && d.state === 'sleeping',
        ),
      10_000,
      'asleep',
    );

    const queued = await ota(['push', 'ota-sleepy', file('calibration.json', '{"offset": 0.5}'), '--no-wait']);
    assert.equal(queued.job.state, 'queued');
    await new Promise((r) => setTimeout(r, 1000));
    const jobs = JSON.parse((await cliAsync(['ota', 'jobs', '--json', '--data-dir', hub.dataDir])).stdout) as Array<{ device: string; state: string }>;
    assert.equal(jobs.find((j) => j.device === 'ota-sleepy')?.state, 'queued', 'waits while the device sleeps');

    assert.equal(await hub.stop('SIGTERM'), 0);
    hub = await startHub({ dataDir: hub.dataDir, args: ['--ota-reboot-timeout', '20s', '--mqtt-port', String(hub.info.mqtt.port)] });
    const woke = start('ota-sleepy', join(EXAMPLES, 'sleepy_sensor.py'), {}, first.root);
    await eventually(
      async () => {
        const list = JSON.parse((await cliAsync(['ota', 'jobs', '--json', '--data-dir', hub.dataDir])).stdout) as Array<{ device: string; state: string }>;
        return list.find((j) => j.device === 'ota-sleepy')?.state === 'succeeded';
      },
      40_000,
      'the job to complete after the wake-up',
    );
    assert.equal(readFileSync(join(first.root, 'calibration.json'), 'utf8'), '{"offset": 0.5}');
    assert.equal(await woke.exited, 0, 'then it went back to sleep');
  });

  it('rollout: a failing canary stops it before the others; a healthy one updates all 6 with at most K at once', async (t) => {
    if (!py(t)) return;
    const fleet = ['roll-0', 'roll-1', 'roll-2', 'roll-3', 'roll-4', 'roll-5'].map((id) => start(id));
    // roll-0 sorts first and becomes the canary; a plain file where its lib/ directory should be breaks it.
    writeFileSync(join(fleet[0]!.root, 'lib'), 'not a directory');
    await Promise.all(fleet.map(online));
    writeFileSync(join(work, 'fleet.json'), JSON.stringify({ files: { 'lib/app.py': 'fleet-app.py' } }));
    file('fleet-app.py', 'APP = "v2"\n');

    // The same rollout twice: first with a canary that fails, then with it mended.
    const rolloutFleet = () =>
      cliAsync(['ota', 'rollout', join(work, 'fleet.json'), '--devices', 'roll-*', '--canary', '1', '--concurrency', '2', '--json', '--data-dir', hub.dataDir]);
    const failed = await rolloutFleet();
    assert.equal(failed.status, 1, failed.stderr);
    const failedRollout = JSON.parse(failed.stdout) as { state: string; message: string; jobs: JobJson[] };
    assert.equal(failedRollout.state, 'failed');
    assert.match(failedRollout.message, /canary roll-0 failed .*the other 5 devices were not touched/);
    assert.deepEqual(
      failedRollout.jobs.map((j) => j.device),
      ['roll-0'],
    );
    for (const d of fleet.slice(1)) assert.ok(!existsSync(join(d.root, 'lib/app.py')));

    rmSync(join(fleet[0]!.root, 'lib'));
    const done = await rolloutFleet();
    const rollout = JSON.parse(done.stdout) as { state: string; jobs: JobJson[] };
    assert.equal(rollout.state, 'succeeded', done.stdout);
    assert.equal(rollout.jobs.filter((j) => j.state === 'succeeded').length, 6);
    for (const d of fleet) assert.equal(readFileSync(join(d.root, 'lib/app.py'), 'utf8'), 'APP = "v2"\n');
    const rest = rollout.jobs.filter((j) => j.device !== 'roll-0');
    const overlap = Math.max(
      ...rest.map((j) => rest.filter((o) => o.startedAt < j.finishedAt && o.finishedAt > j.startedAt && o.startedAt <= j.startedAt).length),
    );
    assert.ok(overlap <= 2, `at most 2 in flight, saw ${overlap}`);
    const canary = rollout.jobs.find((j) => j.device === 'roll-0')!;
    assert.ok(
      rest.every((j) => j.startedAt >= canary.finishedAt),
      'the others start after the canary is verified',
    );
  });

  it("only the hub (and admins) may trigger OTA: a device cannot reach another device's OTA topics", async () => {
    const victim = await connectDevice(hub.info.mqtt.address, 'victim-1');
    const attacker = await connectDevice(hub.info.mqtt.address, 'attacker-1');
    const received: string[] = [];
    await victim.subscribeAsync(['victim-1/OTA', 'cmnd/victim-1/OTA'], { qos: 1 });
    victim.on('message', (topic) => received.push(topic));
    await attacker.publishAsync('victim-1/OTA', '127.0.0.1|1|main.py|0000000000000000000000000000000000000000|1', { qos: 1 });
    await attacker.publishAsync('cmnd/victim-1/OTA', 'reboot', { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(received, []);
    await hub.printed(/"client":"attacker-1","topic":"victim-1\/OTA","msg":"publish outside the device's own topics dropped"/);
    victim.end(true);
    attacker.end(true);
  });
});
