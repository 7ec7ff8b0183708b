/**
 * OTA progress written to a file or a pipe (CI logs, `2> log`): a line when a bar has news, so a big
 * rollout stays readable; the format is the terminal's bar line.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { LineSchedule, TransferBars } from '../../src/cli/progress.js';
import type { Job, JobState } from '../../src/store/ota-store.js';

function job(id: number, bytes: number, state: JobState = 'running'): Job {
  return {
    id,
    kind: 'push',
    device: `dev-${id}`,
    spec: {},
    state,
    message: state === 'failed' ? 'hash mismatch' : null,
    progress: { files: 1, filesTotal: 1, bytes, bytesTotal: 100_000, step: state === 'running' ? 'sending main.py' : 'done' },
    rolloutId: 1,
    createdAt: 0,
    startedAt: 0,
    finishedAt: null,
  };
}

function collect(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

describe('OTA progress without a terminal', () => {
  it('a rollout of 100 devices, 200 updates each, writes about a line per tenth per device, not one per update', () => {
    const out = collect();
    let now = 0; // 200 updates a device, 50 ms apart: a 10-second transfer
    const bars = new TransferBars(
      Array.from({ length: 100 }, (_, i) => `dev-${i}`),
      true,
      out.stream,
      () => now,
    );
    for (let step = 1; step <= 200; step++) {
      now += 50;
      for (let id = 0; id < 100; id++) bars.update(job(id, step * 500));
    }
    for (let id = 0; id < 100; id++) bars.update(job(id, 100_000, id === 7 ? 'failed' : 'succeeded'));
    bars.stop();
    const lines = out.lines();
    const perDevice = lines.filter((l) => /^ dev-42 /.test(l));
    assert.ok(perDevice.length >= 10 && perDevice.length <= 13, `dev-42: ${perDevice.length} lines:\n${perDevice.join('\n')}`);
    assert.ok(lines.length < 100 * 13 + 200, `${lines.length} lines in all`);
    assert.match(perDevice.at(-1)!, /100% \| 97\.7 KiB \/ 97\.7 KiB \| .* \| done \| done$/, 'the last line says done');
    assert.match(lines.filter((l) => /^ dev-7 /.test(l)).at(-1)!, /\| failed: hash mismatch$/, 'a failure says why');
    const totals = lines.filter((l) => /^ total /.test(l));
    assert.match(totals.at(-1)!, /100% .*\| 100\/100 devices done$/, totals.at(-1));
  });

  it('a bar that stalls is written again after a quiet while, so the log shows it is stuck', () => {
    const schedule = new LineSchedule(10_000);
    assert.equal(schedule.due('a', 0, 100, false, 0), true, 'first sight');
    assert.equal(schedule.due('a', 5, 100, false, 1000), false, 'nothing new');
    assert.equal(schedule.due('a', 12, 100, false, 2000), true, 'a new tenth');
    assert.equal(schedule.due('a', 12, 100, false, 9000), false);
    assert.equal(schedule.due('a', 12, 100, false, 12_000), true, 'ten quiet seconds');
    assert.equal(schedule.due('a', 12, 100, true, 12_500), true, 'the end');
    assert.equal(schedule.due('a', 12, 100, true, 30_000), false, 'once');
  });
});
