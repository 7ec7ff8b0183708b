/**
 * Scenario 5: a pull transfer of 1 MiB to the device library (CPython) over loopback, beside a raw TCP
 * copy of the same bytes to a Python reader with the same 512-byte chunks (no hashing, no MQTT); where
 * the job's time went (the hub's own share, the device's, the wire's: docs/ota.md [O-26]); and the
 * job's progress as the API's live events show it, once at full speed and once to a device that reads
 * like a board on Wi-Fi (paced, a small TCP window), where the bytes take seconds to move.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubClient } from '../../src/cli/hub-client.js';
import type { Job } from '../../src/store/ota-store.js';
import { type RunningHub, removeDataDir, startHub } from '../../test/helpers/hub-process.js';
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

/** The board the paced device plays: it reads this many KiB a second. */
const PACE_KIB_S = 256;

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
  const rawMs = Number(raw.trim().split(' ')[1]) * 1000;

  const hub = await startHub({ args: ['--log-level', 'warn'] });
  const roots: string[] = [];
  const devices: Array<ReturnType<typeof runDevice>> = [];
  const start = async (id: string, args: string[] = []) => {
    const root = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: id });
    roots.push(root);
    const device = runDevice(python, PROBE, root, args);
    devices.push(device);
    await device.waitFor((e) => e.status === 'broker ok', 15_000, `the device ${id}`);
    return root;
  };
  try {
    const kib = Math.round(options.bytes / 1024);
    const fastRoot = await start('bench-ota');
    const fast = await push(hub, 'bench-ota', file);
    if (!readFileSync(join(fastRoot, 'payload.bin')).equals(payload)) throw new Error('the device holds different bytes');
    const seconds = (fast.job.finishedAt! - fast.job.startedAt!) / 1000;
    const mib = options.bytes / 1048576;
    const name = `5. OTA pull transfer (${kib} KiB, CPython device)`;
    const rows = [
      row(name, 'throughput (trigger to committed)', mib / seconds, 'MiB/s', { floor: mib / (rawMs / 1000) }),
      row(name, 'duration', seconds * 1000, 'ms', { floor: rawMs }),
      ...timingRows(name, fast.job, rawMs),
      ...progressRows(name, fast, options.bytes),
      // The bytes the device holds at once are measured under MicroPython in scenario 7 (device-memory).
    ];

    // The same file to a device that reads like a board: the progress has time to show the bytes moving.
    const pacedRoot = await start('bench-ota-paced', ['--pace', String(PACE_KIB_S)]);
    const paced = await push(hub, 'bench-ota-paced', file);
    if (!readFileSync(join(pacedRoot, 'payload.bin')).equals(payload)) throw new Error('the paced device holds different bytes');
    const pacedName = `5. OTA pull transfer (${kib} KiB to a board on Wi-Fi: the CPython device paced to ${PACE_KIB_S} KiB/s)`;
    rows.push(...timingRows(pacedName, paced.job), ...progressRows(pacedName, paced, options.bytes));
    return rows;
  } finally {
    for (const device of devices) await device.kill();
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
    roots.forEach(removeRoot);
    rmSync(work, { recursive: true, force: true });
  }
}

interface Followed {
  job: Job;
  /** The job's events on the API's live stream (what `mqttkit ota push` and the dashboard show), with when each arrived. */
  events: Array<{ at: number; job: Job }>;
}

/** `mqttkit ota push --no-reboot`, with the job followed on the API's live event stream meanwhile. */
async function push(hub: RunningHub, device: string, file: string): Promise<Followed> {
  const api = HubClient.open(hub.dataDir, hub.child.pid!);
  const events: Followed['events'] = [];
  const followed = api.stream(
    '',
    (event, data) => {
      const job = data as Job;
      if (event !== 'job' || job.device !== device) return false;
      events.push({ at: Date.now(), job });
      return job.state !== 'queued' && job.state !== 'running';
    },
    120_000,
  );
  const result = await cliAsync(['ota', 'push', device, file, '--no-reboot', '--json', '--data-dir', hub.dataDir]);
  if (!(await followed)) throw new Error(`the job's events did not reach its end within 120 s: ${JSON.stringify(events.at(-1))}`);
  const job = JSON.parse(result.stdout) as Job;
  if (job.state !== 'succeeded') throw new Error(`the transfer to ${device} failed: ${result.stdout}${result.stderr}`);
  return { job, events };
}

/** [O-26] Where the job's time went, as the hub measured it: its own share, the device's, the wire's (beside the raw copy). */
function timingRows(name: string, job: Job, rawMs?: number): Row[] {
  const timing = job.progress?.timing;
  if (!timing || timing.firstByteMs === undefined) throw new Error(`job #${job.id} ended without its timing: ${JSON.stringify(job.progress)}`);
  const byWhat = new Map<string, number>();
  for (const span of timing.spans.filter((s) => s.who === 'device')) byWhat.set(span.what, (byWhat.get(span.what) ?? 0) + span.ms);
  return [
    row(name, 'time to first byte (trigger handed to the device until the first byte sent)', timing.firstByteMs, 'ms'),
    row(name, "the hub's own time (reading, hashing, its database, publishing)", timing.hubMs, 'ms'),
    row(name, "the hub's share of the job's time", (100 * timing.hubMs) / timing.totalMs, '%'),
    row(
      name,
      'the bytes on the wire (first byte sent until the device read the last; floor: raw copy)',
      timing.wireMs,
      'ms',
      rawMs === undefined ? {} : { floor: rawMs },
    ),
    row(name, "the device's time (its answers, its request, hashing and staging, its report)", timing.deviceMs, 'ms'),
    ...[...byWhat].map(([what, ms]) => row(name, `  device: ${what}`, ms, 'ms')),
  ];
}

/** The job's progress as the live events showed it: updates while the bytes moved, never back, ending at the size. */
function progressRows(name: string, followed: Followed, size: number): Row[] {
  const withBytes = followed.events.filter((e) => e.job.progress !== null);
  const bytes = withBytes.map((e) => e.job.progress!.bytes);
  const moving = withBytes.filter((e) => e.job.progress!.bytes > 0 && e.job.progress!.bytes < size);
  const first = withBytes.find((e) => e.job.progress!.bytes > 0);
  const last = followed.job.progress?.bytes;
  const seen = [...moving, ...withBytes.filter((e) => e.job.progress!.bytes === size).slice(0, 1)].map((e) => e.at);
  const gaps = seen.slice(1).map((at, i) => at - seen[i]!);
  return [
    row(name, 'progress updates seen while the bytes moved (job events with 0 < bytes < size)', moving.length, 'events'),
    ...(first ? [row(name, 'time to the first bytes in the progress (from the job start)', first.at - followed.job.startedAt!, 'ms')] : []),
    ...(gaps.length > 0 ? [row(name, 'longest wait between progress updates during the transfer', Math.max(...gaps), 'ms')] : []),
    row(name, 'progress never went back (1 = yes)', bytes.every((b, i) => i === 0 || b >= bytes[i - 1]!) ? 1 : 0, '', {
      target: ['1', (v) => v === 1],
    }),
    row(name, 'bytes in the progress at the end = file size (1 = yes)', last === size ? 1 : 0, '', { target: ['1', (v) => v === 1] }),
  ];
}
