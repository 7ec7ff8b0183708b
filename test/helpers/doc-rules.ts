/**
 * The numbered rules of the docs, read the way docs/protocol.md ("How rules are written") says: a rule
 * is DEFINED where its id is the first or the last word of a paragraph or list item, or stands in a
 * heading; anywhere else an id is a CITATION. Shared by the docs-contract and conformance-rules tests.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const HOME: Record<string, string> = {
  P: 'protocol.md',
  O: 'ota.md',
  S: 'security.md',
  D: 'data.md',
  A: 'api.md',
  H: 'scaling.md',
  L: 'protocol.md',
  E: 'protocol.md',
  M: 'matter.md',
};
export const ID = /\[([PODSAHLEM])-(\d+)\]/g;

export interface Place {
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
  const lead = /^(?:\[[PODSAHLEM]-\d+\]\s*)+/.exec(text)?.[0] ?? '';
  const trail = /(?:\[[PODSAHLEM]-\d+\]\s*)+[.:]?$/.exec(text);
  const before = trail ? text.slice(0, trail.index) : '';
  const trailing = trail && !/\bsee\s*$/i.test(before) && !/\([^)]*$/.test(before) ? trail[0] : '';
  return [...new Set([...ids(lead), ...ids(trailing)])];
}

export function docs(): Array<{ file: string; text: string }> {
  const dir = join(ROOT, 'docs');
  return [
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.md'))
      .map((f) => ({ file: `docs/${f}`, text: readFileSync(join(dir, f), 'utf8') })),
    { file: 'README.md', text: readFileSync(join(ROOT, 'README.md'), 'utf8') },
  ];
}

export function sources(dir: string): Array<{ file: string; text: string }> {
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

export function definitions(): Place[] {
  const places: Place[] = [];
  for (const { file, text } of docs()) for (const block of blocks(text)) for (const id of definedIn(block)) places.push({ id, file, line: block.line });
  return places;
}

export function citations(files: Array<{ file: string; text: string }>): Place[] {
  const places: Place[] = [];
  for (const { file, text } of files)
    for (const [n, line] of text.split('\n').entries()) for (const m of line.matchAll(ID)) places.push({ id: `${m[1]}-${m[2]}`, file, line: n + 1 });
  return places;
}
