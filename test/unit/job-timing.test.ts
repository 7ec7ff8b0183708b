/**
 * [O-26] A job's timing: its run cut into the hub's, the device's and the wire's spans, which add up to
 * the run's time; a pull transfer is cut at the moments the pull server saw.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobClock } from '../../src/ota/job-timing.js';

/** A clock the test moves by hand. */
function manual(start = 1000) {
  let t = start;
  return { now: () => t, at: (ms: number) => (t = start + ms) };
}

describe('the job clock', () => {
  it('cuts a push into the hub, the device and the wire, adding up to the whole run', async () => {
    const time = manual();
    const clock = new JobClock(time.now);
    time.at(2); // the hub reads the file
    const answered = clock.device("'getversion'", new Promise((r) => setTimeout(r, 0)));
    time.at(12);
    await answered;
    time.at(15); // the hub hashes and opens the pull server, then the trigger is handed over
    time.at(40); // the report arrives
    clock.transfer(1015, { connectedAt: 1020, firstByteAt: 1020.5, lastByteAt: 1030, doneAt: 1033 });
    time.at(41);
    const commit = clock.device("'commit'", Promise.resolve());
    time.at(45);
    await commit;
    time.at(47);
    const timing = clock.timing();
    assert.equal(timing.totalMs, 47);
    assert.equal(timing.hubMs + timing.deviceMs + timing.wireMs, timing.totalMs);
    assert.equal(timing.wireMs, 12.5, 'from the first byte until the device had read it all');
    assert.equal(timing.firstByteMs, 5.5, 'the trigger until the first byte');
    assert.deepEqual(
      timing.spans.map((s) => [s.who, s.ms]),
      [
        ['hub', 2],
        ['device', 10],
        ['hub', 3],
        ['device', 5],
        ['hub', 0.5],
        ['wire', 12.5],
        ['device', 7],
        ['hub', 1],
        ['device', 4],
        ['hub', 2],
      ],
    );
    assert.equal(timing.deviceMs, 26);
    assert.equal(timing.hubMs, 8.5);
  });

  it('a device that never came for the file: the wait after the trigger is the device’s', () => {
    const time = manual();
    const clock = new JobClock(time.now);
    time.at(60_000);
    clock.transfer(1001, {});
    const timing = clock.timing();
    assert.equal(timing.deviceMs, 59_999);
    assert.equal(timing.wireMs, 0);
    assert.equal(timing.firstByteMs, undefined);
  });

  it('keeps a bounded list of spans, and the sums count them all', async () => {
    const time = manual();
    const clock = new JobClock(time.now);
    for (let i = 0; i < 200; i++) {
      const wait = clock.device(i % 2 ? "'hashes'" : "'commit'", Promise.resolve());
      time.at(i * 2 + 1);
      await wait;
      time.at(i * 2 + 2);
    }
    const timing = clock.timing();
    assert.ok(timing.spans.length <= 40, `${timing.spans.length} spans`);
    assert.equal(timing.deviceMs, 200);
    assert.equal(timing.hubMs, 200);
  });

  it('never times a first byte before the trigger: a quick device may ask before the hub saw its trigger acknowledged', () => {
    const time = manual();
    const clock = new JobClock(time.now);
    time.at(30);
    // The marks of a device that fetched at 1010-1012 while the hub still waited for the PUBACK it took at 1015.
    clock.transfer(1015, { connectedAt: 1010, firstByteAt: 1011, lastByteAt: 1012, doneAt: 1013 });
    const timing = clock.timing();
    assert.ok(timing.firstByteMs !== undefined && timing.firstByteMs >= 0, `first byte after ${timing.firstByteMs} ms`);
    assert.ok(timing.spans.every((span) => span.ms >= 0));
    assert.equal(timing.hubMs + timing.deviceMs + timing.wireMs, timing.totalMs);
  });
});
