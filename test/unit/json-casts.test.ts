/**
 * issue 13: JSON read across a boundary (files, database rows, API bodies, MQTT payloads) is checked
 * by a zod schema, never cast. This finds `JSON.parse(…) as …` and `JSON.parse(…) as typeof …` in src/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src', import.meta.url));
/** A cast of a JSON.parse result on the same line (the form every such cast in the tree took). */
const CAST = /JSON\.parse\(.*\)\)?\s+as\s+[\w{[(]/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('JSON boundaries', () => {
  it('the pattern finds a cast of JSON.parse, and not a checked parse', () => {
    assert.ok(CAST.test('const v = JSON.parse(text) as { address?: unknown };'));
    assert.ok(CAST.test("return JSON.parse(readFileSync(join(dataDir, RUNTIME_FILE), 'utf8')) as RuntimeInfo;"));
    assert.ok(CAST.test('parsed = JSON.parse(text) as typeof parsed;'));
    assert.ok(!CAST.test('const value: unknown = JSON.parse(text);'));
    assert.ok(!CAST.test('const parsed = parseJson(text, schema);'));
  });

  it('no JSON.parse result is cast in src/ (parse with a schema: src/core/json.ts)', () => {
    const found = files(SRC).flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, n) => (CAST.test(line) ? [`${relative(SRC, file)}:${n + 1}: ${line.trim()}`] : [])),
    );
    assert.deepEqual(found, [], `cast JSON (check it with a zod schema instead):\n${found.join('\n')}`);
  });
});
