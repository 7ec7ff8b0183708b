/**
 * A device's answers are bounded before they become a job's message or a log line: a `commit` list
 * of thousands of paths, a `discard` list as long, or a report's `error` of tens of kilobytes end the
 * job with a short message naming the problem, and do not flood the hub's log. [O-13] [O-3]
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync } from '../helpers/mqtt-device.js';
import { type ScriptedDevice, startScriptedDevice } from '../helpers/ota-device.js';

interface JobJson {
  state: string;
  message: string;
}

/** About 48 KB of paths: under the 64 KB payload limit, thousands of entries (about 15 bytes each). */
const manyPaths = Array.from({ length: 3500 }, (_, i) => `lib/f${i}.py`);

describe("a device's long answers do not make long job messages or logs", { timeout: 90_000 }, () => {
  let hub: RunningHub;
  const scripted: ScriptedDevice[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-ota-bounds-'));

  before(async () => {
    hub = await startHub({ args: ['--ota-reboot-timeout', '20s'] });
  });
  after(async () => {
    for (const d of scripted) await d.stop().catch(() => {});
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    rmSync(work, { recursive: true, force: true });
  });

  const push = async (device: string, name: string) => {
    const path = join(work, name);
    writeFileSync(path, 'X = 1\n');
    const result = await cliAsync(['ota', 'push', device, path, '--no-reboot', '--json', '--data-dir', hub.dataDir]);
    try {
      return JSON.parse(result.stdout) as JobJson;
    } catch {
      throw new Error(`ota push printed no JSON:\n${result.stdout}\n${result.stderr}`);
    }
  };

  it('a commit list of 3,500 paths (and a discard list as long) fails the job with a short message', async () => {
    const device = await startScriptedDevice(hub.info.mqtt.address, 'bounds-commit', {
      kind: 'esp32',
      answers: { discard: { discarded: manyPaths }, commit: { committed: manyPaths } },
    });
    scripted.push(device);
    const logBefore = hub.output().length;
    const job = await push('bounds-commit', 'a.py');
    assert.equal(job.state, 'failed', job.message);
    assert.match(job.message, /commit does not match the job: it also made live 'lib\/f0\.py'/);
    assert.ok(job.message.length < 2000, `the job's message is ${job.message.length} characters long`);
    const logged = hub.output().length - logBefore;
    assert.ok(logged < 16_000, `the job wrote ${logged} characters to the hub's log`);
  });

  it('a commit error of 40 KB fails the job with a short message', async () => {
    const device = await startScriptedDevice(hub.info.mqtt.address, 'bounds-error', {
      kind: 'esp32',
      answers: { commit: { committed: [], error: `commit failed: ${'x'.repeat(40_000)}` } },
    });
    scripted.push(device);
    const job = await push('bounds-error', 'b.py');
    assert.equal(job.state, 'failed', job.message);
    assert.match(job.message, /^commit failed: x/);
    assert.ok(job.message.length < 2000, `the job's message is ${job.message.length} characters long`);
  });
});
