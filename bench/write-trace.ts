/**
 * `node dist/bench/write-trace.js [writes]`: who held the CPU while HomeKit writes were slow. Runs a hub
 * and 1,000 writes (HAP write -> `/set`, 5 ms apart, as scenario 2) and, per slow write, counts how long
 * the hub's event loop was runnable but not running, and which thread ran instead: one of the hub's
 * other threads (V8's workers), the benchmark process, or anything else. It reads the kernel's scheduler
 * events from tracefs, so it needs root (or a writable /sys/kernel/tracing); without, it prints the
 * latencies and each thread's run-queue wait from /proc only. How docs/benchmarks.md's "What it was:
 * V8's own threads" was found; compare `MQTTKIT_YIELD_BACKGROUND=off` with the default.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { removeDataDir, startHub } from '../test/helpers/hub-process.js';
import { connectDevice } from '../test/helpers/mqtt-device.js';
import { Controller, findId } from './homekit-probe.js';
import { now, sleep, summarize } from './stats.js';

const TRACING = '/sys/kernel/tracing/';
const SLOW_MS = 2.5;
const EVENTS = ['sched_switch', 'sched_wakeup'];

interface Sample {
  /** CLOCK_MONOTONIC at the write, ms (the clock tracefs uses with trace_clock=mono). */
  at: number;
  ms: number;
}

/** The tracefs settings this tool changes, as they were: put back when it ends, whatever happens. */
const SETTINGS = ['trace_clock', 'buffer_size_kb', 'tracing_on', ...EVENTS.map((e) => `events/sched/${e}/enable`)];

function readSettings(): Map<string, string> | undefined {
  try {
    const saved = new Map(SETTINGS.map((name) => [name, readFileSync(`${TRACING}${name}`, 'utf8').trim()] as const));
    // trace_clock lists every clock with the current one in brackets.
    saved.set('trace_clock', /\[(\w+)\]/.exec(saved.get('trace_clock') ?? '')?.[1] ?? 'local');
    accessSync(`${TRACING}trace_clock`, constants.W_OK);
    return saved;
  } catch {
    return undefined;
  }
}

function startTracing(): void {
  writeFileSync(`${TRACING}trace_clock`, 'mono');
  writeFileSync(`${TRACING}buffer_size_kb`, '65536');
  for (const e of EVENTS) writeFileSync(`${TRACING}events/sched/${e}/enable`, '1');
  writeFileSync(`${TRACING}trace`, '');
  writeFileSync(`${TRACING}tracing_on`, '1');
}

function restore(saved: Map<string, string>): void {
  writeFileSync(`${TRACING}tracing_on`, '0');
  for (const [name, value] of saved) writeFileSync(`${TRACING}${name}`, value);
}

/** Run-queue wait and involuntary switches of each thread of a process (/proc/<pid>/task/<tid>/schedstat, status). */
function waits(pid: number): Map<number, { waitMs: number; involuntary: number }> {
  const out = new Map<number, { waitMs: number; involuntary: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const wait = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
    const involuntary = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
    out.set(Number(tid), { waitMs: wait, involuntary });
  }
  return out;
}

interface Switch {
  at: number;
  prev: number;
  runnable: boolean;
  next: number;
}

function switches(): Switch[] {
  const out: Switch[] = [];
  for (const line of readFileSync(`${TRACING}trace`, 'utf8').split('\n')) {
    const m = /\s([\d.]+): sched_switch: .*prev_pid=(\d+) .*prev_state=(\S+) .*next_pid=(\d+)/.exec(line);
    if (m) out.push({ at: Number(m[1]) * 1000, prev: Number(m[2]), runnable: m[3]!.startsWith('R'), next: Number(m[4]) });
  }
  return out;
}

