/**
 * Scenario 5: a pull transfer of 1 MiB to the device library (CPython) over loopback, beside a raw TCP
 * copy of the same bytes to a Python reader with the same 512-byte chunks (no hashing, no MQTT).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeDataDir, startHub } from '../../test/helpers/hub-process.js';
import { cliAsync } from '../../test/helpers/mqtt-device.js';
import { deviceRoot, PROBE, removeRoot, runDevice } from '../../test/helpers/python-device.js';
import { type Row, row } from '../stats.js';

const RAW_READER = `
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
t0 = time.perf_counter(); n = 0
with open(sys.argv[2], 'wb') as f:
    while True:
        chunk = s.recv(512)
        if not chunk: break
        f.write(chunk); n += len(chunk)
print(n, time.perf_counter() - t0)
`;

export async function ota(options: { bytes: number }): Promise<Row[]> {
  const python = execFileSync('which', ['python3'], { encoding: 'utf8' }).trim();
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-bench-ota-'));
  const payload = randomBytes(options.bytes);
  const file = join(work, 'payload.bin');
  writeFileSync(file, payload);

  // Floor: the same bytes over a raw TCP connection into a Python reader.
  const server = createServer((socket) => socket.end(payload));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const raw = await new Promise<string>((resolve) => {
    const child = spawn(python, ['-c', RAW_READER, String((server.address() as { port: number }).port), join(work, 'raw.bin')]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => resolve(out));
  });
  server.close();
  const rawSeconds = Number(raw.trim().split(' ')[1]);

  const hub = await startHub({ args: ['--log-level', 'warn'] });
  const root = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: 'bench-ota' });
  const device = runDevice(python, PROBE, root);
  try {
    await device.waitFor((e) => e.status === 'broker ok', 15_000, 'the device');
    const result = await cliAsync(['ota', 'push', 'bench-ota', file, '--no-reboot', '--json', '--data-dir', hub.dataDir]);
    const job = JSON.parse(result.stdout) as { state: string; startedAt: number; finishedAt: number };
    if (job.state !== 'succeeded') throw new Error(`the transfer failed: ${result.stdout}`);
    if (!readFileSync(join(root, 'payload.bin')).equals(payload)) throw new Error('the device holds different bytes');
    const seconds = (job.finishedAt - job.startedAt) / 1000;
    const mib = options.bytes / 1048576;
    const name = `5. OTA pull transfer (${Math.round(options.bytes / 1024)} KiB, CPython device)`;
    return [
      row(name, 'throughput (trigger to committed)', mib / seconds, 'MiB/s', { floor: mib / rawSeconds }),
      row(name, 'duration', seconds * 1000, 'ms', { floor: rawSeconds * 1000 }),
      // The bytes the device holds at once are measured under MicroPython in scenario 7 (device-memory).
    ];
  } finally {
    await device.kill();
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
    removeRoot(root);
    rmSync(work, { recursive: true, force: true });
  }
}
