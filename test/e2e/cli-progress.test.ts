/**
 * OTA progress a person can watch (issue 14): `mqttkit ota push|sync|rollout` show bars that move with
 * the bytes, in human units, with the speed and the time left; a rollout shows one bar per device and a
 * total (firmware too). Written to a pipe (as here), the bars are lines, one per bar every second, on stderr. The
 * devices are the CPython device library reading at about 256 KiB/s, so a transfer lasts seconds.
 * And the OTA cap: a file over it is refused before anything is sent, naming the limit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, cliBounded, connectDevice } from '../helpers/mqtt-device.js';
import { deviceRoot, PROBE, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { findTool } from '../helpers/system-tools.js';

interface BarLine {
  label: string;
  percent: number;
  done: string;
  size: string;
  speed: string;
  left: string;
}

/** The bar lines in the CLI's stderr: `<label> <bar> <n>% | <done> / <size> | <speed> | <left> | <step>`. */
function barLines(stderr: string): BarLine[] {
  const lines: BarLine[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^\s*(\S+)\s+\S+\s+(\d+)% \| ([\d.]+ [KMG]?i?B) \/ ([\d.]+ [KMG]?i?B) \| (\S+(?: \S+)?) \| ([^|]+?) \|/.exec(line);
    if (m) lines.push({ label: m[1]!, percent: Number(m[2]), done: m[3]!, size: m[4]!, speed: m[5]!, left: m[6]! });
  }
  return lines;
}

/** The bar moved with the bytes: percentages strictly between 0 and 100 that grow, with a speed and a time left. */
function assertMoving(lines: BarLine[], label: string, size: string, output: string): void {
  const mine = lines.filter((l) => l.label === label);
  const between = mine.filter((l) => l.percent > 0 && l.percent < 100);
  assert.ok(between.length >= 2, `${label}: at least two lines while the bytes move:\n${output}`);
  const percents = mine.map((l) => l.percent);
  assert.deepEqual(
    percents,
    [...percents].sort((a, b) => a - b),
    `${label}: the bar never goes back:\n${output}`,
  );
  for (const l of between) {
    assert.equal(l.size, size, `${label}: the size in human units`);
    assert.match(l.done, /^[\d.]+ (B|KiB|MiB)$/);
    assert.match(l.speed, /^[\d.]+ (B|KiB|MiB)\/s$/, `${label}: a speed: ${JSON.stringify(l)}`);
    assert.match(l.left, /^(\d+ (s|min)( \d+ s)?) left$/, `${label}: the time left: ${JSON.stringify(l)}`);
  }
  assert.equal(mine.at(-1)?.percent, 100, `${label}: ends at 100 %:\n${output}`);
}

