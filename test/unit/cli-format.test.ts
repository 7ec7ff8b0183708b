/** The CLI's listings and progress for people: relative times, durations, the speed, one-line cells, health. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { health } from '../../src/cli/observe-command.js';
import { describeProgress, formatDuration, Rate } from '../../src/cli/progress.js';
import { ago, formatTable, printable } from '../../src/cli/table.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');

describe('CLI formatting', () => {
  it('says times as people do', () => {
    assert.equal(ago(NOW - 2000, NOW), 'just now');
    assert.equal(ago(NOW - 3 * 60_000, NOW), '3 min. ago');
    assert.equal(ago(NOW - 2 * 3600_000, NOW), '2 hr. ago');
    assert.equal(ago(NOW - 24 * 3600_000, NOW), 'yesterday');
    assert.equal(ago(new Date(NOW - 40_000).toISOString(), NOW), '40 sec. ago');
    assert.equal(ago(null, NOW), '-');
    assert.equal(ago('not a time', NOW), '-');
  });

  it('says durations and the time left, rounded up while bytes remain', () => {
    assert.equal(formatDuration(8), '8 s');
    assert.equal(formatDuration(125), '2 min 5 s');
    assert.equal(formatDuration(3780), '1 h 3 min');
    assert.equal(describeProgress(900, 1000, 1000, false).left, '1 s left');
    assert.equal(describeProgress(0, 1000, undefined, false).left, '- left');
    assert.deepEqual(describeProgress(512 * 1024, 1024 * 1024, 256 * 1024, false), { done: '512 KiB', size: '1 MiB', speed: '256 KiB/s', left: '2 s left' });
  });

  it('measures the speed over recent samples and starts over when the bytes go back (a new file)', () => {
    const rate = new Rate(5000);
    rate.add(0, 0);
    assert.equal(rate.perSecond(), undefined, 'one sample is no speed');
    rate.add(1000, 1000);
    assert.equal(rate.perSecond(), 1000);
    rate.add(500, 2000);
    rate.add(2500, 3000);
    assert.equal(rate.perSecond(), 2000);
  });

  it('aligns columns under a header and keeps each cell on one line', () => {
    const out = formatTable(
      ['ID', 'STATE'],
      [
        ['a', 'online'],
        ['long-id', 'evil\nline\u001b[2J'],
      ],
    );
    const lines = out.split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[0], 'ID       STATE');
    assert.equal(lines[1], 'a        online');
    assert.equal(lines[2], 'long-id  evil line [2J');
    assert.equal(formatTable(['A', 'B'], [[null, '']]).split('\n')[1], '-  -');
  });

  it('names what needs attention first: offline, a failed update, a crash; "no exception recorded" is healthy', () => {
    const base = { state: 'online', lastException: null, lastReboot: 'power on', ota: [] };
    assert.equal(health(base), 'ok');
    assert.equal(health({ ...base, lastException: 'no exception recorded' }), 'ok');
    assert.equal(health({ ...base, lastException: 'ZeroDivisionError' }), 'exception: ZeroDivisionError');
    assert.equal(health({ ...base, lastReboot: 'watchdog' }), 'reboot: watchdog');
    assert.equal(
      health({
        ...base,
        ota: [
          { id: 4, state: 'rolled-back' },
          { id: 3, state: 'succeeded' },
        ],
      }),
      'OTA #4 rolled-back',
    );
    assert.equal(
      health({
        ...base,
        ota: [
          { id: 5, state: 'queued' },
          { id: 4, state: 'succeeded' },
        ],
      }),
      'ok',
    );
    assert.equal(health({ ...base, state: 'offline', lastException: 'boom' }), 'offline');
  });

  it("never hands a device's control characters to the terminal: 7-bit escapes, and 8-bit CSI (U+009B) too", () => {
    const hostile = 'ok\u001b[2J\u009b31mred\u0007';
    assert.equal(printable(hostile), 'ok\\x1b[2J\\x9b31mred\\x07');
    assert.equal(printable('two\nlines\tand a tab'), 'two\nlines\tand a tab', 'newline and tab are text');
    const table = formatTable(['DEVICE', 'HEALTH'], [['d1', hostile]]);
    assert.doesNotMatch(table, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});
