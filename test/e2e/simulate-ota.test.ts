/**
 * A simulated device takes every OTA job the README shows, with the files in examples/: a push, a sync,
 * a firmware image it boots from its spare partition (confirmed), and one that does not start (rolled
 * back to the old partition by its bootloader, no keepversion) [O-6].
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sha1 } from '../../device/simulator/ota-side.js';
import { VirtualDevice } from '../../device/simulator/virtual-device.js';
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, connectDevice, devicePassword } from '../helpers/mqtt-device.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

interface JobJson {
  state: string;
  message: string;
}

describe('a simulated device takes OTA jobs', { timeout: 180_000 }, () => {
  let hub: RunningHub;
  let sim: VirtualDevice;

  before(async () => {
    hub = await startHub({ args: ['--ota-reboot-timeout', '20s', '--no-homekit'] });
    sim = new VirtualDevice({
      id: 'sim-ota',
      kind: 'switch',
      password: devicePassword('sim-ota'),
      url: hub.info.mqtt.address,
      interval: 5,
      jitter: 0,
      sleepSeconds: 5,
    });
    await sim.start();
    await eventually(
      async () => {
        const listed = await cliAsync(['devices', '--json', '--data-dir', hub.dataDir]);
        return (JSON.parse(listed.stdout || '[]') as Array<{ id: string; state: string }>).some((d) => d.id === 'sim-ota' && d.state === 'online');
      },
      20_000,
      'sim-ota online',
    );
  });
  after(async () => {
    await sim?.stop();
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  const ota = async (args: string[]) => {
    const run = await cliAsync(['ota', ...args, '--json', '--data-dir', hub.dataDir]);
    try {
      return { status: run.status, job: JSON.parse(run.stdout) as JobJson };
    } catch {
      throw new Error(`ota ${args.join(' ')} printed no JSON (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
    }
  };
  const cmd = async (command: string) => {
    const run = await cliAsync(['cmd', 'sim-ota', command, '--data-dir', hub.dataDir]);
    assert.equal(run.status, 0, run.stderr);
    return run.stdout.trim();
  };
  const example = (name: string) => `${EXAMPLES}${name}`;

  it('push and sync of the examples: the files are live on the device, byte for byte', async () => {
    const pushed = await ota(['push', 'sim-ota', example('main.py')]);
    assert.equal(pushed.job.state, 'succeeded', pushed.job.message);
    assert.equal(pushed.status, 0);
    assert.ok(sim.ota.files.get('main.py')?.equals(readFileSync(example('main.py'))));

    const synced = await ota(['sync', 'sim-ota', example('manifest.txt')]);
    assert.equal(synced.job.state, 'succeeded', synced.job.message);
    assert.ok(sim.ota.files.get('lib/relay.py')?.equals(readFileSync(example('lib/relay.py'))));
    const hashes = JSON.parse(await cmd('hashes')) as Record<string, string>;
    assert.equal(hashes['lib/relay.py'], sha1(readFileSync(example('lib/relay.py'))));
    assert.equal(sim.ota.staged.size, 0, 'nothing left staged');
  });

  it('firmware: examples/app.bin boots from the spare partition and is confirmed; examples/broken.bin is rolled back', async () => {
    const before = JSON.parse(await cmd('partitions')) as { count: number; running: string };
    assert.equal(before.count, 2);
    const good = await ota(['firmware', 'sim-ota', example('app.bin')]);
    assert.equal(good.job.state, 'succeeded', good.job.message);
    assert.equal(good.status, 0);
    assert.match(good.job.message, /-> 1\.27\.1-sim, confirmed \(keepversion sent\)/);
    const now = JSON.parse(await cmd('getversion')) as { firmware: string; partition: string };
    assert.equal(now.firmware, '1.27.1-sim');
    assert.notEqual(now.partition, before.running, 'it runs from the other partition');
    // Confirmed: a later reset stays on the new firmware.
    assert.equal(await cmd('reboot'), 'rebooting');
    await eventually(async () => (JSON.parse(await cmd('getversion')) as { firmware: string }).firmware === '1.27.1-sim', 20_000, 'the device back');
    assert.equal((JSON.parse(await cmd('getversion')) as { partition: string }).partition, now.partition);

    const bad = await ota(['firmware', 'sim-ota', example('broken.bin')]);
    assert.equal(bad.job.state, 'rolled-back', bad.job.message);
    assert.equal(bad.status, 1);
    assert.match(bad.job.message, /keepversion not sent/);
    const after = JSON.parse(await cmd('getversion')) as { firmware: string; partition: string };
    assert.deepEqual(after, { ...after, firmware: '1.27.1-sim', partition: now.partition });
    assert.match(await cmd('msg_reboot'), /reboot command/);

    // The boot lines say what the bootloader did, where `mqttkit logs` shows them.
    const logs = await cliAsync(['logs', 'sim-ota', '-n', '1000', '--data-dir', hub.dataDir]);
    assert.match(logs.stdout, /booted the new firmware 1\.27\.1-sim on ota_1, not yet confirmed/);
    assert.match(logs.stdout, /the firmware on ota_0 did not start: rolled back to 1\.27\.1-sim on ota_1/);
  });

  it("`logs <id>` shows that device's last lines while another device talks more (-n counts its own lines)", async () => {
    const chatty = await connectDevice(hub.info.mqtt.address, 'sim-chatty');
    try {
      // sim-ota's lines between the other's: its last 3 lines are far apart in the hub's log
      for (let round = 1; round <= 3; round++) {
        for (let i = 1; i <= 10; i++) await chatty.publishAsync('stat/sim-chatty/Log', `chatter ${round}.${i}`, { qos: 1 });
        await eventually(
          async () => new RegExp(`chatter ${round}\\.10`).test((await cliAsync(['logs', 'sim-chatty', '--data-dir', hub.dataDir])).stdout),
          10_000,
          'the chatter kept',
        );
        assert.match(await cmd('msg_exception'), /no exception recorded/);
      }
    } finally {
      await chatty.endAsync();
    }
    // `-f` starts with the earlier lines: this device's last 3, however many lines others sent since
    const follow = spawn(process.execPath, [BIN, 'logs', 'sim-ota', '-f', '-n', '3', '--data-dir', hub.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    follow.stdout.on('data', (d: Buffer) => (output += d.toString()));
    follow.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await eventually(() => output.trim().split('\n').length >= 3, 15_000, `3 lines of sim-ota:\n${output}`);
      assert.ok(!/chatter/.test(output), output);
      const printed = await cliAsync(['logs', 'sim-ota', '-n', '3', '--data-dir', hub.dataDir]);
      assert.equal(printed.stdout.trim().split('\n').length, 3, printed.stdout);
    } finally {
      follow.kill('SIGKILL');
    }
  });
});