async function main(): Promise<void> {
  const writes = Number(process.argv[2] ?? 1000);
  const saved = readSettings();
  const traced = saved !== undefined;
  const hub = await startHub({ args: ['--log-level', 'warn'] });
  const hubPid = hub.child.pid!;
  try {
    const device = await connectDevice(hub.info.mqtt.address, 'trace-dev');
    await device.publishAsync('HomeKit/trace-dev/Switch/On', '0', { qos: 1 });
    const controller = await Controller.pair(hub.info.bridges[0]!.port!);
    let db = await controller.client.getAccessories();
    for (let tries = 0; tries < 50 && db.accessories.length < 2; tries++) {
      await sleep(100);
      db = await controller.client.getAccessories();
    }
    const on = findId(db, 'Switch', 'On', 'trace-dev');
    let arrived: ((at: number) => void) | undefined;
    await device.subscribeAsync('HomeKit/trace-dev/+/+/set', { qos: 1 });
    device.on('message', (topic, payload) => {
      if (!topic.endsWith('/set')) return;
      arrived?.(now());
      device.publish(topic.slice(0, -4), payload, { qos: 0 });
    });
    await sleep(500);
    const before = waits(hubPid);
    const samples: Sample[] = [];
    let events: Switch[] = [];
    try {
      if (traced) startTracing();
      for (let i = 0; i < writes; i++) {
        const set = new Promise<number>((resolve, reject) => {
          arrived = resolve;
          setTimeout(() => reject(new Error(`write ${i}: no /set within 5 s`)), 5000).unref();
        });
        const at = Number(process.hrtime.bigint()) / 1e6;
        const t0 = now();
        await controller.client.setCharacteristics({ [on]: i % 2 === 0 });
        samples.push({ at, ms: (await set) - t0 });
        await sleep(5);
      }
      if (traced) {
        writeFileSync(`${TRACING}tracing_on`, '0');
        events = switches();
      }
    } finally {
      if (saved) restore(saved);
    }
    const after = waits(hubPid);
    await controller.close();
    device.end(true);

    const s = summarize(samples.map((x) => x.ms));
    console.log(
      `${writes} writes: p50 ${s.p50.toFixed(2)} p99 ${s.p99.toFixed(2)} max ${s.max.toFixed(2)} ms; over ${SLOW_MS} ms: ${samples.filter((x) => x.ms > SLOW_MS).length}`,
    );
    for (const [tid, a] of after) {
      const b = before.get(tid);
      if (!b) continue;
      const wait = a.waitMs - b.waitMs;
      if (wait > 1)
        console.log(
          `  hub thread ${tid}${tid === hubPid ? ' (event loop)' : ''}: waited ${wait.toFixed(1)} ms runnable, ${a.involuntary - b.involuntary} involuntary switches`,
        );
    }
    if (!traced) {
      console.log(`  (no scheduler events: ${existsSync(TRACING) ? `${TRACING} is not writable, run as root` : 'no tracefs'})`);
      return;
    }
    const hubThreads = new Set(readdirSync(`/proc/${hubPid}/task`).map(Number));
    const lost = { hubThreads: 0, benchmark: 0, other: 0 };
    let preempted = 0;
    for (const sample of samples) {
      if (sample.ms <= SLOW_MS) continue;
      let since: Switch | undefined;
      let byWorker = 0;
      for (const e of events) {
        if (e.at < sample.at || e.at > sample.at + sample.ms) continue;
        if (e.prev === hubPid && e.runnable) since = e;
        else if (e.next === hubPid && since) {
          const ms = e.at - since.at;
          const who = hubThreads.has(since.next) ? 'hubThreads' : since.next === process.pid ? 'benchmark' : 'other';
          lost[who] += ms;
          if (who === 'hubThreads') byWorker += ms;
          since = undefined;
        }
      }
      if (byWorker > 0.3) preempted++;
    }
    console.log(
      `  slow writes in which one of the hub's own threads held the event loop's core > 0.3 ms: ${preempted}; ms the loop waited, by who ran: hub threads ${lost.hubThreads.toFixed(1)}, benchmark ${lost.benchmark.toFixed(1)}, others ${lost.other.toFixed(1)}`,
    );
  } finally {
    await hub.stop('SIGTERM');
    removeDataDir(hub.dataDir);
  }
}

await main();
