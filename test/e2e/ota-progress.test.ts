/**
 * [O-26] A pull transfer's progress moves with the bytes: the job's live events (`job` on the API's event
 * stream, what `mqttkit ota push` and the dashboard show) carry the bytes the device took so far while
 * the transfer runs, never going back, and end at the file's size. The device is the CPython device
 * library, reading at about 256 KiB/s (a board on Wi-Fi), so the transfer lasts a few seconds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HubClient } from '../../src/cli/hub-client.js';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync } from '../helpers/mqtt-device.js';
import { deviceRoot, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';

interface JobEvent {
  id: number;
  device: string;
  state: string;
  startedAt: number;
  finishedAt: number;
  progress: {
    bytes: number;
    bytesTotal: number;
    step: string;
    timing?: { totalMs: number; hubMs: number; deviceMs: number; wireMs: number; firstByteMs?: number; spans: Array<{ who: string; ms: number }> };
  } | null;
}

/** A device's job events on the API's live stream (as the CLI follows them), until one says the job ended. */
function followJobs(hub: RunningHub, device: string, ms: number): { seen: JobEvent[]; followed: Promise<boolean> } {
  const seen: JobEvent[] = [];
  const followed = HubClient.open(hub.dataDir, hub.child.pid!).stream(
    '',
    (event, data) => {
      const job = data as JobEvent;
      if (event !== 'job' || job.device !== device) return false;
      seen.push(job);
      return !['queued', 'running'].includes(job.state);
    },
    ms,
  );
  return { seen, followed };
}

describe('OTA progress', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let device: RunningDevice | undefined;
  let root: string | undefined;
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-ota-progress-'));

  before(async () => {
    hub = await startHub({ args: ['--log-level', 'warn'] });
  });

  after(async () => {
    await device?.kill();
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    if (root) removeRoot(root);
    rmSync(work, { recursive: true, force: true });
  });

  it("a pull transfer's job events show the bytes as they move, increasing, ending at the file's size", async (t) => {
    const python = requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    if (!python) return;
    root = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: 'progress-1' });
    device = runDevice(python, PROBE, root, ['--pace', '256']);
    await device.waitFor((e) => e.status === 'broker ok', 15_000, 'the device to connect');
    const payload = randomBytes(1024 * 1024);
    const file = join(work, 'payload.bin');
    writeFileSync(file, payload);

    // Follow the job as the CLI does: the API's live event stream.
    const { seen, followed } = followJobs(hub, 'progress-1', 90_000);
    const pushed = await cliAsync(['ota', 'push', 'progress-1', file, '--no-reboot', '--json', '--data-dir', hub.dataDir]);
    assert.ok(await followed, `the job's events end with its end; seen: ${JSON.stringify(seen)}`);
    const job = JSON.parse(pushed.stdout) as JobEvent;
    assert.equal(job.state, 'succeeded', pushed.stdout + pushed.stderr);
    assert.ok(readFileSync(join(root, 'payload.bin')).equals(payload), 'the device holds the bytes sent');

    const sending = seen.filter((j) => j.progress?.step === 'sending payload.bin').map((j) => j.progress!.bytes);
    const moving = [...new Set(sending.filter((b) => b > 0 && b < payload.length))];
    assert.ok(moving.length >= 2, `the bytes show while they move (at least two values between 0 and the size), seen: ${JSON.stringify(sending)}`);
    const all = seen.filter((j) => j.progress).map((j) => j.progress!.bytes);
    assert.deepEqual(
      all,
      [...all].sort((a, b) => a - b),
      'the bytes never go back',
    );
    assert.equal(seen.at(-1)?.progress?.bytes, payload.length, "the last event says the file's size");
    assert.equal(seen.at(-1)?.progress?.bytesTotal, payload.length);
  });

  it("the job's end says where its time went: the hub's own share, the device's, the bytes on the wire", async (t) => {
    if (!device) return t.skip('needs the transfer above');
    const file = join(work, 'second.bin');
    writeFileSync(file, randomBytes(512 * 1024));
    const pushed = await cliAsync(['ota', 'push', 'progress-1', file, '--no-reboot', '--json', '--data-dir', hub.dataDir]);
    const job = JSON.parse(pushed.stdout) as JobEvent;
    assert.equal(job.state, 'succeeded', pushed.stdout + pushed.stderr);
    const timing = job.progress?.timing;
    assert.ok(timing, `the ended job's progress has its timing: ${pushed.stdout}`);
    const sum = timing.hubMs + timing.deviceMs + timing.wireMs;
    assert.ok(Math.abs(sum - timing.totalMs) < 0.1, `the shares add up to the run's time: ${JSON.stringify(timing)}`);
    assert.ok(timing.totalMs <= job.finishedAt - job.startedAt + 5, "within the job's start and end");
    // 512 KiB read at 256 KiB/s: about 2 s on the wire, the largest share (the hub's own is far less)
    assert.ok(timing.wireMs >= 1000, `the bytes were on the wire while the device read them: ${JSON.stringify(timing)}`);
    assert.ok(timing.wireMs > timing.hubMs, `the wire's share is larger than the hub's: ${JSON.stringify(timing)}`);
    assert.ok(timing.firstByteMs !== undefined && timing.firstByteMs >= 0, 'the time to the first byte');
    for (const who of ['hub', 'device', 'wire'])
      assert.ok(
        timing.spans.some((s) => s.who === who),
        `a span of the ${who}`,
      );
  });

  it('a job that a quick device finishes between two sends of the stream still reaches whoever follows it, ended', async (t) => {
    const python = requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    if (!python) return;
    const quickRoot = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: 'quick-1' });
    const quick = runDevice(python, PROBE, quickRoot, []);
    try {
      await quick.waitFor((e) => e.status === 'broker ok', 15_000, 'the quick device to connect');
      const file = join(work, 'small.py');
      writeFileSync(file, 'X = 1\n');
      for (let round = 0; round < 3; round++) {
        const { seen, followed } = followJobs(hub, 'quick-1', 20_000);
        const pushed = await cliAsync(['ota', 'push', 'quick-1', file, '--no-reboot', '--json', '--data-dir', hub.dataDir]);
        assert.equal((JSON.parse(pushed.stdout) as JobEvent).state, 'succeeded', pushed.stdout + pushed.stderr);
        assert.ok(await followed, `round ${round}: the stream told of the job's end; seen: ${JSON.stringify(seen)}`);
      }
    } finally {
      await quick.kill();
      removeRoot(quickRoot);
    }
  });
});
