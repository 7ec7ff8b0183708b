/**
 * The OTA scheduler is event-driven (docs/architecture.md): a queued job starts on a store change, a
 * device's state change or its SUBSCRIBE, not on a poll tick. No repeating timer in src/ota; a job
 * starting promptly when its device listens is shown end to end by test/e2e/listening.test.ts and ota-jobs.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/doc-rules.js';

describe('the OTA scheduler', () => {
  it('has no polling timer in src/ota (no setInterval, no sleep loop of the rollouts)', () => {
    const dir = join(ROOT, 'src', 'ota');
    const found: string[] = [];
    // recursive: the job kinds live in src/ota/jobs
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    assert.ok(files.includes('scheduler.ts') && files.some((f) => f.startsWith('jobs/')), 'reads the scheduler and the job kinds');
    for (const file of files) {
      for (const [n, line] of readFileSync(join(dir, file), 'utf8').split('\n').entries()) {
        if (/\bsetInterval\(|await sleep\(200\)/.test(line)) found.push(`src/ota/${file}:${n + 1}: ${line.trim()}`);
      }
    }
    assert.deepEqual(found, []);
  });
});
