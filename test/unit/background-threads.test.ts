/**
 * The hub makes V8's background threads SCHED_BATCH, and only them (src/hub/background-threads.ts), which
 * rests on how Node starts its threads. Checked against the running Node by the work each thread does:
 * JIT compiles must land on the changed threads, libuv's pool work (here: async scrypt) on the others.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { NICE_STEP, SCHED_BATCH, threadStat, v8PoolSize } from '../../src/hub/background-threads.js';
import { readRuntime } from '../../src/store/runtime-file.js';
import { BIN, eventually, launcherSettings, PINCODE, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
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
import { Worker } from 'node:worker_threads';
const { findBackgroundThreads, yieldBackgroundThreads, threadStat } = await import(${JSON.stringify(moduleUrl)});
const { policy: mainPolicyBefore, nice: mainNiceBefore } = threadStat(process.pid);
const found = findBackgroundThreads();
// A thread started between the two calls, as a terminal's pretty logger starts one in the hub.
const worker = process.env.PROBE_WORKER ? new Worker('setInterval(() => {}, 1000)', { eval: true }) : undefined;
if (worker) await new Promise((resolve) => worker.once('online', resolve));
const result = await yieldBackgroundThreads(found, { chrt: process.env.PROBE_CHRT, timeoutMs: Number(process.env.PROBE_TIMEOUT) || undefined });
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
await worker?.terminate();
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

  it('reads the threads before anything else starts one: a worker started in between is left alone', (t) => {
    if (!chrt(t)) return;
    const probe = runProbe([], { PROBE_WORKER: '1', PROBE_LIGHT: '1' });
    assertOnlyV8Batched(probe, 4);
    assert.equal(Object.keys(probe.policy).length, 12, 'the main thread, 10 of Node and the worker');
  });

  it('says why for each thread when chrt fails, and gives up on the rest when it hangs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqttkit-chrt-'));
    try {
      const refusing = join(dir, 'chrt-refusing');
      writeFileSync(refusing, `#!/bin/sh\necho "chrt: failed to set pid $4's policy: Operation not permitted" >&2\nexit 1\n`, { mode: 0o755 });
      const hanging = join(dir, 'chrt-hanging');
      writeFileSync(hanging, '#!/bin/sh\nexec sleep 10\n', { mode: 0o755 });
      const refused = runProbe([], { PROBE_CHRT: refusing, PROBE_LIGHT: '1' });
      assert.equal(refused.failed.length, 5, JSON.stringify(refused));
      for (const f of refused.failed) assert.equal(f.reason, `chrt: failed to set pid ${f.tid}'s policy: Operation not permitted`);
      const hung = runProbe([], { PROBE_CHRT: hanging, PROBE_TIMEOUT: '300', PROBE_LIGHT: '1' });
      assert.equal(hung.failed.length, 5, JSON.stringify(hung));
      assert.ok(
        hung.failed.every((f) => f.reason === 'chrt did not finish within 300 ms'),
        JSON.stringify(hung),
      );
      for (const probe of [refused, hung]) {
        assert.deepEqual(probe.batched, []);
        assert.ok(
          Object.values(probe.policy).every((p) => p === probe.mainPolicyBefore),
          JSON.stringify(probe),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('changes nothing when the threads cannot be told apart: Node sizing the pool, a tracing agent, no chrt', () => {
    for (const [flags, env, reason] of [
      [['--v8-pool-size=0'], {}, /--v8-pool-size=0 lets Node size the pool/],
      [[], { NODE_OPTIONS: '--v8-pool-size=0' }, /--v8-pool-size=0 lets Node size the pool/],
      [['--trace-event-categories', 'v8'], {}, /threads where Node 20 starts/],
      [[], { PROBE_CHRT: '/nonexistent/chrt' }, /chrt \(util-linux\) is not installed/],
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

  it("does it on a terminal too, where the hub's pretty logger starts a thread of its own first", async (t) => {
    if (!chrt(t)) return;
    const script = requireTool(t, 'script', ['script'], 'apt-get install bsdutils');
    if (!script) return;
    const dataDir = tempDataDir();
    const { env, flags } = launcherSettings();
    const args = ['start', '--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--hap-host', '127.0.0.1', '--hap-port', '0'];
    const command = [process.execPath, ...flags, BIN, ...args, '--http-host', '127.0.0.1', '--http-port', '0', '--pincode', PINCODE]
      .map((word) => `'${word.replace(/'/g, "'\\''")}'`)
      .join(' ');
    // script(1) gives the hub a pseudo-terminal, as a person's shell does.
    const child = spawn(script, ['-qfec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const pid = await eventually(() => readRuntime(dataDir)?.pid, 30_000, `the hub's runtime file; it printed: ${output}`);
      await eventually(
        () => readdirSync(`/proc/${pid}/task`).filter((tid) => threadStat(Number(tid), pid).policy === SCHED_BATCH).length === 5,
        10_000,
        "five of the hub's threads SCHED_BATCH",
      );
      assert.ok(readdirSync(`/proc/${pid}/task`).length > 11, "the pretty logger's thread runs beside Node's");
      process.kill(pid, 'SIGTERM');
      await once(child, 'exit');
    } finally {
      child.kill('SIGKILL');
      removeDataDir(dataDir);
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
