/**
 * The hub makes V8's background threads SCHED_BATCH, and only them (src/hub/background-threads.ts), which
 * rests on how Node starts its threads. Checked against the running Node by the work each thread does:
 * JIT compiles must land on the changed threads, libuv's pool work (here: async scrypt) on the others.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { NICE_STEP, SCHED_BATCH, threadStat, v8PoolSize } from '../../src/hub/background-threads.js';
import { eventually, launcherSettings, removeDataDir, startHub } from '../helpers/hub-process.js';
import { requireTool } from '../helpers/system-tools.js';

interface Probe {
  batched: number[];
  failed: Array<{ tid: number; reason: string }>;
  skipped?: string;
  main: number;
  /** Each thread's scheduling policy and nice value after the call, and the main thread's before it. */
  policy: Record<string, number>;
  nice: Record<string, number>;
  mainPolicyBefore: number;
  mainNiceBefore: number;
  /** CPU ticks each thread spent in the phase. */
  compile: Record<string, number>;
  hashing: Record<string, number>;
}

// Runs as an ES module, as the hub does: by then libuv's pool has started (the loader read the file).
const probeSource = (moduleUrl: string) => `
import { readdirSync, readFileSync } from 'node:fs';
import { scrypt } from 'node:crypto';
const { yieldBackgroundThreads, threadStat } = await import(${JSON.stringify(moduleUrl)});
const { policy: mainPolicyBefore, nice: mainNiceBefore } = threadStat(process.pid);
const result = await yieldBackgroundThreads();
const ticks = () => Object.fromEntries(readdirSync('/proc/self/task').map((tid) => {
  const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [tid, Number(f[11]) + Number(f[12])];
}));
const delta = (a, b) => Object.fromEntries(Object.keys(b).map((t) => [t, b[t] - (a[t] ?? 0)]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let compile = {};
let hashing = {};
if (!process.env.PROBE_LIGHT) {
  // Phase 1: many distinct hot functions, so TurboFan compiles them on V8's workers.
  let t0 = ticks();
  let sink = 0;
  for (let round = 0; round < 6; round++) {
    for (let k = 0; k < 150; k++) {
      const f = new Function('a', 'b', 'let s = ' + (round * 1000 + k) + '; for (let i = 0; i < a.length; i++) { s = (s * 31 + a[i] * b + ' + k + ') | 0; if (s & ' + (k + 1) + ') s ^= i; } return s;');
      const a = Array.from({ length: 64 }, (_, i) => i);
      for (let i = 0; i < 3000; i++) sink ^= f(a, i);
    }
    await sleep(50); // the main thread idle now and then, as a hub's is, so compiled code gets installed
  }
  await sleep(300);
  compile = delta(t0, ticks());
  // Phase 2: async scrypt, which runs on libuv's pool.
  t0 = ticks();
  await Promise.all(Array.from({ length: 6 }, (_, i) => new Promise((resolve, reject) =>
    scrypt('password' + i, 'salt-salt-salt', 64, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (e) => (e ? reject(e) : resolve())))));
  hashing = delta(t0, ticks());
  if (sink === 0.5) console.error('never');
}
const policy = Object.fromEntries(readdirSync('/proc/self/task').map((tid) => [tid, threadStat(Number(tid)).policy]));
const nice = Object.fromEntries(readdirSync('/proc/self/task').map((tid) => [tid, threadStat(Number(tid)).nice]));
console.log(JSON.stringify({ ...result, main: process.pid, mainPolicyBefore, mainNiceBefore, policy, nice, compile, hashing }));
`;

