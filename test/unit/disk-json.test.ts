/**
 * issue 13: JSON files the hub and the CLI read from the data dir are checked by schema: a damaged one
 * is refused naming the file, the key and the fix, never read as a half-valid object.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readManifest } from '../../src/ota/manifest.js';
import { readRuntime } from '../../src/store/runtime-file.js';

const dir = mkdtempSync(join(tmpdir(), 'mqttkit-disk-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('hub.json [D-8]', () => {
  it('a good one is read; none is undefined', () => {
    const data = mkdtempSync(join(dir, 'ok-'));
    assert.equal(readRuntime(data), undefined);
    const info = {
      pid: 123,
      startedAt: 'now',
      mqtt: { address: 'mqtt://127.0.0.1:1883', embedded: true },
      bridges: [{ index: 0, name: 'b', username: 'AA:BB', setupURI: 'X-HM://x' }],
      httpPort: 8080,
    };
    writeFileSync(join(data, 'hub.json'), JSON.stringify(info));
    assert.deepEqual(readRuntime(data), info);
  });

  it('one whose pid is not a number is refused, naming the file, the key and the fix', () => {
    const data = mkdtempSync(join(dir, 'bad-'));
    writeFileSync(join(data, 'hub.json'), JSON.stringify({ pid: 'x', startedAt: 'now', mqtt: { address: 'a', embedded: true }, bridges: [] }));
    assert.throws(
      () => readRuntime(data),
      (e: Error) => /hub\.json is damaged \(pid: .*remove the file/.test(e.message),
    );
  });
});

describe('the sync manifest [O-25]', () => {
  it('a JSON manifest whose local file is not a string is refused naming the entry', () => {
    const file = join(dir, 'm.json');
    writeFileSync(file, JSON.stringify({ files: { 'main.py': 5 } }));
    assert.throws(
      () => readManifest(file),
      (e: Error) => /m\.json: files\.main\.py: .*expected \{"files"/.test(e.message),
    );
  });
});
