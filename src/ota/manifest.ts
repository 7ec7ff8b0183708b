/**
 * The sync manifest (docs/ota.md): JSON `{"files": {"<path on device>": "<local path>"}}` or text lines
 * `<local path> [<path on device>]`; local paths are relative to the manifest. [O-25]
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import { devicePathProblem, type ManifestEntry } from './protocol.js';

/** [O-25] The JSON form: device path → local file (relative to the manifest). */
const jsonManifest = z.looseObject({ files: z.record(z.string(), z.string().min(1)) });

export function readManifest(file: string): ManifestEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the manifest ${file}: ${(error as Error).message}`);
  }
  const base = dirname(resolve(file));
  const entries: ManifestEntry[] = [];
  if (text.trimStart().startsWith('{')) {
    const parsed = parseJson(text, jsonManifest);
    if (!parsed.ok) throw new Error(`${file}: ${parsed.error}; expected {"files": {"<path on device>": "<local file>"}}`);
    for (const [path, local] of Object.entries(parsed.value.files)) entries.push({ path, local: resolve(base, local) });
  } else {
    for (const [n, raw] of text.split('\n').entries()) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const [local, path, extra] = line.split(/\s+/);
      if (extra) throw new Error(`${file}:${n + 1}: expected '<local file> [<path on device>]'`);
      entries.push({ local: resolve(base, local!), path: path ?? basename(local!) });
    }
  }
  if (entries.length === 0) throw new Error(`${file} lists no files`);
  for (const entry of entries) {
    const problem = devicePathProblem(entry.path);
    if (problem) throw new Error(`${file}: ${problem}`);
    if (!existsSync(entry.local) || !statSync(entry.local).isFile()) throw new Error(`${file}: ${entry.local} does not exist or is not a file`);
  }
  return entries;
}
