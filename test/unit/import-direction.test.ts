/**
 * The direction of imports (docs/architecture.md): src/core is the middle of the house and imports
 * nothing of the features around it; read from the import lines of the source, so a new import the
 * wrong way fails here, not in review.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/doc-rules.js';

const SRC = join(ROOT, 'src');

/** Every `from '…'` / `import('…')` of a file's import and export lines, resolved to a folder under src ('' outside it). */
function importedAreas(area: string, file: string): Array<{ area: string; line: string }> {
  const text = readFileSync(join(SRC, area, file), 'utf8');
  const out: Array<{ area: string; line: string }> = [];
  for (const line of text.split('\n')) {
    const match = /^\s*(?:import|export)\b.*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/.exec(line);
    const spec = match?.[1] ?? match?.[2];
    if (!spec?.startsWith('.')) continue;
    const parts = join(area, file, '..', spec).split('/');
    out.push({ area: parts.length > 1 ? parts[0]! : '', line: line.trim() });
  }
  return out;
}

function filesOf(area: string): string[] {
  return readdirSync(join(SRC, area), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
}

/** What each layer may not import (docs/architecture.md "Direction of imports"). */
const FORBIDDEN: Record<string, readonly string[]> = {
  core: ['broker', 'homekit', 'ota', 'store', 'web', 'cli', 'hub', 'security', 'conformance'],
  // The areas never reach up into the wiring or the CLI; the hub wires them.
  broker: ['hub', 'cli', 'web'],
  homekit: ['hub', 'cli', 'web', 'ota'],
  ota: ['hub', 'cli', 'web', 'homekit'],
  store: ['hub', 'cli', 'web', 'homekit'],
  security: ['hub', 'cli', 'web', 'homekit', 'ota'],
  // (web reads the hub's VERSION, a leaf file, so only the CLI is out of its reach)
  web: ['cli'],
};

describe('import direction', () => {
  for (const [area, forbidden] of Object.entries(FORBIDDEN)) {
    it(`src/${area} imports nothing of ${forbidden.join(', ')}`, () => {
      const wrong: string[] = [];
      for (const file of filesOf(area)) {
        for (const imported of importedAreas(area, file)) if (forbidden.includes(imported.area)) wrong.push(`src/${area}/${file}: ${imported.line}`);
      }
      assert.deepEqual(wrong, [], 'imports against the direction in docs/architecture.md');
    });
  }

  it('reads import lines at all (the check above cannot pass by reading nothing)', () => {
    const areas = new Set(filesOf('hub').flatMap((f) => importedAreas('hub', f).map((i) => i.area)));
    for (const area of ['core', 'broker', 'homekit', 'ota', 'store', 'web']) assert.ok(areas.has(area), `src/hub imports src/${area}`);
  });
});
