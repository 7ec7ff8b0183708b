/**
 * Reads and rewrites mqttkit backup files (docs/data.md [D-7]) the way a forger would: entries renamed,
 * dropped or changed, with sizes and checksums made right again, so a restore sees a well-formed file
 * and has to judge its content.
 */
import { createHash } from 'node:crypto';

export interface BackupEntry {
  name: string;
  data: Buffer;
}

/** The archive's magic line, its manifest (without entries) and its entries. */
export function readBackup(archive: Buffer): { magic: Buffer; manifest: Record<string, unknown>; entries: BackupEntry[] } {
  const first = archive.indexOf(0x0a);
  const second = archive.indexOf(0x0a, first + 1);
  const manifest = JSON.parse(archive.subarray(first + 1, second).toString('utf8')) as { entries: Array<{ name: string; size: number }> };
  let offset = second + 1;
  const entries = manifest.entries.map((entry) => {
    const data = archive.subarray(offset, offset + entry.size);
    offset += entry.size;
    return { name: entry.name, data };
  });
  return { magic: archive.subarray(0, first + 1), manifest, entries };
}

/** The archive with `change` applied to its entries; sizes and sha256 recomputed (unless `size` forges one). */
export function rewriteBackup(archive: Buffer, change: (entries: BackupEntry[]) => Array<BackupEntry & { size?: number }>): Buffer {
  const { magic, manifest, entries } = readBackup(archive);
  const changed = change(entries);
  const listed = changed.map((e) => ({ name: e.name, size: e.size ?? e.data.length, sha256: createHash('sha256').update(e.data).digest('hex') }));
  return Buffer.concat([magic, Buffer.from(`${JSON.stringify({ ...manifest, entries: listed })}\n`), ...changed.map((e) => e.data)]);
}
