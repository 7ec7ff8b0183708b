/**
 * Scenario 8 (idle): a hub with connected devices that have nothing to say. The devices publish once,
 * then only keep alive (MQTT keepalive 60 s and the `$keepalive` republish [P-20]: legitimate work);
 * everything else the hub does in that time is a timer that wakes without work. Floor: an aedes
 * broker alone (bench/idle-floor.ts) with the same devices, measured in the same window.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Fleet } from '../../device/simulator/fleet.js';
import { removeDataDir, startHub } from '../../test/helpers/hub-process.js';
import { now, type Row, row, sleep } from '../stats.js';

export interface IdleOptions {
  devices: number;
  /** After the fleet connected: start-up work (bridge publish, first writes, GC) is not idle. */
  settleSeconds: number;
  /** The measured window; 60 s holds one keepalive round of every device. */
  seconds: number;
}

/** A process's CPU time and wake-ups so far, over all its threads. */
interface ProcSample {
  cpuNs: number;
  /** Voluntary context switches of the main thread (the event loop): each is a sleep that something ended. */
  mainWakeups: number;
  /** The same over every thread (libuv pool, V8's GC helpers, workers). */
  allWakeups: number;
}

/**
 * From /proc/<pid>/task/<tid>/schedstat (run time in ns) rather than /proc/<pid>/stat's utime+stime,
 * whose 10 ms ticks are too coarse here: 0.05 % of a core over 60 s is 30 ms, three ticks.
 */
function sampleProcess(pid: number): ProcSample {
  const sample: ProcSample = { cpuNs: 0, mainWakeups: 0, allWakeups: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const schedstat = `/proc/${pid}/task/${tid}/schedstat`;
      if (existsSync(schedstat)) sample.cpuNs += Number(readFileSync(schedstat, 'utf8').split(' ')[0]);
      else {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        sample.cpuNs += (Number(fields[11]) + Number(fields[12])) * 10_000_000;
      }
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const switches = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      sample.allWakeups += switches;
      if (tid === String(pid)) sample.mainWakeups += switches;
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return sample;
}

interface Measured {
  cpuPercent: number;
  mainPerMinute: number;
  allPerMinute: number;
}

function rate(before: ProcSample, after: ProcSample, seconds: number): Measured {
  return {
    cpuPercent: ((after.cpuNs - before.cpuNs) / 1e9 / seconds) * 100,
    mainPerMinute: ((after.mainWakeups - before.mainWakeups) / seconds) * 60,
    allPerMinute: ((after.allWakeups - before.allWakeups) / seconds) * 60,
  };
}

async function startFloor(): Promise<{ child: ChildProcess; url: string }> {
  const script = fileURLToPath(new URL('../idle-floor.js', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`the idle floor broker exited with ${code}`)));
  });
  return { child, url: `mqtt://127.0.0.1:${port}` };
}

function idleFleet(url: string, devices: number, prefix: string, keepalive = 60): Fleet {
  return new Fleet({
    url,
    devices,
    // Devices that stay connected (the sleepy kind leaves and comes back: that is work, not idle).
    kinds: ['temperature', 'humidity', 'switch', 'lightbulb'],
    prefix,
    secret: 'bench',
    // One report at connect, then nothing for far longer than the window: only the keepalive remains.
    interval: 1_000_000,
    jitter: 0,
    sleepSeconds: 60,
    keepalive,
  });
}

/**
 * Connects device i of the floor's fleet right after device i of the hub's: each pair keeps alive in
 * the same rhythm. (The hub registers each new device with a slow hash, so its fleet connects spread
 * out; a floor fleet connected at once would keep alive in one burst, which costs fewer wake-ups.)
 */
