/** `mqttkit simulate` fills the Home app: 200 virtual devices, all accessories, and Ctrl-C stops them cleanly. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { Characteristic } from 'hap-nodejs';
import { type AccessoryDb, pair } from '../helpers/homekit-controller.js';
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';

function simulatedSerials(db: AccessoryDb): string[] {
  return db.accessories
    .flatMap((a) => a.services.flatMap((s) => s.characteristics))
    .filter((c) => c.type === Characteristic.SerialNumber.UUID && String(c.value).startsWith('sim-'))
    .map((c) => String(c.value));
}

describe('mqttkit simulate', { timeout: 180_000 }, () => {
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('runs 200 devices that all appear as accessories, and stops cleanly on Ctrl-C', async () => {
    hub = await startHub();
    const sim = spawn(process.execPath, [BIN, 'simulate', '--devices', '200', '--interval', '2', '--data-dir', hub.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    sim.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    sim.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => sim.once('exit', resolve));
    try {
      await eventually(() => output.includes('running 200 devices'), 60_000, `the fleet to connect:\n${output}`);
      const info = await eventually(
        () => {
          const current = hub!.refresh();
          return current.bridges.length === 2 && current.bridges.every((b) => b.port) ? current : undefined;
        },
        10_000,
        'the second bridge',
      );
      const controllers = await Promise.all(info.bridges.map((b) => pair(b.port!).then((p) => p.client)));
      const serials = await eventually(
        async () => {
          const all = (await Promise.all(controllers.map((c) => c.getAccessories()))).flatMap(simulatedSerials);
          return all.length === 200 ? all : undefined;
        },
        20_000,
        '200 accessories',
      );
      assert.equal(new Set(serials).size, 200);
      for (const kind of ['temperature', 'humidity', 'switch', 'lightbulb', 'sleepy'])
        assert.ok(
          serials.some((s) => s.includes(`-${kind}-`)),
          kind,
        );
      await Promise.all(controllers.map((c) => c.close()));

      sim.kill('SIGINT');
      assert.equal(await exited, 0, output);
      assert.match(output, /stopping: devices go offline/);
      await eventually(() => /"to":"offline"/.test(hub!.output()), 5000, 'devices marked offline');
    } finally {
      sim.kill('SIGKILL');
    }
  });

  it('names the devices of a small fleet, so a user knows which id to give `mqttkit conformance` or `cmd`', async () => {
    hub ??= await startHub();
    const sim = spawn(process.execPath, [BIN, 'simulate', '--devices', '2', '--kinds', 'switch', '--prefix', 'named', '--data-dir', hub.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    sim.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    sim.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => sim.once('exit', resolve));
    try {
      await eventually(() => output.includes('running 2 devices'), 30_000, `the fleet to connect:\n${output}`);
      await eventually(() => output.includes('named-switch-1, named-switch-2'), 5000, `the ids printed:\n${output}`);
      sim.kill('SIGINT');
      assert.equal(await exited, 0, output);
    } finally {
      sim.kill('SIGKILL');
    }
  });
});
