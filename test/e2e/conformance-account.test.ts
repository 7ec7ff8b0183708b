/**
 * `mqttkit conformance` logs in with a temporary admin account. A run that is interrupted (Ctrl-C,
 * SIGTERM) removes it; a run killed outright (SIGKILL, power cut) leaves it, and the next hub start
 * removes it: a temporary admin login never becomes a standing one. Its name form is reserved.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { VirtualDevice } from '../../device/simulator/virtual-device.js';
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, devicePassword } from '../helpers/mqtt-device.js';

describe("the conformance checker's temporary admin account", { timeout: 300_000 }, () => {
  let hub: RunningHub;
  let sim: VirtualDevice;

  before(async () => {
    hub = await startHub({ args: ['--ota-reboot-timeout', '20s'] });
    sim = new VirtualDevice({
      id: 'acct-sim',
      kind: 'switch',
      password: devicePassword('acct-sim'),
      url: hub.info.mqtt.address,
      interval: 2,
      jitter: 0,
      sleepSeconds: 5,
    });
    await sim.start();
  });
  after(async () => {
    await sim?.stop().catch(() => {});
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  const admins = async (): Promise<string[]> => {
    const listed = await cliAsync(['user', 'list', '--json', '--data-dir', hub.dataDir]);
    return (JSON.parse(listed.stdout || '[]') as Array<{ name: string }>).map((a) => a.name);
  };
  const online = () =>
    eventually(
      async () => {
        const listed = await cliAsync(['devices', '--json', '--data-dir', hub.dataDir]);
        return (JSON.parse(listed.stdout || '[]') as Array<{ id: string; state: string }>).some((d) => d.id === 'acct-sim' && d.state === 'online');
      },
      30_000,
      'acct-sim to be online',
    );

  /** Starts a conformance run and resolves once its temporary account exists (with the run's exit). */
  async function startRun() {
    const child = spawn(process.execPath, [BIN, 'conformance', 'acct-sim', '--json', '--data-dir', hub.dataDir, '--timeout', '20', '--sleep-wait', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const account = await eventually(async () => (await admins()).find((name) => name.startsWith('conformance-')), 30_000, "the checker's account to exist");
    assert.equal(child.exitCode, null, `the run ended before it could be interrupted:\n${output}`);
    return { child, exited, account, output: () => output };
  }

  it('is removed when the run is interrupted with Ctrl-C (SIGINT)', async () => {
    await online();
    const run = await startRun();
    run.child.kill('SIGINT');
    await run.exited;
    assert.deepEqual(await admins(), [], `the interrupted run left its admin account:\n${run.output()}`);
  });

  it('is removed at the next hub start when the run was killed outright (SIGKILL)', async () => {
    await online();
    const run = await startRun();
    run.child.kill('SIGKILL');
    await run.exited;
    assert.deepEqual(await admins(), [run.account], 'a SIGKILL runs no clean-up: the account is still there');
    await hub.stop('SIGTERM');
    hub = await startHub({ dataDir: hub.dataDir, args: ['--ota-reboot-timeout', '20s'] });
    assert.deepEqual(await admins(), [], "the hub start left the killed run's admin account in place");
    await hub.printed(new RegExp(`removed the admin account ${run.account}`));
  });

  it('has a reserved name form: user add refuses it', async () => {
    const added = await cliAsync(['user', 'add', 'conformance-0badc0de', '--admin', '--data-dir', hub.dataDir]);
    assert.notEqual(added.status, 0, added.stdout);
    assert.match(added.stderr, /conformance/);
    assert.deepEqual(await admins(), []);
  });
});
