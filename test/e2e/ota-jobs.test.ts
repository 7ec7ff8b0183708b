/**
 * OTA jobs that go wrong: no job takes the hub down (a device that is online but not connected, a
 * restart in the middle), `mqttkit ota cancel` and the API's cancel end them, a removed device's jobs
 * fail, and the API's upload folders go when their job ends or the hub starts. Real hub processes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { type RunningMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { addAdmin, cli, cliAsync, cliBounded, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';
import { deviceRoot, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';

interface JobJson {
  id: number;
  device: string;
  state: string;
  message: string | null;
}

/** One hub with an admin client (to play devices' `$state`) and an API token. */
class Harness {
  hub!: RunningHub;
  admin: MqttClient | undefined;
  token = '';

  /** `args`: extra `mqttkit start` options; an external broker has no admin account here (no `$state` play). */
  constructor(private readonly args: string[] = []) {}

  get external(): boolean {
    return this.args.includes('--mqtt-url');
  }

  async start(dataDir?: string): Promise<void> {
    this.hub = await startHub({ args: this.args, ...(dataDir ? { dataDir } : {}) });
    if (!this.token) this.token = (JSON.parse(cli(['token', 'create', 'tests', '--json', '--data-dir', this.hub.dataDir]).stdout) as { token: string }).token;
    if (this.external) return;
    const password = dataDir ? this.adminPassword : (this.adminPassword = addAdmin(this.hub.dataDir, 'tester'));
    this.admin = await connectAdmin(this.hub.info.mqtt.address, 'tester', password);
    this.admin.on('error', () => {}); // MQTT.js may report errors after close
  }

  adminPassword = '';

  async restart(): Promise<void> {
    this.admin?.end(true);
    assert.equal(await this.hub.stop('SIGTERM'), 0, this.hub.output());
    await this.start(this.hub.dataDir);
  }

  async stop(): Promise<void> {
    this.admin?.end(true);
    await this.hub?.stop('SIGKILL');
  }

  get dataDir(): string {
    return this.hub.dataDir;
  }

  /** What a device's own `$state` message would do: the registry believes it. */
  async state(device: string, state: 'online' | 'offline'): Promise<void> {
    await this.admin!.publishAsync(`HomeKit/${device}/Switch/On`, '0', { qos: 1, retain: false });
    await this.admin!.publishAsync(`HomeKit/${device}/$state`, state, { qos: 1, retain: false });
    await eventually(async () => (await this.devices()).some((d) => d.id === device && d.state === state), 10_000, `${device} ${state}`);
  }

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`http://127.0.0.1:${this.hub.info.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  async devices(): Promise<Array<{ id: string; state: string }>> {
    return (await this.api('GET', '/api/devices')).json as unknown as Array<{ id: string; state: string }>;
  }

  async job(id: number): Promise<JobJson> {
    const jobs = (await this.api('GET', '/api/ota/jobs')).json as unknown as JobJson[];
    return jobs.find((j) => j.id === id)!;
  }

  /** Waits for a job to reach one of `states`; fails at once if the hub process ends meanwhile. */
  async jobIn(id: number, states: string[], ms: number): Promise<JobJson> {
    const found = await eventually(
      async () => {
        if (this.hub.child.exitCode !== null) return 'the hub exited';
        const { state } = await this.job(id);
        return states.includes(state) ? state : undefined;
      },
      ms,
      `job #${id} to be ${states.join(' or ')}`,
    ).catch((e: Error) => e.message);
    this.assertAlive();
    const job = await this.job(id);
    assert.ok(states.includes(job.state), `job #${id}: ${found}; it is ${job.state} (${job.message})`);
    return job;
  }

  assertAlive(): void {
    assert.equal(this.hub.child.exitCode, null, `the hub exited (code ${this.hub.child.exitCode}):\n${this.hub.output().slice(-4000)}`);
  }

  /** Queues a push with the CLI (the user's own file) and returns its job number. */
  async push(device: string, file: string): Promise<number> {
    const result = await cliAsync(['ota', 'push', device, file, '--no-wait', '--json', '--data-dir', this.dataDir]);
    assert.equal(result.status, 0, result.stderr);
    return (JSON.parse(result.stdout) as JobJson).id;
  }

  /** Queues a push through the API (an upload) and returns its job number and upload folder. */
  async upload(device: string, content = 'print("hello")\n', reboot = true): Promise<{ id: number; folder: string }> {
    const before = new Set(this.uploadFolders());
    const { status, json } = await this.api('POST', '/api/ota/push', {
      device,
      file: { path: 'main.py', content: Buffer.from(content).toString('base64') },
      reboot,
    });
    assert.equal(status, 200, JSON.stringify(json));
    const folder = this.uploadFolders().find((f) => !before.has(f));
    assert.ok(folder, 'the upload has a folder');
    return { id: json.job as number, folder };
  }

  uploadFolders(): string[] {
    const root = join(this.dataDir, 'uploads');
    return existsSync(root) ? readdirSync(root).map((f) => join(root, f)) : [];
  }
}

