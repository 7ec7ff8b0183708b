/**
 * issue 13: a device's JSON on stat/<id>/OTA (transfer reports, command answers) is checked by a schema
 * before the hub uses a field: a wrong type is refused by name, not taken as a good answer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseReport } from '../../src/ota/protocol.js';

describe('transfer reports [O-3]', () => {
  it('a good report is read as before', () => {
    const r = parseReport('{"file":"main.py","ok":true,"hash":"ab12","committed":["main.py"]}');
    assert.ok(r.ok);
    assert.deepEqual(
      { file: r.value.file, ok: r.value.ok, hash: r.value.hash, committed: r.value.committed },
      { file: 'main.py', ok: true, hash: 'ab12', committed: ['main.py'] },
    );
    const failed = parseReport('{"file":"main.py","ok":false,"hash":null,"error":"no space"}');
    assert.ok(failed.ok && failed.value.error === 'no space' && failed.value.hash === null);
  });

  it('a report whose hash is not a string is refused (it cannot pass as verified), naming the field', () => {
    // The hub compares the hash only when it is a string: a number here was a "good" report unchecked.
    const r = parseReport('{"file":"main.py","ok":true,"hash":1234}');
    assert.ok(!r.ok, 'a report with a numeric hash must not be accepted');
    assert.match(r.error, /hash/);
  });

  it('a report whose file is not a string is refused, naming the field', () => {
    const r = parseReport('{"file":{"x":1},"ok":true,"hash":"ab"}');
    assert.ok(!r.ok);
    assert.match(r.error, /file/);
  });

  it('text and a report without ok are refused', () => {
    assert.ok(!parseReport('hello').ok);
    const r = parseReport('{"file":"a.py"}');
    assert.ok(!r.ok);
    assert.match(r.error, /ok/);
  });
});
