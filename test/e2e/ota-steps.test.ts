/**
 * OTA job steps (docs/ota.md [O-13]..[O-16]): a job discards what earlier jobs staged and holds the
 * device's commit to the job's files; a device that drops mid-transfer is waited for and the job
 * resumes within its deadline; a failed commit after a reboot=1 transfer is reported and fails the
 * job; SHA-256 for devices that list it. Real hub process, the CPython device library and scripted
 * TypeScript devices that break a transfer off and drop off the network.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin } from '../helpers/mqtt-device.js';
import { type ScriptedDevice, startScriptedDevice } from '../helpers/ota-device.js';
import { deviceRoot, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';

interface JobJson {
  id: number;
  state: string;
  message: string;
  transfers: Array<{ file: string; ok: boolean; error: string | null }>;
}

/** The deadline the drop tests use, in seconds; set by environment so an older hub still starts. */
const DEADLINE_S = 15;

describe('OTA job steps: discard, commit lists, drops, failed commits, hashes', { timeout: 300_000 }, () => {
  let hub: RunningHub;
  let admin: MqttClient;
  let python: string | undefined;
  const devices: RunningDevice[] = [];
  const scripted: ScriptedDevice[] = [];
  const roots: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-ota-steps-'));
  const messages: Array<{ topic: string; text: string }> = [];

  const py = (t: TestContext) => (python ??= requireTool(t, 'python3', ['python3'], 'apt-get install python3'));
  const start = (id: string, args: string[] = [], prepare?: (root: string) => void) => {
    const root = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: id, backoff_min: 0.2, backoff_max: 1 });
    roots.push(root);
    prepare?.(root);
    const device = runDevice(python!, PROBE, root, args);
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
  const file = (name: string, content: string) => {
    const path = join(work, name);
    writeFileSync(path, content);
    return path;
  };
  const starts = (d: RunningDevice) => d.events.filter((e) => typeof e.started === 'string').length;

  before(async () => {
    hub = await startHub({ env: { MQTTKIT_OTA_JOB_DEADLINE: `${DEADLINE_S}s` }, args: ['--ota-reboot-timeout', '20s'] });
    admin = await connectAdmin(hub.info.mqtt.address, 'steps-tester', addAdmin(hub.dataDir, 'steps-tester'));
    admin.on('error', () => {});
    await admin.subscribeAsync(['stat/+/OTA', '+/OTA'], { qos: 1 });
    admin.on('message', (topic, payload) => messages.push({ topic, text: payload.toString() }));
  });

  after(async () => {
    for (const d of devices) await d.kill();
    for (const d of scripted) await d.stop().catch(() => {});
    admin?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    roots.forEach(removeRoot);
    rmSync(work, { recursive: true, force: true });
  });

  it('[O-13] a file staged by a failed sync does not go live with a later, unrelated push --no-reboot', async (t) => {
    if (!py(t)) return;
    const device = start('steps-stale', [], (root) => {
      writeFileSync(join(root, 'main.py'), 'print("old main")\n');
      writeFileSync(join(root, 'blocker'), 'a file where the manifest wants a folder\n');
    });
    await online(device);
    // A sync whose second file cannot be written: main.py is staged (main.py.new), then the job fails.
    file('new-main.py', 'print("half of an update")\n');
    file('x.py', 'X = 1\n');
    writeFileSync(join(work, 'stale-manifest.txt'), 'new-main.py main.py\nx.py blocker/x.py\n');
    const failed = await ota(['sync', 'steps-stale', join(work, 'stale-manifest.txt')]);
    assert.equal(failed.job.state, 'failed', failed.job.message);
    assert.ok(existsSync(join(device.root, 'main.py.new')), 'the failed sync left main.py staged');

    const pushed = await ota(['push', 'steps-stale', file('other.py', 'OTHER = 1\n'), '--no-reboot']);
    assert.equal(pushed.job.state, 'succeeded', pushed.job.message);
    assert.equal(readFileSync(join(device.root, 'other.py'), 'utf8'), 'OTHER = 1\n');
    assert.equal(readFileSync(join(device.root, 'main.py'), 'utf8'), 'print("old main")\n', 'the half-done update of main.py stayed out');
    assert.equal(existsSync(join(device.root, 'main.py.new')), false, 'the job discarded it first');
    assert.match(pushed.job.message, /discarded.*main\.py\.new/);
  });

  it('[O-13] a device that commits more than the job sent (no discard) fails the job, naming the file', async (t) => {
    if (!py(t)) return;
    const device = start('steps-nodiscard', ['--no-discard'], (root) => {
      writeFileSync(join(root, 'main.py'), 'print("old main")\n');
      writeFileSync(join(root, 'main.py.new'), 'print("staged long ago")\n');
    });
    await online(device);
    const pushed = await ota(['push', 'steps-nodiscard', file('other2.py', 'OTHER = 2\n'), '--no-reboot']);
    assert.equal(pushed.job.state, 'failed', pushed.job.message);
    assert.match(pushed.job.message, /commit does not match the job: it also made live 'main\.py', which this job did not send/);
  });

  it('[O-15] a failed commit after a reboot=1 transfer is reported on stat/<id>/OTA, the device does not reboot, the job fails with it', async (t) => {
    if (!py(t)) return;
    const device = start('steps-commit', [], (root) => {
      // `conf` is a folder and `conf.old` too: the device cannot move the folder aside nor put a file in its place.
      mkdirSync(join(root, 'conf'));
      writeFileSync(join(root, 'conf', 'keep'), 'x');
      mkdirSync(join(root, 'conf.old'));
      writeFileSync(join(root, 'conf.old', 'keep'), 'x');
    });
    await online(device);
    const since = messages.length;
    const pushed = await ota(['push', 'steps-commit', file('conf', 'CONF = 1\n'), '--as', 'conf']);
    assert.equal(pushed.job.state, 'failed', pushed.job.message);
    assert.match(
      pushed.job.message,
      /^conf: transferred and verified, but the device's commit failed, so it kept its old files and did not reboot: commit failed/,
    );
    const report = messages.slice(since).find((m) => m.topic === 'stat/steps-commit/OTA' && m.text.includes('"file": "conf"'));
    assert.ok(report, 'a report on stat/<id>/OTA');
    const parsed = JSON.parse(report.text) as { ok: boolean; step: string; error: string; hash: string };
    assert.equal(parsed.ok, false);
    assert.equal(parsed.step, 'commit');
    assert.match(parsed.error, /^commit failed/);
    assert.ok(parsed.hash, 'the hash of the good transfer');
    assert.equal(starts(device), 1, 'the device did not reboot');
    assert.equal(readFileSync(join(device.root, 'conf', 'keep'), 'utf8'), 'x', 'the old files stay');
  });

  it('[O-16] a device that lists sha256 gets sha256:<hex> in the trigger, and reports it in the same form', async (t) => {
    if (!py(t)) return;
    const device = start('steps-hash');
    await online(device);
    const content = 'HASHED = 256\n';
    const since = messages.length;
    const pushed = await ota(['push', 'steps-hash', file('hashed.py', content), '--no-reboot']);
    assert.equal(pushed.job.state, 'succeeded', pushed.job.message);
    const expected = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    const trigger = messages.slice(since).find((m) => m.topic === 'steps-hash/OTA');
    assert.ok(trigger, 'the trigger was seen');
    assert.equal(trigger.text.split('|')[3], expected);
    const report = messages.slice(since).find((m) => m.topic === 'stat/steps-hash/OTA');
    assert.equal((JSON.parse(report!.text) as { hash: string }).hash, expected);
  });

  it('[O-14] a device that drops mid-transfer and comes back is waited for; the job resumes and succeeds', async () => {
    const device = await startScriptedDevice(hub.info.mqtt.address, 'steps-drop', { kind: 'esp32', drops: { times: 1, awayMs: 3000 } });
    scripted.push(device);
    const pushed = await ota(['push', 'steps-drop', file('drop.py', 'DROP = 1\n'), '--as', 'drop.py']);
    assert.equal(pushed.job.state, 'succeeded', pushed.job.message);
    assert.equal(device.files.get('drop.py')?.toString(), 'DROP = 1\n');
    assert.equal(device.triggers.length, 2, 'the interrupted transfer was sent again');
    assert.match(pushed.job.message, /resumed after the device dropped once/);
  });

  it('[O-14] a device that drops mid-transfer and stays away fails the job at its deadline, saying so', async () => {
    const device = await startScriptedDevice(hub.info.mqtt.address, 'steps-gone', { kind: 'esp32', drops: { times: 1 } });
    scripted.push(device);
    const pushed = await ota(['push', 'steps-gone', file('gone.py', 'GONE = 1\n'), '--as', 'gone.py']);
    assert.equal(pushed.job.state, 'failed', pushed.job.message);
    assert.match(
      pushed.job.message,
      new RegExp(
        `steps-gone left during the transfer of gone\\.py and did not come back within the job's deadline \\(${DEADLINE_S} s from its start, --ota-job-deadline\\)`,
      ),
    );
  });
});
