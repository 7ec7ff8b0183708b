/**
 * V8's background threads (JIT compiles, GC helpers) run as SCHED_BATCH at nice +5, so they do not preempt
 * the event loop, nor hold a core long against whatever it wakes.
 *
 * Why: on a small board the scheduler often wakes a V8 worker on the event loop's own core, and the
 * worker, just woken, preempts it: a TurboFan compile of a hot function (1–8 ms) then sits between a
 * HomeKit write and its `/set`. Traced on the 2-vCPU benchmark machine, such preemptions were behind
 * 49 of 61 writes over 2.5 ms (docs/benchmarks.md, "What it was: V8's own threads"). Linux's SCHED_BATCH
 * takes away a thread's right to preempt on wake-up (there is no system call for it in Node, so
 * util-linux's `chrt` sets it); nice +5 lets a process the loop wakes (a local broker, a controller)
 * take the core from a compiling worker. Not nice 19: it starves the GC helpers on a busy machine, and a
 * scavenge waits for its helpers (measured with two busy loops beside the hub: pauses up to 330 ms,
 * against 8–18 ms untouched and 4–8 ms like this).
 *
 * Only V8's threads: libuv's pool (file reads, DNS, zlib) and worker threads such as the password
 * hasher keep the event loop's policy. Node 20 starts, before any JavaScript runs, its delayed-task
 * scheduler and `--v8-pool-size` workers, then the inspector's signal thread, then (for an ES module
 * entry) libuv's pool: so V8's are the oldest threads after the main one. Anything else (another
 * thread count, a tracing or inspector flag, a thread named for libuv, a wrapped pid counter) and
 * nothing is changed: this is a tuning, never a guess. test/unit/background-threads.test.ts checks it
 * against the running Node by the work each thread does.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Node's default `--v8-pool-size`; libuv's default pool size. */
const DEFAULT_V8_POOL_SIZE = 4;
const DEFAULT_UV_POOL_SIZE = 4;
/** Linux's policy number for SCHED_BATCH (field 41 of /proc/<pid>/task/<tid>/stat). */
export const SCHED_BATCH = 3;
/** How much nicer than the event loop V8's threads become. */
export const NICE_STEP = 5;

export interface BackgroundThreadsResult {
  /** Threads now SCHED_BATCH (NICE_STEP nicer than the event loop unless `failed` says otherwise). */
  batched: number[];
  /** Threads that could not be changed, and why. */
  failed: Array<{ tid: number; reason: string }>;
  /** Why nothing was tried, if so. */
  skipped?: string;
}

/**
 * The number of V8 workers: `--v8-pool-size` from NODE_OPTIONS, then the command line (the later one wins,
 * as in Node; `_` and `-` alike). undefined when Node sizes the pool itself (0) or the value is not a number.
 */
export function v8PoolSize(execArgv: readonly string[], nodeOptions = ''): number | undefined {
  let size = DEFAULT_V8_POOL_SIZE;
  const args = [...nodeOptions.split(/\s+/).filter(Boolean), ...execArgv];
  for (const [i, arg] of args.entries()) {
    const flag = arg.replace(/_/g, '-');
    const value = flag.startsWith('--v8-pool-size=') ? flag.slice('--v8-pool-size='.length) : flag === '--v8-pool-size' ? args[i + 1] : undefined;
    if (value === undefined) continue;
    const n = Number(value);
    size = Number.isInteger(n) && n > 0 ? n : Number.NaN;
  }
  return Number.isNaN(size) ? undefined : size;
}

interface ThreadStat {
  tid: number;
  comm: string;
  /** Start time, clock ticks since boot (field 22). */
  started: number;
  /** Scheduling policy (field 41). */
  policy: number;
  /** Nice value (field 19). */
  nice: number;
}

export function threadStat(tid: number, pid: number | 'self' = 'self'): ThreadStat {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return { tid, comm: stat.slice(stat.indexOf('(') + 1, close), started: Number(fields[19]), policy: Number(fields[38]), nice: Number(fields[16]) };
}

