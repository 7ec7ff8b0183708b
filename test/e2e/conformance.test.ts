/**
 * `mqttkit conformance` against the real hub: the simulator and the MicroPython library (on CPython)
 * pass; a deliberately wrong device fails exactly the rules it breaks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualDevice } from '../../device/simulator/virtual-device.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, devicePassword } from '../helpers/mqtt-device.js';
import { deviceRoot, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';
import { startWrongDevice, WRONG_DEVICE_BREAKS } from '../helpers/wrong-device.js';

interface Report {
  device: string;
  passed: boolean;
  failed: string[];
  results: Array<{ id: string; result: 'pass' | 'fail' | 'skip'; reason: string }>;
}

describe('mqttkit conformance', { timeout: 600_000 }, () => {
  let hub: RunningHub;
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    hub = await startHub({ args: ['--ota-reboot-timeout', '20s'] });
  });
  after(async () => {
    for (const stop of stops) await stop().catch(() => {});
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  /** The hub knows the device and it is `online` (or, for a sleeper awake a few ms at a time, `online` or `sleeping`). */
  const known = (id: string, states: string[] = ['online']) =>
    eventually(
      async () => {
        const listed = await cliAsync(['devices', '--json', '--data-dir', hub.dataDir]);
        return (JSON.parse(listed.stdout || '[]') as Array<{ id: string; state: string }>).some((d) => d.id === id && states.includes(d.state));
      },
      20_000,
      `${id} to be known and ${states.join(' or ')}`,
    );

  const conformance = async (id: string, extra: string[] = []) => {
    const run = await cliAsync(['conformance', id, '--json', '--data-dir', hub.dataDir, '--timeout', '20', '--sleep-wait', '0', ...extra]);
    let report: Report;
    try {
      report = JSON.parse(run.stdout) as Report;
    } catch {
      throw new Error(`conformance printed no JSON (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
    }
    if (process.env.CONFORMANCE_DEBUG) console.error(JSON.stringify(report.results.map((r) => [r.result, r.id, r.reason])));
    const table = report.results
      .filter((r) => r.result !== 'pass')
      .map((r) => `${r.result} ${r.id}: ${r.reason}`)
      .join('\n');
    return { status: run.status, report, table };
  };

  it('the simulator passes', async () => {
    const sim = new VirtualDevice({
      id: 'conf-sim',
      kind: 'switch',
      password: devicePassword('conf-sim'),
      url: hub.info.mqtt.address,
      interval: 2,
      jitter: 0,
      sleepSeconds: 5,
    });
    stops.push(() => sim.stop());
    await sim.start();
    await known('conf-sim');
    const { status, report, table } = await conformance('conf-sim');
    assert.deepEqual(report.failed, [], table);
    assert.equal(status, 0);
    // The simulator speaks every optional part, so only the sleep check is left untested.
    assert.deepEqual(
      report.results.filter((r) => r.result === 'skip').map((r) => r.id),
      ['O-7'],
      table,
    );
  });

  it('the MicroPython library (on CPython) passes', async (t) => {
    const python = requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    if (!python) return;
    const root = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: 'conf-py', backoff_min: 0.2, backoff_max: 1 });
    const device: RunningDevice = runDevice(python, PROBE, root);
    stops.push(async () => {
      await device.kill();
      removeRoot(root);
    });
    await device.waitFor((e) => e.status === 'broker ok', 15_000, 'the device to connect');
    await known('conf-py');
    const { status, report, table } = await conformance('conf-py');
    assert.deepEqual(report.failed, [], `${table}\n${device.output().slice(-3000)}`);
    assert.equal(status, 0);
    // Everything is tested but the sleep cycle (this device does not sleep): request ids, discard, sha256 included.
    assert.deepEqual(
      report.results.filter((r) => r.result === 'skip').map((r) => r.id),
      ['O-7'],
      table,
    );
  });

  it('a wrong device fails exactly the rules it breaks, with a reason each, and exit code 1', async () => {
    const wrong = await startWrongDevice(hub.info.mqtt.address, 'conf-wrong');
    stops.push(() => wrong.stop());
    await known('conf-wrong');
    // Its getversion is no JSON, so the hub would take it for seed 002 firmware: say it speaks OTA protocol 2 [O-11].
    const set = await cliAsync(['device', 'set', 'conf-wrong', 'ota-protocol', '2', '--data-dir', hub.dataDir]);
    assert.equal(set.status, 0, set.stderr);
    const { status, report, table } = await conformance('conf-wrong');
    assert.deepEqual([...report.failed].sort(), [...WRONG_DEVICE_BREAKS].sort(), table);
    assert.equal(status, 1);
    const reason = (id: string) => report.results.find((r) => r.id === id)!.reason;
    assert.match(reason('P-1'), /last will/);
    assert.match(reason('P-14'), /no confirmation/);
    assert.match(reason('O-11'), /version 1\.0\.0/);
    assert.match(reason('O-3.bad-hash'), /ok:true/);
  });

  it('a sleeping simulator with a job waiting serves it when it wakes, before it sleeps again [O-7]', async () => {
    // Awake 10 ms at a time: only a device that stays awake while `pending` is 1 finishes the job.
    const sim = new VirtualDevice({
      id: 'conf-sleepy',
      kind: 'sleepy',
      password: devicePassword('conf-sleepy'),
      url: hub.info.mqtt.address,
      interval: 0.01,
      jitter: 0,
      sleepSeconds: 2,
    });
    stops.push(() => sim.stop());
    await sim.start();
    await known('conf-sleepy', ['online', 'sleeping']);
    const { status, report, table } = await conformance('conf-sleepy', ['--only', 'O-7', '--sleep-wait', '30']);
    assert.equal(report.results.find((r) => r.id === 'O-7')?.result, 'pass', table);
    assert.deepEqual(report.failed, [], table);
    assert.equal(status, 0);
  });

  it('refuses an unknown rule id before it touches the hub', async () => {
    const run = await cliAsync(['conformance', 'conf-sim', '--only', 'P-99', '--data-dir', hub.dataDir]);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--only: unknown rule P-99; the rules are P-2, P-0/);
  });
});
