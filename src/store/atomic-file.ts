/**
 * Crash-safe file writes for every state file of the hub: the new content goes to a hidden temp file
 * beside the target, is flushed to disk (fsync), renamed over the target, and the directory entry is
 * flushed too. A reader, or the hub after a crash or power cut, sees the old file or the new one,
 * never a prefix of either. See docs/data.md.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Temp files start with this, so directory scans (ours, and HAP-NodeJS's) skip them. */
export const TEMP_PREFIX = '.tmp-';

export interface AtomicWriteOptions {
  /** Permission bits of the new file; state files hold secrets, so owner-only unless said. */
  mode?: number;
}

export function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const temp = join(dirname(file), `${TEMP_PREFIX}${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  // 'wx': never follow or reuse a file someone left at the temp name.
  const fd = openSync(temp, 'wx', options.mode ?? 0o600);
  try {
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  syncDirectory(dirname(file));
}

/** Makes a rename or unlink in `dir` durable (the new directory entry survives a power cut). */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch (error) {
    // Some file systems (and platforms) cannot fsync a directory; the rename itself is still atomic.
    if (!['EINVAL', 'EISDIR', 'EPERM', 'EBADF'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    closeSync(fd);
  }
}

/** Removes a file durably; a missing file is fine. */
export function removeFileDurably(file: string): void {
  rmSync(file, { force: true });
  syncDirectory(dirname(file));
}

/**
 * Removes temp files that a crash left in `dir` (a write interrupted before its rename). Only old
 * ones: a younger one may belong to a write in progress in another process (the CLI).
 */
export function removeStaleTempFiles(dir: string, olderThanMs = 3_600_000): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const path = join(dir, name);
    try {
      if (Date.now() - statSync(path).mtimeMs < olderThanMs) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(name);
    } catch {
      // gone meanwhile, or not ours to remove: leave it
    }
  }
  return removed;
}
