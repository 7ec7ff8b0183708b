/** `mqttkit start` as a person meets it: messages, the banner, signals, and what it leaves on disk. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';

const dirs: string[] = [];
function dataDir(): string {
  const dir = tempDataDir();
  dirs.push(dir);
  return dir;
}
after(() => dirs.forEach(removeDataDir));

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
}

describe('mqttkit start', { timeout: 120_000 }, () => {
  it('refuses a bad option value with exit code 2, naming the option and what is allowed', () => {
    const result = run(['start', '--data-dir', dataDir(), '--mqtt-port', 'abc']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--mqtt-port: 'abc' is not valid; expected a port number 0-65535/);
  });

  it('documents every option with its environment variable', () => {
    const result = run(['start', '--help']);
    assert.equal(result.status, 0);
    for (const text of ['--data-dir', '--mqtt-url', '--hap-port', '--pincode', 'MQTTKIT_MQTT_PORT', 'Examples:']) assert.ok(result.stdout.includes(text), text);
  });

  it('prints the setup code, a QR code and the MQTT address; keeps a generated code; stops on SIGINT', async () => {
    const dir = dataDir();
    const first = await startHub({ dataDir: dir, pincode: null });
    const code = /HomeKit setup code: (\d{3}-\d{2}-\d{3})/.exec(first.output())?.[1];
    assert.ok(code, first.output());
    await first.printed(/Scan with the Home app/);
    assert.ok(first.output().includes('▄'), 'a QR code drawn in the terminal');
    assert.ok(first.output().includes(`Devices connect to MQTT at ${first.info.mqtt.address}`));
    assert.equal(await first.stop('SIGINT'), 0);
    assert.ok(!readdirSync(dir).includes('hub.json'), 'the runtime file is removed on stop');

    const second = await startHub({ dataDir: dir, pincode: null });
    assert.ok(second.output().includes(`HomeKit setup code: ${code}`), 'the same code after a restart');
    await second.stop();
  });

  it('creates its keys and state owner-only', async () => {
    const dir = dataDir();
    const hub = await startHub({ dataDir: dir });
    const files = [join(dir, 'mqttkit.db'), ...readdirSync(join(dir, 'homekit')).map((f) => join(dir, 'homekit', f))];
    assert.ok(
      files.some((f) => f.includes('AccessoryInfo')),
      'HomeKit keys were written',
    );
    for (const file of files) assert.equal(statSync(file).mode & 0o077, 0, `${file} is owner-only`);
    assert.equal(statSync(dir).mode & 0o077, 0);
    await hub.stop();
  });

  it('refuses a second hub on the same data dir, and a busy MQTT port, with a clear message', async () => {
    const dir = dataDir();
    const hub = await startHub({ dataDir: dir });
    const second = await startHub({ dataDir: dir }).then(
      () => 'started',
      (error: Error) => error.message,
    );
    assert.match(second, /a hub is already running on .* \(pid \d+\): stop it first or use another --data-dir/);

    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const port = (busy.address() as { port: number }).port;
    const refused = await startHub({ dataDir: dataDir(), args: ['--mqtt-port', String(port)] }).then(
      () => 'started',
      (error: Error) => error.message,
    );
    assert.match(refused, new RegExp(`MQTT port ${port} on 127\\.0\\.0\\.1 is in use`));
    busy.close();
    await hub.stop();
  });
});
