/**
 * Issue 11, findings 2 and 7 (hub side), with scripted devices (test/helpers/ota-device.ts) against a
 * real hub process:
 * - firmware A/B is confirmed by partition, not by version string: a rebuild on the same MicroPython
 *   release that runs from the written partition is confirmed; one back on the old partition is
 *   rolled back without keepversion [O-6];
 * - a device running seed 002's firmware (no commands, 4-field trigger) is updated with the 4-field
 *   trigger, one transfer and one reboot per file; `mqttkit device set <id> ota-protocol` overrides [O-11].
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync } from '../helpers/mqtt-device.js';
import { type ScriptedDevice, startScriptedDevice } from '../helpers/ota-device.js';

interface JobJson {
  state: string;
  message: string;
  transfers: Array<{ file: string; ok: boolean }>;
}

describe('OTA protocol: firmware by partition, seed 002 devices', { timeout: 300_000 }, () => {
  let hub: RunningHub;
  const devices: ScriptedDevice[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-ota-protocol-'));
  const file = (name: string, content: string) => {
    const path = join(work, name);
    writeFileSync(path, content);
    return path;
  };
  const ota = async (args: string[]) => {
    const result = await cliAsync(['ota', ...args, '--json', '--data-dir', hub.dataDir]);
    try {
      return { status: result.status, job: JSON.parse(result.stdout) as JobJson };
    } catch {
      throw new Error(`ota ${args.join(' ')} printed no JSON:\n${result.stdout}\n${result.stderr}`);
    }
  };
  const device = async (id: string, options: Parameters<typeof startScriptedDevice>[2]) => {
    const d = await startScriptedDevice(hub.info.mqtt.address, id, options);
    devices.push(d);
    await eventually(
      async () => {
        const list = JSON.parse((await cliAsync(['devices', '--json', '--data-dir', hub.dataDir])).stdout) as Array<{ id: string; state: string }>;
        return list.some((x) => x.id === id && x.state === 'online');
      },
      15_000,
      `${id} online`,
    );
    return d;
  };

  before(async () => {
    hub = await startHub({ args: ['--ota-reboot-timeout', '10s'] });
  });
  after(async () => {
    for (const d of devices) await d.stop().catch(() => {});
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    rmSync(work, { recursive: true, force: true });
  });

  it('firmware: a rebuild on the same version is confirmed when the device runs from the written partition', async () => {
    const esp = await device('ab-good', { kind: 'esp32', firmware: '1.27.0', boots: true });
    const result = await ota(['firmware', 'ab-good', file('rebuild.bin', 'same release, new build')]);
    assert.equal(result.job.state, 'succeeded', result.job.message);
    assert.match(result.job.message, /1\.27\.0 -> 1\.27\.0, confirmed \(keepversion sent\): it runs from partition ota_1, where the image was written/);
    assert.equal(esp.running, 'ota_1');
    assert.equal(esp.kept, 1, 'keepversion sent once');
  });

  it('firmware: a device back on the old partition is rolled back, and keepversion is never sent', async () => {
    const esp = await device('ab-bad', { kind: 'esp32', firmware: '1.27.0', boots: false });
    const result = await ota(['firmware', 'ab-bad', file('broken.bin', 'an image that does not start')]);
    assert.equal(result.status, 1);
    assert.equal(result.job.state, 'rolled-back', result.job.message);
    assert.match(
      result.job.message,
      /rolled back: the image was written to partition ota_1 but the device runs from ota_0: it came back on the old version 1\.27\.0; keepversion not sent/,
    );
    assert.equal(esp.reboots, 1);
    assert.equal(esp.kept, 0);
    assert.ok(!esp.commands.includes('keepversion'));
  });

  it('a seed 002 device (no commands) gets the 4-field trigger: the push succeeds once it fetched the file and came back', async () => {
    const seed = await device('seed-1', { kind: 'seed' });
    const result = await ota(['push', 'seed-1', file('main.py', 'print("seed")\n'), '--as', 'main.py']);
    assert.equal(result.job.state, 'succeeded', result.job.message);
    assert.match(result.job.message, /sent with the 4-field trigger \(OTA protocol 1/);
    assert.equal(seed.triggers.length, 1);
    assert.equal(seed.triggers[0]!.split('|').length, 4, `4 fields: ${seed.triggers[0]}`);
    assert.equal(seed.files.get('main.py')?.toString(), 'print("seed")\n');
    assert.equal(seed.reboots, 1);

    // A sync: one transfer and one reboot per file (protocol 1 has no hashes, no commit).
    writeFileSync(join(work, 'seed.txt'), 'a.py a.py\nb.py lib/b.py\n');
    file('a.py', 'A = 1\n');
    file('b.py', 'B = 2\n');
    const synced = await ota(['sync', 'seed-1', join(work, 'seed.txt')]);
    assert.equal(synced.job.state, 'succeeded', synced.job.message);
    assert.match(synced.job.message, /2 files sent one by one with the 4-field trigger .* each followed by a reboot/);
    assert.deepEqual(
      synced.job.transfers.map((t) => t.file),
      ['a.py', 'lib/b.py'],
    );
    assert.equal(seed.files.get('lib/b.py')?.toString(), 'B = 2\n');
    assert.equal(seed.reboots, 3);

    // What protocol 1 cannot do is refused by name, and nothing is sent.
    const staged = await ota(['push', 'seed-1', file('c.py', 'C = 3\n'), '--no-reboot']);
    assert.equal(staged.job.state, 'failed');
    assert.match(staged.job.message, /speaks OTA protocol 1 .*--no-reboot cannot be honoured/);
    const firmware = await ota(['firmware', 'seed-1', file('fw.bin', 'image')]);
    assert.equal(firmware.job.state, 'failed');
    assert.match(firmware.job.message, /firmware updates need protocol 2 .*nothing was sent/);
    assert.equal(seed.triggers.length, 3, 'no trigger for the refused jobs');
  });

  it('mqttkit device set <id> ota-protocol 1 makes the hub send 4 fields to a device that speaks 2; auto detects again', async () => {
    const esp = await device('ab-hand', { kind: 'esp32' });
    const set = await cliAsync(['device', 'set', 'ab-hand', 'ota-protocol', '1', '--data-dir', hub.dataDir]);
    assert.equal(set.status, 0, set.stderr);
    const first = await ota(['push', 'ab-hand', file('hand.py', 'H = 1\n')]);
    assert.equal(first.job.state, 'succeeded', first.job.message);
    assert.match(first.job.message, /OTA protocol 1, set by hand/);
    assert.equal(esp.triggers.at(-1)!.split('|').length, 4);
    const shown = JSON.parse((await cliAsync(['device', 'show', 'ab-hand', '--json', '--data-dir', hub.dataDir])).stdout) as { otaProtocol: number };
    assert.equal(shown.otaProtocol, 1);

    assert.equal((await cliAsync(['device', 'set', 'ab-hand', 'ota-protocol', 'auto', '--data-dir', hub.dataDir])).status, 0);
    const second = await ota(['push', 'ab-hand', file('hand.py', 'H = 2\n')]);
    assert.equal(second.job.state, 'succeeded', second.job.message);
    assert.equal(esp.triggers.at(-1)!.split('|').length, 5, 'the device announced "ota": 2');
    const bad = await cliAsync(['device', 'set', 'ab-hand', 'ota-protocol', '3', '--data-dir', hub.dataDir]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /ota-protocol takes 1 .*, 2 .* or auto/);
  });
});
