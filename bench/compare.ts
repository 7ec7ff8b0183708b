/**
 * `node dist/bench/compare.js A.json B.json C.json`: the rows of several full runs side by side, as the
 * Markdown table docs/benchmarks.md shows. A target is met only if every run meets it; the floor shown
 * is each run's own, in the same order.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Row } from './stats.js';

interface Run {
  file: string;
  quick: boolean;
  rows: Row[];
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node dist/bench/compare.js RESULT.json [RESULT.json …] (the files npm run bench writes to bench/results)');
  process.exit(2);
}
const runs: Run[] = files.map((file) => ({ file, ...(JSON.parse(readFileSync(file, 'utf8')) as Omit<Run, 'file'>) }));
const quick = runs.filter((r) => r.quick).map((r) => basename(r.file));
if (quick.length > 0) console.error(`note: ${quick.join(', ')} ${quick.length === 1 ? 'is a --quick run' : 'are --quick runs'}: not for docs`);

// A run's sample count is part of the metric's text ("latency p99 (n=592)"); it must not split a row.
const metricName = (metric: string) => metric.replace(/\(n=\d+\)/, '').trim();
const key = (r: Row) => `${r.scenario}\u0000${metricName(r.metric)}`;
const order: Row[] = [];
const seen = new Set<string>();
for (const run of runs) {
  for (const r of run.rows) {
    if (!seen.has(key(r))) order.push(r);
    seen.add(key(r));
  }
}

const cell = (values: Array<number | undefined>, unit = '') => values.map((v) => (v === undefined ? '–' : `${v}`)).join(' / ') + (unit ? ` ${unit}` : '');
const lines = [`| scenario | metric | mqttkit (${runs.length} runs) | floor | target | met in every run |`, '|---|---|---|---|---|---|'];
for (const first of order) {
  const rows = runs.map((run) => run.rows.find((r) => key(r) === key(first)));
  const met = rows.every((r) => r?.met === undefined) ? '' : rows.every((r) => r?.met === true) ? 'yes' : 'no';
  const floors = rows.map((r) => r?.floor);
  lines.push(
    `| ${first.scenario} | ${metricName(first.metric)} | ${cell(
      rows.map((r) => r?.value),
      first.unit,
    )} | ${floors.every((f) => f === undefined) ? '' : cell(floors)} | ${first.target ?? ''} | ${met} |`,
  );
}
console.log(lines.join('\n'));
