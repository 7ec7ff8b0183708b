/**
 * The OTA command names live in one typed table (src/ota/commands.ts) that the hub's sender uses;
 * docs/ota.md §3's command table must list exactly those names, and say JSON exactly for the JSON ones.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OTA_COMMANDS } from '../../src/ota/commands.js';
import { fitsAnswer } from '../../src/ota/request-id.js';
import { ROOT } from '../helpers/doc-rules.js';

/** The rows of the first table in docs/ota.md "## 3. Commands": command name → its "effect and answer" text. */
function documentedCommands(): Map<string, string> {
  const text = readFileSync(join(ROOT, 'docs', 'ota.md'), 'utf8');
  const section = text.slice(text.indexOf('## 3. Commands'), text.indexOf('### 3.1'));
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const match = /^\| `([a-z_]+)` \| (.*) \|$/.exec(line);
    if (match) rows.set(match[1]!, match[2]!);
  }
  return rows;
}

describe('the OTA command table', () => {
  it('docs/ota.md §3 lists exactly the commands of src/ota/commands.ts', () => {
    assert.deepEqual([...documentedCommands().keys()].sort(), Object.keys(OTA_COMMANDS).sort());
  });

  it('an answer the docs give as JSON is a JSON answer in the table, and the sender waits for JSON for it', () => {
    for (const [name, effect] of documentedCommands()) {
      const json = (OTA_COMMANDS as Record<string, { answer: string }>)[name]?.answer === 'json';
      assert.equal(/\bJSON\b/.test(effect), json, `${name}: the docs say "${effect.slice(0, 80)}…"`);
      assert.equal(fitsAnswer(name, 'a line of text'), !json, `${name}: a text line ${json ? 'is not' : 'is'} its answer`);
    }
  });
});