async function startPaired(hubFleet: Fleet, floorFleet: Fleet): Promise<{ hubFailed: number; floorFailed: number }> {
  const failed = { hubFailed: 0, floorFailed: 0 };
  let next = 0;
  const worker = async () => {
    while (next < hubFleet.devices.length) {
      const i = next++;
      await hubFleet.devices[i]!.start().catch(() => failed.hubFailed++);
      await floorFleet.devices[i]!.start().catch(() => failed.floorFailed++);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return failed;
}

export async function idle(options: IdleOptions): Promise<Row[]> {
  const hub = await startHub({ args: ['--log-level', 'warn'] });
  // A second hub whose devices do not keep alive at all (MQTT keepalive 0, no `$keepalive`): nothing
  // reaches it, so all it spends is its own timers' (and mDNS's).
  const quiet = await startHub({ args: ['--log-level', 'warn'] });
  const floor = await startFloor();
  const hubFleet = idleFleet(hub.info.mqtt.address, options.devices, 'idle');
  const floorFleet = idleFleet(floor.url, options.devices, 'idle');
  const quietFleet = idleFleet(quiet.info.mqtt.address, options.devices, 'quiet', 0);
  try {
    const { hubFailed, floorFailed } = await startPaired(hubFleet, floorFleet);
    const quietFailed = (await quietFleet.start()).length;
    await sleep(options.settleSeconds * 1000);
    const published = () => hubFleet.devices.reduce((n, d) => n + d.stats.published, 0);
    const messagesBefore = published();
    // All in the same window: whatever else the shared machine does falls on each.
    const pids = [hub.child.pid!, floor.child.pid!, quiet.child.pid!] as const;
    const before = pids.map(sampleProcess);
    const t0 = now();
    await sleep(options.seconds * 1000);
    const elapsed = (now() - t0) / 1000;
    const after = pids.map(sampleProcess);
    const messages = published() - messagesBefore;
    const [h, f, q] = pids.map((_, i) => rate(before[i]!, after[i]!, elapsed)) as [Measured, Measured, Measured];
    const name = `8. idle (${options.devices} connected devices, keepalive 60 s, ${Math.round(elapsed)} s window)`;
    return [
      row(name, 'devices that could not connect (hub, floor, quiet hub)', hubFailed + floorFailed + quietFailed, '', { target: ['0', (v) => v === 0] }),
      row(name, 'device messages in the window (keepalives)', messages, 'msgs'),
      // Devices keeping alive are work: 100 messages a minute wake any broker 100 times, and one wake-up
      // costs this machine about as much as the target allows for a whole minute (the row below). What the
      // target can ask of the hub is its own share above a broker doing the same work, and nothing at all
      // when its devices are silent.
      row(name, 'hub CPU, all threads (floor: aedes alone, same devices)', h.cpuPercent, '% of a core', { floor: f.cpuPercent, digits: 3 }),
      row(name, 'CPU per wake-up of aedes alone (what one keepalive costs this machine)', ((f.cpuPercent / 100) * 60_000) / Math.max(1, f.allPerMinute), 'ms', {
        digits: 3,
      }),
      row(name, "hub CPU above the floor (mqttkit's own share of the keepalive work)", Math.max(0, h.cpuPercent - f.cpuPercent), '% of a core', {
        target: ['<= 0.05 %', (v) => v <= 0.05],
        digits: 3,
      }),
      row(name, 'event-loop wake-ups (main thread voluntary context switches)', h.mainPerMinute, 'per minute', { floor: f.mainPerMinute }),
      row(name, 'wake-ups, all threads', h.allPerMinute, 'per minute', { floor: f.allPerMinute }),
      row(name, `hub CPU with ${options.devices} connected devices that never keep alive (its own timers only)`, q.cpuPercent, '% of a core', {
        target: ['<= 0.05 %', (v) => v <= 0.05],
        digits: 3,
      }),
      row(name, 'event-loop wake-ups with devices that never keep alive', q.mainPerMinute, 'per minute'),
    ];
  } finally {
    await Promise.all([hubFleet.stop(), floorFleet.stop(), quietFleet.stop()]);
    floor.child.kill('SIGTERM');
    await Promise.all([hub.stop('SIGTERM'), quiet.stop('SIGTERM')]);
    removeDataDir(hub.dataDir);
    removeDataDir(quiet.dataDir);
  }
}
