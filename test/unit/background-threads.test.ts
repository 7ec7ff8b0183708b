/**
 * The hub lowers V8's background threads, and only them (src/hub/background-threads.ts), which rests on
 * how Node starts its threads. Checked against the running Node by the work each thread does: JIT
 * compiles must land on the lowered threads, password hashing (libuv's pool) on the others.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BACKGROUND_NICE, v8PoolSize } from '../../src/hub/background-threads.js';
import { launcherSettings } from '../helpers/hub-process.js';

interface Probe {
  lowered: number[];
  skipped?: string;
  main: number;
  nice: Record<string, number>;
  /** CPU ticks each thread spent in the phase. */
  compile: Record<string, number>;
  hashing: Record<string, number>;
}

// Runs as an ES module, as the hub does: by then libuv's pool has started (the loader read the file).
const probeSource = (moduleUrl: string) => `
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { scrypt } from 'node:crypto';
const { yieldBackgroundThreads } = await import(${JSON.stringify(moduleUrl)});
const result = yieldBackgroundThreads();
const ticks = () => Object.fromEntries(readdirSync('/proc/self/task').map((tid) => {
  const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [tid, Number(f[11]) + Number(f[12])];
}));
const delta = (a, b) => Object.fromEntries(Object.keys(b).map((t) => [t, b[t] - (a[t] ?? 0)]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
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
const compile = delta(t0, ticks());
// Phase 2: password hashing, which runs on libuv's pool.
t0 = ticks();
await Promise.all(Array.from({ length: 6 }, (_, i) => new Promise((resolve, reject) =>
  scrypt('password' + i, 'salt-salt-salt', 64, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (e) => (e ? reject(e) : resolve())))));
const hashing = delta(t0, ticks());
const nice = Object.fromEntries(readdirSync('/proc/self/task').map((tid) => [tid, getPriority(Number(tid))]));
console.log(JSON.stringify({ ...result, main: process.pid, nice, compile, hashing, sink: sink & 1 }));
`;

function runProbe(extraFlags: string[] = []): Probe {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-threads-'));
  try {
    const script = join(dir, 'probe.mjs');
    const moduleUrl = pathToFileURL(new URL('../../src/hub/background-threads.js', import.meta.url).pathname).href;
    writeFileSync(script, probeSource(moduleUrl));
    const out = execFileSync(process.execPath, [...launcherSettings().flags, ...extraFlags, script], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    return JSON.parse(out) as Probe;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Ticks of the phase spent on the lowered threads and on the other background threads (the main thread left out). */
function split(probe: Probe, phase: Record<string, number>): { lowered: number; others: number } {
  let lowered = 0;
  let others = 0;
  for (const [tid, t] of Object.entries(phase)) {
    if (Number(tid) === probe.main) continue;
    if (probe.lowered.includes(Number(tid))) lowered += t;
    else others += t;
  }
  return { lowered, others };
}

describe('background threads', { skip: process.platform !== 'linux' && 'thread priorities are read from /proc (Linux)' }, () => {
  it("gives V8's threads nice 19: JIT compiles run on them, password hashing on libuv's pool at the event loop's priority", () => {
    const probe = runProbe();
    assert.equal(probe.skipped, undefined);
    assert.equal(probe.lowered.length, 5, 'the delayed task scheduler and 4 workers');
    for (const tid of probe.lowered) assert.equal(probe.nice[tid], BACKGROUND_NICE, `thread ${tid}`);
    assert.equal(probe.nice[probe.main], 0, 'the event loop keeps its priority');
    const compile = split(probe, probe.compile);
    const hashing = split(probe, probe.hashing);
    const detail = JSON.stringify({ lowered: probe.lowered, compile: probe.compile, hashing: probe.hashing });
    assert.ok(
      compile.lowered >= 3 && compile.lowered > 4 * compile.others,
      `compile ticks on V8's threads ${compile.lowered}, elsewhere ${compile.others}: ${detail}`,
    );
    assert.ok(
      hashing.others >= 10 && hashing.others > 4 * hashing.lowered,
      `hashing ticks on libuv's pool ${hashing.others}, on V8's threads ${hashing.lowered}: ${detail}`,
    );
    for (const [tid, t] of Object.entries(probe.hashing))
      if (t > 0 && Number(tid) !== probe.main && !probe.lowered.includes(Number(tid))) assert.equal(probe.nice[tid], 0, `hashing thread ${tid}`);
  });

  it('follows --v8-pool-size, and leaves every thread alone when Node sizes the pool itself', () => {
    const two = runProbe(['--v8-pool-size=2']);
    assert.equal(two.lowered.length, 3);
    const compile = split(two, two.compile);
    assert.ok(compile.lowered > 4 * compile.others, JSON.stringify(two));
    const auto = runProbe(['--v8-pool-size=0']);
    assert.match(auto.skipped ?? '', /cannot tell V8 threads apart/);
    assert.ok(Object.values(auto.nice).every((n) => n === 0));
  });

  it('reads the pool size from the flags', () => {
    assert.equal(v8PoolSize([]), 4);
    assert.equal(v8PoolSize(['--v8-pool-size=2']), 2);
    assert.equal(v8PoolSize(['--v8-pool-size', '3']), 3);
    assert.equal(v8PoolSize(['--v8-pool-size=0']), undefined);
    assert.equal(v8PoolSize(['--v8-pool-size=x']), undefined);
  });
});
