/**
 * The benchmark harness must not rot: `npm run bench -- --quick` runs every scenario with tiny counts.
 * This asserts only that each scenario produced numbers, never their values (speed is measured by
 * `npm run bench`, not by tests).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requirePostgres } from '../helpers/postgres.js';
import { requireTool } from '../helpers/system-tools.js';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

describe('benchmark smoke run', { timeout: 240_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'mqttkit-bench-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('runs all eight scenarios quickly and writes numbers for each', async (t) => {
    if (!requireTool(t, 'python3', ['python3'], 'apt-get install python3')) return;
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [RUN, '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
      let o = '';
      let e = '';
      child.stdout.on('data', (d: Buffer) => (o += d.toString()));
      child.stderr.on('data', (d: Buffer) => (e += d.toString()));
      child.on('exit', (c) => resolve({ code: c, stdout: o, stderr: e }));
    });
    assert.equal(code, 0, stderr);
    const [file] = readdirSync(out);
    const result = JSON.parse(readFileSync(join(out, file!), 'utf8')) as {
      rows: Array<{ scenario: string; value: number; floor?: number }>;
      failures: string[];
    };
    assert.deepEqual(result.failures, []);
    for (const n of ['1.', '2.', '3.', '4.', '5.', '6.', '7.', '8.']) {
      const rows = result.rows.filter((r) => r.scenario.startsWith(n));
      assert.ok(rows.length > 0, `scenario ${n} produced rows`);
      assert.ok(
        rows.every((r) => Number.isFinite(r.value)),
        `scenario ${n} produced numbers`,
      );
    }
    assert.ok(
      result.rows.some((r) => r.floor !== undefined),
      'figures come with floors',
    );
    assert.match(stdout, /\| scenario \| metric \| mqttkit \| floor \| ratio \| target \| met \|/);
  });

  it('runs the queries scenario (--only 9: not in the default list) on SQLite and PostgreSQL', async (t) => {
    if (!requirePostgres(t)) return;
    const dir = join(out, 'queries');
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [RUN, '--quick', '--only', '9', '--out', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      let e = '';
      child.stderr.on('data', (d: Buffer) => (e += d.toString()));
      child.on('exit', (c) => resolve({ code: c, stderr: e }));
    });
    assert.equal(code, 0, stderr);
    const [file] = readdirSync(dir);
    const result = JSON.parse(readFileSync(join(dir, file!), 'utf8')) as {
      rows: Array<{ scenario: string; metric: string; value: number }>;
      failures: string[];
    };
    assert.deepEqual(result.failures, []);
    for (const engine of ['SQLite', 'PostgreSQL']) {
      const rows = result.rows.filter((r) => r.scenario === '9. queries' && r.metric.includes(`· ${engine} · warm p50`));
      assert.ok(rows.length >= 5, `each query timed on ${engine}`);
      assert.ok(rows.every((r) => Number.isFinite(r.value)));
    }
  });
});
