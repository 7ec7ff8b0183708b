/**
 * The files the API receives for OTA jobs live in `<data dir>/uploads/<uuid>/`, one folder per job.
 * A folder goes when its job ends, and at hub start every folder no unfinished job needs goes. [O-10]
 * Only folders directly under `uploads/` are ever removed: a path a CLI user gave (`mqttkit ota push
 * ./main.py`) lies outside it and is never touched.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

export const UPLOADS_DIR = 'uploads';

export const uploadsRoot = (dataDir: string) => join(resolve(dataDir), UPLOADS_DIR);

/** The local files a job's spec names (push: file, sync: manifest, firmware: image). */
function specFiles(spec: Record<string, unknown>): string[] {
  return ['file', 'manifest', 'image'].map((key) => spec[key]).filter((v): v is string => typeof v === 'string');
}

/** The upload folder `path` lies in, or undefined when it is not inside `<root>/<folder>/`. */
export function uploadFolderOf(root: string, path: string): string | undefined {
  const rel = relative(root, resolve(path));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  const parts = rel.split(sep);
  if (parts.length < 2 || !parts[0] || parts[0] === '..') return undefined;
  return join(root, parts[0]);
}

/** The upload folders a job's files live in (none for a job queued with the CLI's own paths). */
export function jobUploadFolders(root: string, spec: Record<string, unknown>): string[] {
  return [
    ...new Set(
      specFiles(spec)
        .map((f) => uploadFolderOf(root, f))
        .filter((f): f is string => f !== undefined),
    ),
  ];
}

/** Removes the upload folders of an ended job, except those another unfinished job still uses. */
export function removeJobUploads(root: string, spec: Record<string, unknown>, stillNeeded: ReadonlySet<string>): string[] {
  const removed: string[] = [];
  for (const folder of jobUploadFolders(root, spec)) {
    if (stillNeeded.has(folder)) continue;
    rmSync(folder, { recursive: true, force: true });
    removed.push(folder);
  }
  return removed;
}

/** At start: removes every folder under `root` that is not in `keep`. Returns what it removed. */
export function sweepUploads(root: string, keep: ReadonlySet<string>): string[] {
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    return []; // no uploads yet
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const folder = join(root, entry.name);
    // A symlink is removed as a link (rmSync does not follow it), never what it points to.
    if (!entry.isDirectory() && !lstatSync(folder).isSymbolicLink()) continue;
    if (keep.has(folder)) continue;
    rmSync(folder, { recursive: true, force: true });
    removed.push(folder);
  }
  return removed;
}
