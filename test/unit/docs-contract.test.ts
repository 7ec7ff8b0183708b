/**
 * The docs are one contract (issue 12): every numbered rule is defined in exactly one place, in the file
 * that owns its letter; no text, code or firmware cites a rule that does not exist; and every protocol
 * and OTA rule is implemented somewhere that says so (a citation under src/ or device/).
 *
 * The convention (docs/protocol.md, "How rules are written"): a rule is DEFINED where its id is the first
 * or the last word of a paragraph or list item, or stands in a heading; anywhere else (mid-sentence,
 * after "see", in parentheses, in a table or code) an id is a CITATION.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { citations, definedIn, definitions, docs, HOME, type Place, sources } from '../helpers/doc-rules.js';

const where = (places: Place[]) => places.map((p) => `${p.file}:${p.line}`).join(', ');

describe('the docs are one contract', () => {
  it('the convention tells definitions from citations', () => {
    const one = (text: string, heading = false) => definedIn({ text, heading });
    assert.deepEqual(one('A device SHOULD set a last will. [P-1]'), ['P-1']);
    assert.deepEqual(one('[O-11] A device announces its protocol'), ['O-11']);
    assert.deepEqual(one('**[D-1] Files are replaced whole.** Every state file'), ['D-1']);
    assert.deepEqual(one('Pull transfer [O-1]', true), ['O-1']);
    assert.deepEqual(one('the embedded broker cuts it off (security.md [S-4]).'), []);
    assert.deepEqual(one('the keepalive rule holds, see [P-20].'), []);
    assert.deepEqual(one('a retained write [P-14] waits for the wake'), []);
  });

  it('defines every rule exactly once, in the file that owns its letter', () => {
    const byId = new Map<string, Place[]>();
    for (const place of definitions()) byId.set(place.id, [...(byId.get(place.id) ?? []), place]);
    const problems: string[] = [];
    for (const [id, places] of byId) {
      if (places.length > 1) problems.push(`[${id}] is defined ${places.length} times: ${where(places)} (keep one; make the others "see [${id}]")`);
      const home = `docs/${HOME[id[0]!]}`;
      const away = places.filter((p) => p.file !== home);
      if (away.length > 0) problems.push(`[${id}] is defined outside ${home}: ${where(away)} (cite it mid-sentence or with "see")`);
    }
    assert.deepEqual(problems, []);
  });

  it('cites no rule that is not defined (docs, README, src, device, bin)', () => {
    const defined = new Set(definitions().map((p) => p.id));
    const cited = citations([...docs(), ...sources('src'), ...sources('device'), ...sources('bin')]);
    const unknown = cited.filter((p) => !defined.has(p.id)).map((p) => `[${p.id}] at ${p.file}:${p.line}`);
    assert.deepEqual(unknown, []);
  });

  it('cites every protocol and OTA rule in the code that implements it (src/ or device/)', () => {
    const cited = new Set(citations([...sources('src'), ...sources('device')]).map((p) => p.id));
    const missing = [...new Set(definitions().map((p) => p.id))].filter((id) => /^[POE]-/.test(id) && !cited.has(id)).sort();
    assert.deepEqual(missing, [], `rules no code under src/ or device/ cites: ${missing.join(', ')}`);
  });
});