function runProbe(flags: string[] = [], env: Record<string, string> = {}): Probe {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-threads-'));
  try {
    const script = join(dir, 'probe.mjs');
    const moduleUrl = pathToFileURL(new URL('../../src/hub/background-threads.js', import.meta.url).pathname).href;
    writeFileSync(script, probeSource(moduleUrl));
    const out = execFileSync(process.execPath, [...launcherSettings().flags, ...flags, script], {
      encoding: 'utf8',
      cwd: dir, // --trace-event-categories writes its log here
      timeout: 120_000,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    });
    return JSON.parse(out) as Probe;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Ticks of the phase spent on the changed threads and on the other background threads (the main thread left out). */
function split(probe: Probe, phase: Record<string, number>): { batched: number; others: number } {
  let batched = 0;
  let others = 0;
  for (const [tid, t] of Object.entries(phase)) {
    if (Number(tid) === probe.main) continue;
    if (probe.batched.includes(Number(tid))) batched += t;
    else others += t;
  }
  return { batched, others };
}

function assertOnlyV8Batched(probe: Probe, workers: number): void {
  const detail = JSON.stringify(probe);
  assert.equal(probe.skipped, undefined, detail);
  assert.deepEqual(probe.failed, [], detail);
  assert.equal(probe.batched.length, workers + 1, `the delayed-task scheduler and ${workers} workers: ${detail}`);
  for (const [tid, policy] of Object.entries(probe.policy)) {
    if (probe.batched.includes(Number(tid))) {
      assert.equal(policy, SCHED_BATCH, `thread ${tid}: ${detail}`);
      assert.equal(probe.nice[tid], Math.min(19, probe.mainNiceBefore + NICE_STEP), `thread ${tid}: ${detail}`);
    } else {
      assert.equal(policy, probe.mainPolicyBefore, `thread ${tid} keeps the event loop's policy: ${detail}`);
      assert.equal(probe.nice[tid], probe.mainNiceBefore, `thread ${tid} keeps the event loop's nice value: ${detail}`);
    }
  }
}

const chrt = (t: TestContext) => requireTool(t, 'chrt', ['chrt'], 'apt-get install util-linux');

describe('background threads', { skip: process.platform !== 'linux' && 'thread policies are read from /proc (Linux)' }, () => {
  it("makes V8's threads SCHED_BATCH: JIT compiles run on them, libuv's pool keeps the event loop's policy", (t) => {
    if (!chrt(t)) return;
    const probe = runProbe();
    assertOnlyV8Batched(probe, 4);
    const compile = split(probe, probe.compile);
    const hashing = split(probe, probe.hashing);
    const detail = JSON.stringify({ batched: probe.batched, compile: probe.compile, hashing: probe.hashing });
    assert.ok(
      compile.batched >= 3 && compile.batched > 4 * compile.others,
      `compile ticks on V8's threads ${compile.batched}, elsewhere ${compile.others}: ${detail}`,
    );
    assert.ok(
      hashing.others >= 10 && hashing.others > 4 * hashing.batched,
      `libuv pool ticks ${hashing.others}, on V8's threads ${hashing.batched}: ${detail}`,
    );
  });

  it('follows --v8-pool-size from the command line or NODE_OPTIONS, in either spelling', (t) => {
    if (!chrt(t)) return;
    const two = runProbe(['--v8-pool-size=2']);
    assertOnlyV8Batched(two, 2);
    const compile = split(two, two.compile);
    assert.ok(compile.batched > 4 * compile.others, JSON.stringify(two));
    assertOnlyV8Batched(runProbe([], { NODE_OPTIONS: '--v8-pool-size=2', PROBE_LIGHT: '1' }), 2);
    assertOnlyV8Batched(runProbe(['--v8_pool_size=3'], { PROBE_LIGHT: '1' }), 3);
  });

  it('changes nothing when the threads cannot be told apart: Node sizing the pool, a tracing agent, no chrt', () => {
    for (const [flags, env, reason] of [
      [['--v8-pool-size=0'], {}, /--v8-pool-size=0 lets Node size the pool/],
      [[], { NODE_OPTIONS: '--v8-pool-size=0' }, /--v8-pool-size=0 lets Node size the pool/],
      [['--trace-event-categories', 'v8'], {}, /threads where Node 20 starts/],
      [[], { PATH: '/nonexistent' }, /chrt \(util-linux\) is not installed/],
    ] as const) {
      const probe = runProbe([...flags], { ...env, PROBE_LIGHT: '1' });
      assert.match(probe.skipped ?? '', reason, JSON.stringify(probe));
      assert.deepEqual(probe.batched, []);
      assert.ok(
        Object.values(probe.policy).every((p) => p === probe.mainPolicyBefore),
        JSON.stringify(probe),
      );
      assert.ok(
        Object.values(probe.nice).every((n) => n === probe.mainNiceBefore),
        JSON.stringify(probe),
      );
    }
  });

  it('the hub does it at start, and --no-yield-background leaves every thread alone', async (t) => {
    if (!chrt(t)) return;
    const policies = (pid: number) => readdirSync(`/proc/${pid}/task`).map((tid) => ({ tid: Number(tid), policy: threadStat(Number(tid), pid).policy }));
    const hub = await startHub();
    try {
      const pid = hub.child.pid!;
      await eventually(() => policies(pid).filter((t) => t.policy === SCHED_BATCH).length === 5, 10_000, "five of the hub's threads SCHED_BATCH");
      const threads = policies(pid);
      assert.notEqual(threads.find((t) => t.tid === pid)?.policy, SCHED_BATCH, 'the event loop keeps its policy');
      const mainNice = threadStat(pid, pid).nice;
      for (const t of threads)
        assert.equal(threadStat(t.tid, pid).nice, t.policy === SCHED_BATCH ? Math.min(19, mainNice + NICE_STEP) : mainNice, `thread ${t.tid}`);
      // The password hasher and libuv's pool start with the hub, after the call: at the loop's policy.
      assert.ok(threads.length > 6, `${threads.length} threads`);
    } finally {
      await hub.stop();
      removeDataDir(hub.dataDir);
    }
    const off = await startHub({ args: ['--no-yield-background'] });
    try {
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(
        policies(off.child.pid!).filter((t) => t.policy === SCHED_BATCH),
        [],
      );
    } finally {
      await off.stop();
      removeDataDir(off.dataDir);
    }
  });
});

describe('--v8-pool-size as Node reads it', () => {
  it('takes NODE_OPTIONS first, the command line last, either spelling; 0 or junk means it cannot be known', () => {
    assert.equal(v8PoolSize([]), 4);
    assert.equal(v8PoolSize(['--v8-pool-size=2']), 2);
    assert.equal(v8PoolSize(['--v8-pool-size', '3']), 3);
    assert.equal(v8PoolSize(['--v8_pool_size=5']), 5);
    assert.equal(v8PoolSize([], '--max-old-space-size=100 --v8-pool-size=2'), 2);
    assert.equal(v8PoolSize(['--v8-pool-size=6'], '--v8-pool-size=2'), 6);
    assert.equal(v8PoolSize(['--v8-pool-size=0']), undefined);
    assert.equal(v8PoolSize([], '--v8-pool-size=0'), undefined);
    assert.equal(v8PoolSize(['--v8-pool-size=x']), undefined);
  });
});
