/**
 * issue 13: SQL lives in src/store only (everything else goes through the store classes the hub uses),
 * and the CLI and the hub do not talk by polling: no interval in the CLI, no request table in the hub.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../../src/store/database.js';

const SRC = fileURLToPath(new URL('../../../src', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Each line of `src` (outside `skip`) that matches `pattern`, as `file:line: text`. */
function matches(pattern: RegExp, under = SRC, skip?: string): string[] {
  return files(under)
    .filter((file) => !skip || !relative(SRC, file).startsWith(skip))
    .flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, n) => (pattern.test(line) ? [`${relative(SRC, file)}:${n + 1}: ${line.trim()}`] : [])),
    );
}

const SQL =
  /\.prepare\(|\.exec\(\s*['"`]|['"`]\s*(SELECT|SHOW)\s|\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE|ALTER\s+TABLE|DROP\s+TABLE)\b/;

describe('boundaries', () => {
  it('the pattern finds SQL where there is some (src/store)', () => {
    assert.ok(matches(SQL, join(SRC, 'store')).length > 10);
    assert.ok(SQL.test(`ws.db.prepare("UPDATE rollouts SET state = 'running' WHERE id = ?")`));
    // a statement without FROM (the active lock's, src/store/engine/active-lock.ts) is SQL too
    assert.ok(SQL.test("client.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [key])"));
  });

  it('no SQL outside src/store', () => {
    assert.deepEqual(matches(SQL, SRC, 'store'), [], 'move these into a store class (src/store)');
  });

  it('the CLI polls nothing: it follows the hub on its event stream', () => {
    // No interval, and no sleep in a loop; the one sleep allowed waits (2 s at most) for a hub process
    // whose stream just closed to be gone, to tell "stopped" from "not answering".
    const polls = matches(/setInterval\(|setTimeout\(r\b/, join(SRC, 'cli')).filter((line) => !/while \(runningHubPid\(/.test(line));
    assert.deepEqual(polls, []);
  });

  it('the hub handles no requests from a table', () => {
    assert.deepEqual(matches(/requests|hub_requests|claimNew/, join(SRC, 'hub')), []);
    assert.deepEqual(matches(/hub_requests/, SRC, 'store/database.ts'), []);
  });

  it('a database, new or migrated, has no request table left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqttkit-schema-'));
    try {
      const db = openDatabase(join(dir, 'mqttkit.db'));
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
      db.close();
      assert.ok(tables.includes('devices'), tables.join(' '));
      assert.ok(!tables.includes('hub_requests'), tables.join(' '));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