/** V8's platform threads in this process (oldest first), or why they cannot be told apart. */
export function v8Threads(env: NodeJS.ProcessEnv = process.env): { tids: number[] } | { skipped: string } {
  if (readlinkSync('/proc/self') !== String(process.pid)) return { skipped: "/proc is another pid namespace's" };
  const pool = v8PoolSize(process.execArgv, env.NODE_OPTIONS);
  if (pool === undefined) return { skipped: '--v8-pool-size=0 lets Node size the pool: its threads cannot be counted' };
  const others = readdirSync('/proc/self/task')
    .map(Number)
    .filter((tid) => tid !== process.pid)
    .map((tid) => threadStat(tid))
    .sort((a, b) => a.started - b.started || a.tid - b.tid);
  // The pid counter wrapped since this process started: creation order cannot be read from the ids.
  if (others.some((t) => t.tid < process.pid)) return { skipped: 'thread ids wrapped around since start' };
  const uvPool = Math.min(1024, Math.max(1, Number(env.UV_THREADPOOL_SIZE) || DEFAULT_UV_POOL_SIZE));
  const known = pool + 2; // the delayed-task scheduler, the workers, the inspector's signal thread
  if (others.length !== known && others.length !== known + uvPool) {
    return {
      skipped: `${others.length + 1} threads where Node 20 starts ${known + 1} or ${known + uvPool + 1} (a tracing or inspector flag, or another Node)`,
    };
  }
  const picked = others.slice(0, pool + 1);
  if (picked.some((t) => t.comm.startsWith('libuv'))) return { skipped: "a thread named for libuv's pool is among the oldest" };
  return { tids: picked.map((t) => t.tid) };
}

/** Where util-linux installs chrt: by absolute path, so a service never runs whatever `chrt` its PATH finds. */
const CHRT = ['/usr/bin/chrt', '/bin/chrt'];
const SCHED_OTHER = 0;

export type BackgroundThreads = { tids: number[]; nice: number } | { skipped: string };

/**
 * V8's threads, read now: call it before anything starts a thread of its own (a terminal's pretty logger
 * runs in a worker thread), then hand the answer to yieldBackgroundThreads. Never throws.
 */
export function findBackgroundThreads(env: NodeJS.ProcessEnv = process.env): BackgroundThreads {
  if (process.platform !== 'linux') return { skipped: `not on Linux (${process.platform})` };
  try {
    const main = threadStat(process.pid);
    // A real-time or idle event loop was set up that way on purpose: V8's threads follow it, untouched.
    if (main.policy !== SCHED_OTHER && main.policy !== SCHED_BATCH) return { skipped: `the event loop runs with scheduling policy ${main.policy}` };
    const found = v8Threads(env);
    return 'skipped' in found ? found : { tids: found.tids, nice: Math.min(19, main.nice + NICE_STEP) };
  } catch (error) {
    return { skipped: `cannot read /proc/self/task: ${(error as Error).message}` };
  }
}

/** Makes V8's background threads SCHED_BATCH, NICE_STEP nicer than the loop. Never throws: a hub that cannot do it runs as before. */
export async function yieldBackgroundThreads(
  found: BackgroundThreads = findBackgroundThreads(),
  options: { chrt?: string; timeoutMs?: number } = {},
): Promise<BackgroundThreadsResult> {
  if ('skipped' in found) return { batched: [], failed: [], skipped: found.skipped };
  const chrt = [options.chrt ?? CHRT].flat().find((path) => existsSync(path));
  if (!chrt) return { batched: [], failed: [], skipped: 'chrt (util-linux) is not installed' };
  const timeoutMs = options.timeoutMs ?? 5000;
  const result: BackgroundThreadsResult = { batched: [], failed: [] };
  for (const [i, tid] of found.tids.entries()) {
    try {
      await run(chrt, ['-b', '-p', '0', String(tid)], { timeout: timeoutMs, env: { LC_ALL: 'C', PATH: '/usr/bin:/bin' } });
      if (threadStat(tid).policy !== SCHED_BATCH) throw new Error('chrt returned, the policy did not change');
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: string; killed?: boolean };
      if (e.killed) {
        // A chrt that hangs once would hang for each: give up on the rest.
        for (const left of found.tids.slice(i)) result.failed.push({ tid: left, reason: `chrt did not finish within ${timeoutMs} ms` });
        return result;
      }
      result.failed.push({ tid, reason: e.stderr?.trim() || e.message.split('\n')[0] || String(error) });
      continue;
    }
    try {
      setPriority(tid, found.nice);
    } catch (error) {
      result.failed.push({ tid, reason: `SCHED_BATCH, but its nice value stays: ${(error as Error).message}` });
    }
    result.batched.push(tid);
  }
  return result;
}
