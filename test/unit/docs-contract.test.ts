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
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HOME: Record<string, string> = { P: 'protocol.md', O: 'ota.md', S: 'security.md', D: 'data.md', A: 'api.md' };
const ID = /\[([PODSA])-(\d+)\]/g;

interface Place {
  id: string;
  file: string;
  line: number;
}

/** Paragraphs, list items and headings of a Markdown file, with the line each starts on (tables and code skipped). */
export function blocks(text: string): Array<{ text: string; line: number; heading: boolean }> {
  const out: Array<{ text: string; line: number; heading: boolean }> = [];
  let current: { text: string; line: number; heading: boolean } | undefined;
  let fenced = false;
  const close = () => {
    if (current) out.push(current);
    current = undefined;
  };
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trimEnd();
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      close();
      continue;
    }
    if (fenced || /^\s*\|/.test(line) || line.trim() === '') {
      close();
      continue;
    }
    if (/^#{1,6} /.test(line)) {
      close();
      out.push({ text: line.replace(/^#+ /, ''), line: n + 1, heading: true });
      continue;
    }
    const item = /^\s*(?:[-*]|\d+\.)\s+(.*)$/.exec(line);
    if (item) {
      close();
      current = { text: item[1]!, line: n + 1, heading: false };
      continue;
    }
    if (current) current.text += ` ${line.trim()}`;
    else current = { text: line.trim(), line: n + 1, heading: false };
  }
  close();
  return out;
}

/** The ids a block defines: all of a heading's (unless after "see"), the leading and the trailing run of a paragraph. */
export function definedIn(block: { text: string; heading: boolean }): string[] {
  const ids = (s: string) => [...s.matchAll(ID)].map((m) => `${m[1]}-${m[2]}`);
  const text = block.text.replace(/\*\*/g, '').trim();
  if (block.heading) return ids(text.replace(/\bsee\s+(?:\[[A-Z]-\d+\]\s*)+/gi, ''));
  const lead = /^(?:\[[PODSA]-\d+\]\s*)+/.exec(text)?.[0] ?? '';
  const trail = /(?:\[[PODSA]-\d+\]\s*)+[.:]?$/.exec(text);
  const before = trail ? text.slice(0, trail.index) : '';
  const trailing = trail && !/\bsee\s*$/i.test(before) && !/\([^)]*$/.test(before) ? trail[0] : '';
  return [...new Set([...ids(lead), ...ids(trailing)])];
}

function docs(): Array<{ file: string; text: string }> {
  const dir = join(ROOT, 'docs');
  return [
    ...readdirSync(dir).filter((f) => f.endsWith('.md')).map((f) => ({ file: `docs/${f}`, text: readFileSync(join(dir, f), 'utf8') })),
    { file: 'README.md', text: readFileSync(join(ROOT, 'README.md'), 'utf8') },
  ];
}

function sources(dir: string): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  const walk = (path: string) => {
    for (const entry of readdirSync(path)) {
      if (entry === 'node_modules' || entry === '__pycache__' || entry.startsWith('.')) continue;
      const full = join(path, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (/\.(ts|js|py|json|md|conf)$/.test(entry)) out.push({ file: full.slice(ROOT.length), text: readFileSync(full, 'utf8') });
    }
  };
  walk(join(ROOT, dir));
  return out;
}

function definitions(): Place[] {
  const places: Place[] = [];
  for (const { file, text } of docs()) for (const block of blocks(text)) for (const id of definedIn(block)) places.push({ id, file, line: block.line });
  return places;
}

function citations(files: Array<{ file: string; text: string }>): Place[] {
  const places: Place[] = [];
  for (const { file, text } of files) for (const [n, line] of text.split('\n').entries()) for (const m of line.matchAll(ID)) places.push({ id: `${m[1]}-${m[2]}`, file, line: n + 1 });
  return places;
}

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
    const missing = [...new Set(definitions().map((p) => p.id))].filter((id) => /^[PO]-/.test(id) && !cited.has(id)).sort();
    assert.deepEqual(missing, [], `rules no code under src/ or device/ cites: ${missing.join(', ')}`);
  });
});
