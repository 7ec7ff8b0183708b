/**
 * V8's background threads (JIT compiles, concurrent marking) yield to the event loop.
 *
 * Why: on a small board the scheduler often wakes a V8 worker on the event loop's own core, and the
 * worker, just woken, preempts it: a TurboFan compile of a hot function (1–8 ms) then sits between a
 * HomeKit write and its `/set`. Traced on the 2-vCPU benchmark machine, such preemptions were behind
 * 49 of 61 writes over 2.5 ms (docs/benchmarks.md). At nice 19 a worker no longer preempts the event
 * loop; it runs on an idle core or while the loop sleeps (V8 does on the main thread whatever cannot
 * wait, as it always does when its workers lag).
 *
 * Only V8's threads: libuv's pool (password hashing, file reads, DNS) keeps the loop's priority, so a
 * busy machine does not starve a device's login. Node creates V8's platform threads first (its delayed
 * task scheduler, then `--v8-pool-size` workers), before the inspector's signal thread and libuv's
 * pool, so they are the oldest threads after the main one (test/unit/background-threads.test.ts checks
 * this against the running Node: compile work lands on the threads picked here, hashing does not).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Node's default `--v8-pool-size`. */
const DEFAULT_V8_POOL_SIZE = 4;
export const BACKGROUND_NICE = 19;

export interface ThreadPriorityResult {
  /** The thread ids given BACKGROUND_NICE. */
  lowered: number[];
  /** Why nothing was done (not Linux, no /proc, a refused call), if so. */
  skipped?: string;
}

/** The number of V8 workers this process runs: `--v8-pool-size=N` if given (0 means Node picks), else Node's default. */
export function v8PoolSize(execArgv: readonly string[]): number | undefined {
  let size = DEFAULT_V8_POOL_SIZE;
  for (const [i, arg] of execArgv.entries()) {
    const value = arg.startsWith('--v8-pool-size=') ? arg.slice('--v8-pool-size='.length) : arg === '--v8-pool-size' ? execArgv[i + 1] : undefined;
    if (value === undefined) continue;
    const n = Number(value);
    // 0 lets Node size the pool from the core count: we cannot tell which threads are V8's then.
    size = Number.isInteger(n) && n > 0 ? n : Number.NaN;
  }
  return Number.isNaN(size) ? undefined : size;
}

/** A thread's start time (clock ticks since boot), field 22 of /proc/<pid>/task/<tid>/stat. */
function startedAt(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/** The ids of V8's platform threads in this process (oldest first), or undefined when they cannot be told apart. */
export function v8ThreadIds(): number[] | undefined {
  const pool = v8PoolSize(process.execArgv);
  if (pool === undefined) return undefined;
  const others = readdirSync('/proc/self/task')
    .map(Number)
    .filter((tid) => tid !== process.pid)
    .map((tid) => ({ tid, started: startedAt(tid) }))
    .sort((a, b) => a.started - b.started || a.tid - b.tid);
  // The delayed task scheduler and the workers; fewer threads than that means an unfamiliar Node.
  if (others.length < pool + 1) return undefined;
  return others.slice(0, pool + 1).map((t) => t.tid);
}

/** Gives V8's background threads nice BACKGROUND_NICE. Never throws: a hub that cannot do it runs as before. */
export function yieldBackgroundThreads(): ThreadPriorityResult {
  if (process.platform !== 'linux') return { lowered: [], skipped: `not on Linux (${process.platform})` };
  try {
    const tids = v8ThreadIds();
    if (!tids) return { lowered: [], skipped: 'cannot tell V8 threads apart (--v8-pool-size=0 or an unfamiliar Node)' };
    for (const tid of tids) setPriority(tid, BACKGROUND_NICE);
    return { lowered: tids };
  } catch (error) {
    return { lowered: [], skipped: (error as Error).message };
  }
}
