/**
 * `npm run bench [-- --quick] [-- --only N,M] [-- --out DIR]`: runs the scenarios against real hubs on
 * free ports, prints a markdown table (each figure beside its floor) and writes the JSON results.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deviceMemory } from './scenarios/device-memory.js';
import { flood, load, scale } from './scenarios/fleet.js';
import { idle } from './scenarios/idle.js';
import { latency } from './scenarios/latency.js';
import { matterLatency } from './scenarios/matter.js';
import { ota } from './scenarios/ota.js';
import { queries } from './scenarios/queries.js';
import type { Row } from './stats.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',').map(Number) : undefined;
const outDir = args.includes('--out') ? args[args.indexOf('--out') + 1]! : fileURLToPath(new URL('../../bench/results', import.meta.url));

const scenarios: Array<[number, string, () => Promise<Row[]>]> = [
  [1, 'latency', () => latency(quick ? { immediate: 10, batched: 4, writes: 10 } : { immediate: 1000, batched: 200, writes: 1000 })],
  [
    3,
    'load',
    () => load(quick ? { devices: 20, seconds: 3 } : { devices: Number(process.env.BENCH_DEVICES ?? 500), seconds: Number(process.env.BENCH_SECONDS ?? 60) }),
  ],
  [4, 'scale', () => scale(quick ? { devices: 160 } : { devices: 1000 })],
  [5, 'ota', () => ota(quick ? { bytes: 128 * 1024 } : { bytes: 1024 * 1024 })],
  [6, 'flood', () => flood(quick ? { messages: 5000, seconds: 2 } : { messages: 50_000, seconds: 15 })],
  [7, 'device-memory', () => deviceMemory(quick ? { publishes: 20, commands: 6, otaBytes: 16 * 1024 } : { publishes: 100, commands: 20, otaBytes: 64 * 1024 })],
  [8, 'idle', () => idle(quick ? { devices: 20, settleSeconds: 2, seconds: 3 } : { devices: 100, settleSeconds: 40, seconds: 60 })],
  // Issue 15: ~5.3 million samples into SQLite and PostgreSQL take minutes: only with `--only 9`.
  [9, 'queries', () => queries(quick ? { devices: 50, days: 7, runs: 10 } : { devices: 50, days: 365, runs: 30 })],
  // Issue 17: MQTT -> Matter subscription report, beside HomeKit's event on the same hub.
  [10, 'matter', () => matterLatency(quick ? { samples: 10 } : { samples: 500 })],
];
/** Scenarios that run only when `--only` names them. */
const OPT_IN = new Set([9]);

const rows: Row[] = [];
const failures: string[] = [];
const started = Date.now();
for (const [n, name, run] of scenarios) {
  if (only ? !only.includes(n) : OPT_IN.has(n)) continue;
  process.stderr.write(`scenario ${n} (${name})…\n`);
  try {
    rows.push(...(await run()));
  } catch (error) {
    failures.push(`${name}: ${(error as Error).stack ?? error}`);
    process.stderr.write(`scenario ${name} failed: ${(error as Error).message}\n`);
  }
}

const table = [
  '| scenario | metric | mqttkit | floor | ratio | target | met |',
  '|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.scenario} | ${r.metric} | ${r.value} ${r.unit} | ${r.floor ?? ''} | ${r.ratio ?? ''} | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : 'no'} |`,
  ),
].join('\n');
console.log(table);
mkdirSync(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const file = join(outDir, `${stamp}${quick ? '-quick' : ''}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), quick, seconds: Math.round((Date.now() - started) / 1000), node: process.version, rows, failures }, null, 2)}\n`,
);
process.stderr.write(`results: ${file}\n`);
if (failures.length > 0) {
  process.stderr.write(failures.join('\n') + '\n');
  process.exitCode = 1;
}
process.exit();