describe('CLI OTA progress', { timeout: 240_000 }, () => {
  let hub: RunningHub;
  const devices: RunningDevice[] = [];
  const roots: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-cli-progress-'));
  const python = findTool('python3', ['python3']);

  before(async () => {
    hub = await startHub({ args: ['--log-level', 'warn'] });
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.kill()));
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    roots.forEach(removeRoot);
    rmSync(work, { recursive: true, force: true });
  });

  async function paced(id: string): Promise<void> {
    const root = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: id });
    roots.push(root);
    const device = runDevice(python!, PROBE, root, ['--pace', '256']);
    devices.push(device);
    await device.waitFor((e) => e.status === 'broker ok', 15_000, `${id} to connect`);
  }

  it('`ota push` shows a bar that moves with the bytes, with speed and time left in human units', async (t) => {
    if (!python) return t.skip('needs python3');
    await paced('bar-1');
    const file = join(work, 'payload.bin');
    writeFileSync(file, randomBytes(1024 * 1024));
    const pushed = await cliBounded(['ota', 'push', 'bar-1', file, '--no-reboot', '--data-dir', hub.dataDir]);
    assert.equal(pushed.status, 0, pushed.stdout + pushed.stderr);
    assert.match(pushed.stdout, /^ok: bar-1/m, 'the result stays on stdout');
    assertMoving(barLines(pushed.stderr), 'bar-1', '1 MiB', pushed.stderr);
    // The device answered msg_exception with "no exception recorded" [O-20]: healthy, not a crash.
    const listed = JSON.parse(cli(['devices', '--json', '--data-dir', hub.dataDir]).stdout) as Array<{ id: string; health: string; firmware: string | null }>;
    assert.equal(listed.find((x) => x.id === 'bar-1')?.health, 'ok', JSON.stringify(listed));
  });

  it('`ota sync` shows its bar too', async (t) => {
    if (!python || devices.length === 0) return t.skip('needs the device above');
    writeFileSync(join(work, 'big.bin'), randomBytes(768 * 1024));
    writeFileSync(join(work, 'manifest.json'), JSON.stringify({ files: { 'big.bin': 'big.bin' } }));
    const synced = await cliBounded(['ota', 'sync', 'bar-1', join(work, 'manifest.json'), '--data-dir', hub.dataDir]);
    assert.equal(synced.status, 0, synced.stdout + synced.stderr);
    assertMoving(barLines(synced.stderr), 'bar-1', '768 KiB', synced.stderr);
  });

  it('`ota firmware` shows its bar too', async (t) => {
    if (!python || devices.length === 0) return t.skip('needs the device above');
    // The CPython port's "partition" holds a JSON image; the padding makes it big enough to watch.
    const image = JSON.stringify({ version: '2.0.0', boots: true, pad: 'x'.repeat(640 * 1024 - 60) });
    writeFileSync(join(work, 'fw.bin'), image.padEnd(640 * 1024, ' '));
    const flashed = await cliBounded(['ota', 'firmware', 'bar-1', join(work, 'fw.bin'), '--data-dir', hub.dataDir]);
    assert.equal(flashed.status, 0, flashed.stdout + flashed.stderr);
    assertMoving(barLines(flashed.stderr), 'bar-1', '640 KiB', flashed.stderr);
  });

  it('`ota rollout` shows one bar per device and a total', async (t) => {
    if (!python || devices.length === 0) return t.skip('needs the device above');
    await paced('bar-2');
    writeFileSync(join(work, 'fleet.bin'), randomBytes(512 * 1024));
    writeFileSync(join(work, 'fleet.json'), JSON.stringify({ files: { 'fleet.bin': 'fleet.bin' } }));
    const rolled = await cliBounded(
      ['ota', 'rollout', join(work, 'fleet.json'), '--devices', 'bar-*', '--canary', '1', '--concurrency', '2', '--data-dir', hub.dataDir],
      150_000,
    );
    assert.equal(rolled.status, 0, rolled.stdout + rolled.stderr);
    const lines = barLines(rolled.stderr);
    for (const id of ['bar-1', 'bar-2']) assertMoving(lines, id, '512 KiB', rolled.stderr);
    const totals = lines.filter((l) => l.label === 'total');
    assert.ok(totals.length >= 2, `a total bar:\n${rolled.stderr}`);
    assert.equal(totals.at(-1)!.size, '1 MiB', 'the total counts both devices');
    assert.equal(totals.at(-1)!.percent, 100);
    assert.match(rolled.stdout, /rollout #\d+ succeeded/);
  });

  it('a file over the OTA cap is refused before anything is sent, naming the limit: push, sync, firmware, rollout', async () => {
    // The hub runs with the default cap; this one is smaller: the running hub's own cap is the one met.
    const capped = await startHub({ args: ['--log-level', 'warn', '--ota-max-file-size', '8k'] });
    try {
      const d = ['--data-dir', capped.dataDir];
      // A device the hub knows (a retained announcement by an account), so only the size can refuse.
      const { password } = JSON.parse(cli(['device', 'add', 'cap-1', '--json', ...d]).stdout) as { password: string };
      const client = await connectDevice(capped.info.mqtt.address, 'cap-1', { password });
      client.on('error', () => {});
      await client.publishAsync('HomeKit/cap-1/Switch/On', '0', { qos: 1 });
      await eventually(() => (JSON.parse(cli(['devices', '--json', ...d]).stdout) as unknown[]).length === 1, 10_000, 'cap-1 to be known');
      await client.endAsync();
      const big = join(work, 'big-16k.bin');
      writeFileSync(big, randomBytes(16 * 1024));
      writeFileSync(join(work, 'big-manifest.json'), JSON.stringify({ files: { 'big.bin': 'big-16k.bin' } }));
      const runs = [
        ['ota', 'push', 'cap-1', big],
        ['ota', 'sync', 'cap-1', join(work, 'big-manifest.json')],
        ['ota', 'firmware', 'cap-1', big],
        ['ota', 'rollout', join(work, 'big-manifest.json'), '--devices', 'all'],
      ];
      for (const args of runs) {
        const result = await cliBounded([...args, ...d], 30_000);
        assert.equal(result.status, 2, `${args.slice(0, 2).join(' ')} is refused: ${result.stdout}${result.stderr}`);
        assert.match(result.stderr, /is 16 KiB, over the OTA limit of 8 KiB/, `${args.slice(0, 2).join(' ')} names the limit: ${result.stderr}`);
      }
      const jobs = JSON.parse(cli(['ota', 'jobs', '--json', ...d]).stdout) as unknown[];
      assert.equal(jobs.length, 0, 'no job was queued');
      assert.doesNotMatch(capped.output(), /413|too large|over the OTA limit/i, 'nothing reached the hub');
    } finally {
      await capped.stop('SIGKILL');
      removeDataDir(capped.dataDir);
    }
  });
});