describe('OTA jobs: nothing takes the hub down; cancel; uploads', { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-ota-jobs-'));
  const userFile = join(work, 'main.py');
  const dirs: string[] = [];
  const harnesses: Harness[] = [];
  const roots: string[] = [];
  const devices: RunningDevice[] = [];

  let mosquitto: RunningMosquitto | undefined;
  const harness = async (args: string[] = []) => {
    const h = new Harness(args);
    harnesses.push(h);
    await h.start();
    dirs.push(h.dataDir);
    return h;
  };

  before(() => writeFileSync(userFile, 'print("mine")\n'));
  after(async () => {
    for (const d of devices) await d.kill();
    for (const h of harnesses) await h.stop();
    await mosquitto?.stop();
    dirs.forEach(removeDataDir);
    roots.forEach(removeRoot);
    rmSync(work, { recursive: true, force: true });
  });

  it('a job for a device that is online but not listening waits for it; one that listens but never answers fails with a clear message and the hub lives on, also after a restart; ota cancel ends a running job', {
    timeout: 150_000,
  }, async () => {
    const h = await harness();
    // `ghost` said `$state online`, but nothing is connected as ghost: nobody listens. [P-21]
    await h.state('ghost', 'online');
    assert.equal((await cliAsync(['device', 'set', 'ghost', 'ota-protocol', '2', '--data-dir', h.dataDir])).status, 0);
    const manifest = join(work, 'ghost.txt');
    writeFileSync(manifest, `${userFile} main.py\n`);
    const sync = async () => {
      const result = await cliAsync(['ota', 'sync', 'ghost', manifest, '--no-wait', '--json', '--data-dir', h.dataDir]);
      assert.equal(result.status, 0, result.stderr);
      return (JSON.parse(result.stdout) as JobJson).id;
    };
    const pending = new Map<string, string>();
    h.admin!.on('message', (topic, payload) => pending.set(topic, payload.toString()));
    await h.admin!.subscribeAsync('cmnd/ghost/OTA/pending', { qos: 1 });

    const first = await sync();
    await eventually(() => pending.get('cmnd/ghost/OTA/pending') === '1', 10_000, 'pending = 1 for ghost');
    assert.equal((await h.job(first)).state, 'queued', 'a job waits for a device that does not listen');

    // Now something connects as ghost and subscribes, but never answers: the job runs and fails, saying why.
    let ghost = await connectDevice(h.hub.info.mqtt.address, 'ghost');
    ghost.on('error', () => {});
    await ghost.subscribeAsync('cmnd/ghost/OTA', { qos: 1 });
    const failed = await h.jobIn(first, ['failed'], 45_000);
    assert.match(failed.message!, /ghost did not answer on stat\/ghost\/Log within 15 s/);
    assert.ok(existsSync(userFile), "the user's own file is never removed");

    // A job running when the hub stops runs again after the restart: still no crash, and it can be cancelled.
    const second = await sync();
    await h.jobIn(second, ['running'], 10_000);
    ghost.end(true);
    await h.restart();
    await h.state('ghost', 'online');
    ghost = await connectDevice(h.hub.info.mqtt.address, 'ghost');
    ghost.on('error', () => {});
    await ghost.subscribeAsync('cmnd/ghost/OTA', { qos: 1 });
    await h.jobIn(second, ['running'], 10_000);
    const cancelled = await cliAsync(['ota', 'cancel', String(second), '--data-dir', h.dataDir]);
    assert.equal(cancelled.status, 0, cancelled.stderr);
    assert.match(cancelled.stdout, new RegExp(`job #${second} \\(sync for ghost\\) cancelled while it ran`));
    const ended = await h.jobIn(second, ['cancelled'], 5000);
    assert.match(ended.message!, /^cancelled by 'mqttkit ota cancel'/);
    const again = await cliAsync(['ota', 'cancel', String(second), '--data-dir', h.dataDir]);
    assert.equal(again.status, 1);
    assert.match(again.stdout, new RegExp(`job #${second} \\(sync for ghost\\) had already ended: cancelled \\(cancelled by 'mqttkit ota cancel'`));

    // Past the time the cancelled job's waits would have run out, and a third job's too: still serving.
    const third = await sync();
    await h.jobIn(third, ['failed'], 45_000);
    h.assertAlive();
    ghost.end(true);
    const metrics = (await h.api('GET', '/api/metrics')).json as { faults: Record<string, number> };
    assert.deepEqual(metrics.faults, { unhandledRejections: 0, uncaughtExceptions: 0, listenerErrors: 0 }, 'no job relied on the last-resort handlers');
    assert.doesNotMatch(h.hub.output(), /unhandled|uncaught/i);
  });

  it('ota cancel works with the hub stopped, and says when there is nothing to cancel', { timeout: 150_000 }, async () => {
    const h = await harness();
    await h.state('dozy', 'offline');
    const queued = await h.push('dozy', userFile);
    await h.stop();
    const cancelled = await cliAsync(['ota', 'cancel', String(queued), '--data-dir', h.dataDir]);
    assert.equal(cancelled.status, 0, cancelled.stderr);
    assert.match(cancelled.stdout, new RegExp(`job #${queued} \\(push for dozy\\) cancelled before it started`));
    const jobs = JSON.parse((await cliAsync(['ota', 'jobs', '--json', '--data-dir', h.dataDir])).stdout) as JobJson[];
    const job = jobs.find((j) => j.id === queued)!;
    assert.equal(job.state, 'cancelled');
    assert.match(job.message!, /the hub was not running/);
    const unknown = await cliAsync(['ota', 'cancel', '999', '--data-dir', h.dataDir]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr + unknown.stdout, /there is no job #999/);
    const usage = await cliAsync(['ota', 'cancel', '--data-dir', h.dataDir]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /give a job number, or --rollout <id>/);
  });

  it("the API cancels a queued job and removes its upload; a removed device's queued job fails and its upload goes", { timeout: 150_000 }, async () => {
    const h = await harness();
    await h.state('napper', 'offline');
    const kept = await h.upload('napper');
    const dropped = await h.upload('napper');

    const cancel = await h.api('POST', `/api/ota/jobs/${dropped.id}/cancel`);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.json));
    assert.match(String(cancel.json.message), new RegExp(`job #${dropped.id} \\(push for napper\\) cancelled before it started`));
    assert.match((await h.job(dropped.id)).message!, /^cancelled by tests \(API\)/);
    assert.equal(existsSync(dropped.folder), false, "the cancelled job's upload folder is gone");
    assert.equal(existsSync(kept.folder), true, 'the queued job keeps its folder');

    const twice = await h.api('POST', `/api/ota/jobs/${dropped.id}/cancel`);
    assert.equal(twice.status, 409);
    assert.match(String(twice.json.error), /had already ended: cancelled/);
    assert.equal((await h.api('POST', '/api/ota/jobs/4242/cancel')).status, 404);
    const bad = await h.api('POST', '/api/ota/jobs/first/cancel');
    assert.equal(bad.status, 400);
    assert.match(String(bad.json.error), /'first' is not a job number/);

    // The device goes away: its queued job cannot run; it fails and says why, instead of waiting forever.
    const removed = await cliAsync(['device', 'remove', 'napper', '--data-dir', h.dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    const failed = await h.jobIn(kept.id, ['failed'], 10_000);
    assert.match(failed.message!, /napper was removed/);
    assert.equal(existsSync(kept.folder), false, "the failed job's upload folder is gone");
  });

  it('a rollout whose job is cancelled starts no other device; ota cancel --rollout stops a whole rollout', { timeout: 150_000 }, async () => {
    const h = await harness();
    for (const id of ['roll-1', 'roll-2', 'roll-3']) await h.state(id, 'offline');
    const manifest = join(work, 'manifest.txt');
    writeFileSync(manifest, `${userFile} main.py\n`);
    const rolloutJobs = async () =>
      (JSON.parse((await cliAsync(['ota', 'jobs', '--json', '--data-dir', h.dataDir])).stdout) as JobJson[]).filter((j) => j.device.startsWith('roll-'));

    // Cancel the canary's job: the rollout ends `cancelled`, the other two devices are never started.
    const first = cliBounded(['ota', 'rollout', manifest, '--devices', 'roll-*', '--canary', '1', '--data-dir', h.dataDir]);
    const canary = await eventually(async () => (await rolloutJobs())[0], 10_000, 'the canary job');
    assert.equal(canary.device, 'roll-1');
    assert.equal((await cliAsync(['ota', 'cancel', String(canary.id), '--data-dir', h.dataDir])).status, 0);
    const followed = await first;
    assert.equal(followed.status, 1);
    assert.match(
      followed.stdout,
      new RegExp(`rollout #1 cancelled: canary roll-1's job #${canary.id} was cancelled by 'mqttkit ota cancel'.*; the other 2 devices were not touched`),
    );
    assert.equal((await rolloutJobs()).length, 1, 'no other device was started');

    // A whole rollout: its queued canary job is cancelled with it.
    const second = cliBounded(['ota', 'rollout', manifest, '--devices', 'roll-*', '--canary', '1', '--data-dir', h.dataDir]);
    await eventually(async () => (await rolloutJobs()).length === 2, 10_000, 'the second canary job');
    const stopped = await cliAsync(['ota', 'cancel', '--rollout', '2', '--data-dir', h.dataDir]);
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.match(stopped.stdout, /rollout #2 cancelled: 1 unfinished job\(s\) cancelled, 2 device\(s\) not started/);
    assert.match((await second).stdout, /rollout #2 cancelled: cancelled by 'mqttkit ota cancel'/);
    const jobs = await rolloutJobs();
    assert.deepEqual(
      jobs.map((j) => j.state),
      ['cancelled', 'cancelled'],
    );
  });

  it('at start, upload folders no unfinished job needs are removed; a queued job keeps its folder across the restart', { timeout: 150_000 }, async () => {
    const h = await harness();
    await h.state('sleeper', 'offline');
    const queued = await h.upload('sleeper');
    const stray = join(h.dataDir, 'uploads', '0b5e7c9a-stray');
    mkdirSync(stray, { recursive: true });
    writeFileSync(join(stray, 'file.bin'), 'left over by a crash');
    await h.restart();
    assert.equal(existsSync(stray), false, 'the stray folder is gone');
    assert.equal(existsSync(queued.folder), true, 'the queued job still has its file');
    assert.equal((await h.job(queued.id)).state, 'queued');
  });

  it('a job that succeeds takes its upload folder with it', { timeout: 150_000 }, async (t: TestContext) => {
    const python = requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    if (!python) return;
    const h = await harness();
    const root = deviceRoot({ broker: '127.0.0.1', port: h.hub.info.mqtt.port, device_id: 'up-a', backoff_min: 0.2, backoff_max: 1 });
    roots.push(root);
    const device = runDevice(python, PROBE, root);
    devices.push(device);
    await device.waitFor((e) => e.status === 'broker ok', 15_000, 'the device to connect');
    await eventually(async () => (await h.devices()).some((d) => d.id === 'up-a' && d.state === 'online'), 10_000, 'up-a online');
    const job = await h.upload('up-a', 'VALUE = 1\n', false);
    const done = await h.jobIn(job.id, ['succeeded'], 60_000);
    assert.match(done.message!, /transferred and committed/);
    assert.equal(existsSync(job.folder), false, 'the folder went with the job');
  });

  it('over an external broker, the device says its address (open) and the push goes through', { timeout: 150_000 }, async (t: TestContext) => {
    const python = requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    const binary = python && requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    if (!python || !binary) return;
    mosquitto = await startMosquitto(binary);
    const h = await harness(['--mqtt-url', mosquitto.url, '--ota-host', '127.0.0.1']);
    const root = deviceRoot({ broker: '127.0.0.1', port: mosquitto.port, device_id: 'ext-a', backoff_min: 0.2, backoff_max: 1 });
    roots.push(root);
    const device = runDevice(python, PROBE, root);
    devices.push(device);
    await device.waitFor((e) => e.status === 'broker ok', 15_000, 'the device to connect');
    await eventually(async () => (await h.devices()).some((d) => d.id === 'ext-a' && d.state === 'online'), 10_000, 'ext-a online');
    const job = await h.upload('ext-a', 'VALUE = 2\n', false);
    const done = await h.jobIn(job.id, ['succeeded', 'failed'], 60_000);
    assert.equal(done.state, 'succeeded', done.message ?? '');
  });
});
