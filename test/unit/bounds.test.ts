/** Work and log lines bounded whatever a device sends (issue 10, finding 7). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closestName, didYouMean } from '../../src/core/suggest.js';
import { boundValue, MAX_LOG_STRING } from '../../src/log/bounded.js';

describe('did-you-mean bounds', () => {
  it('does no distance work on a name longer than any HAP name', () => {
    let consumed = 0;
    function* candidates() {
      for (const name of ['Switch', 'Lightbulb', 'SSSS']) {
        consumed++;
        yield name;
      }
    }
    assert.equal(closestName('S'.repeat(60_000), candidates()), undefined);
    assert.equal(consumed, 0, 'no candidate was even looked at');
    assert.equal(didYouMean('Swich', ['Switch', 'Lightbulb']), "; did you mean 'Switch'?", 'short typos still get help');
  });

  it('compares a bounded number of candidates', () => {
    let consumed = 0;
    function* many() {
      for (let i = 0; i < 100_000; i++) {
        consumed++;
        yield `Name${i}`;
      }
    }
    assert.equal(closestName('Switch', many()), undefined);
    assert.ok(consumed <= 1001, `${consumed} of 100000 candidates read`);
  });
});

describe('log bounds', () => {
  it('cuts long strings in messages and fields, at any depth, and describes buffers', () => {
    const bounded = boundValue({ topic: 'x'.repeat(60_000), nested: { deeper: ['y'.repeat(5000)] }, payload: Buffer.alloc(70_000), n: 3 }) as Record<
      string,
      unknown
    >;
    const text = JSON.stringify(bounded);
    assert.ok(text.length < 3 * MAX_LOG_STRING + 200, `${text.length} characters`);
    assert.match(String(bounded.topic), /…\(58976 more characters\)$/);
    assert.equal(bounded.payload, '<70000 bytes>');
    assert.equal(bounded.n, 3);
    assert.equal(boundValue('short'), 'short');
  });

  it('keeps an error an error, with its message cut', () => {
    const error = boundValue(Object.assign(new Error(`bad ${'z'.repeat(10_000)}`), { code: 'E_BAD' })) as Error & { code: string };
    assert.ok(error instanceof Error);
    assert.ok(error.message.length < MAX_LOG_STRING + 40);
    assert.equal(error.code, 'E_BAD');
    const small = new Error('small');
    assert.equal(boundValue(small), small, 'a short error is passed through as it is');
  });
});
