/**
 * The backup file format ([D-7]): self-describing and checked before anything is restored.
 *
 *   mqttkit-backup 1\n                 magic and format version
 *   {"format":1,"entries":[…],…}\n     manifest: each entry's name, size and sha256, in order
 *   <entry bytes><entry bytes>…        the entries' contents, back to back
 *
 * Any truncation, flipped byte, unknown entry name or extra byte is found when the file is read.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { z } from 'zod';
import { describeIssues } from '../core/json.js';

export const BACKUP_MAGIC = 'mqttkit-backup';
export const BACKUP_FORMAT = 1;
const MAX_MANIFEST_BYTES = 1 << 20;
const CHUNK = 1 << 20;

/**
 * The only names an archive may hold: paths inside the data dir, never outside it. Matter's are the
 * names matter.js's file driver writes (an encoded key: no `/`, never `.` or `..`, not its lock, pid or
 * temp files); the dashboard's certificate and key only by their own names.
 */
const ENTRY_NAME =
  /^(mqttkit\.db|config\.json|broker-credentials\.json|homekit\/(AccessoryInfo|IdentifierCache|ControllerStorage)\.[0-9A-F]{12}\.json|matter\/pairing\.json|matter\/mqttkit\/(?!matter\.lock$|matter\.pid$)[A-Za-z0-9_~%-][A-Za-z0-9._~%-]{0,199}(?<!\.tmp)|https\/(cert|key)\.pem)$/;
/** Matter files and the certificate are small: a larger one is refused before it is read. */
const MATTER_ENTRY_BYTES = 1 << 20;
const HTTPS_ENTRY_BYTES = 64 << 10;
const MAX_MATTER_ENTRIES = 4096;

/** The largest size an entry of this name may have (the database and HomeKit files: their own checks). */
export function maxEntryBytes(name: string): number {
  if (name.startsWith('matter/')) return MATTER_ENTRY_BYTES;
  if (name.startsWith('https/')) return HTTPS_ENTRY_BYTES;
  return Number.MAX_SAFE_INTEGER;
}

/** Whether `name` may be an entry of a backup. */
export const isEntryName = (name: string): boolean => ENTRY_NAME.test(name);

export interface ManifestEntry {
  name: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: number;
  createdAt: string;
  mqttkit: string;
  entries: ManifestEntry[];
}

/** An entry to write: its content in memory, or a file to stream. */
export type EntrySource = { name: string; data: Buffer } | { name: string; file: string };

export class BackupFormatError extends Error {}

/** Writes the archive to an open file descriptor (the caller makes it owner-only and atomic). */
export function writeArchive(fd: number, sources: EntrySource[], meta: { createdAt: string; mqttkit: string }): Manifest {
  const entries = sources.map((source): ManifestEntry => {
    if (!ENTRY_NAME.test(source.name)) throw new Error(`cannot back up ${source.name}: not a state file`);
    if ('data' in source) return { name: source.name, size: source.data.length, sha256: createHash('sha256').update(source.data).digest('hex') };
    const hash = createHash('sha256');
    const size = eachChunk(source.file, (chunk) => hash.update(chunk));
    return { name: source.name, size, sha256: hash.digest('hex') };
  });
  const manifest: Manifest = { format: BACKUP_FORMAT, createdAt: meta.createdAt, mqttkit: meta.mqttkit, entries };
  writeAll(fd, Buffer.from(`${BACKUP_MAGIC} ${BACKUP_FORMAT}\n${JSON.stringify(manifest)}\n`, 'utf8'));
  sources.forEach((source, i) => {
    if ('data' in source) writeAll(fd, source.data);
    else {
      // The file was hashed above; a change since then would make an archive that fails its own check.
      const hash = createHash('sha256');
      const size = eachChunk(source.file, (chunk) => (hash.update(chunk), writeAll(fd, chunk)));
      if (size !== entries[i]!.size || hash.digest('hex') !== entries[i]!.sha256) throw new Error(`${source.name} changed while it was being backed up`);
    }
  });
  fsyncSync(fd);
  return manifest;
}

/** Reads and checks the magic line and manifest; returns the manifest and where the entries start. */
export function readManifest(file: string): { manifest: Manifest; dataOffset: number } {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(Math.min(fstatSync(fd).size, MAX_MANIFEST_BYTES + 64));
    readSync(fd, head, 0, head.length, 0);
    const firstNewline = head.indexOf(0x0a);
    const magic = firstNewline > 0 ? head.subarray(0, firstNewline).toString('utf8') : '';
    const match = /^mqttkit-backup (\d+)$/.exec(magic);
    if (!match) throw new BackupFormatError(`${file} is not an mqttkit backup (it does not start with "${BACKUP_MAGIC}")`);
    if (Number(match[1]) > BACKUP_FORMAT)
      throw new BackupFormatError(
        `${file} was made by a newer mqttkit (backup format ${match[1]}; this one reads ${BACKUP_FORMAT}): upgrade mqttkit to restore it`,
      );
    if (Number(match[1]) !== BACKUP_FORMAT) throw new BackupFormatError(`${file} has unknown backup format ${match[1]}`);
    const secondNewline = head.indexOf(0x0a, firstNewline + 1);
    if (secondNewline < 0) throw new BackupFormatError(`${file} is damaged: its manifest is cut short or larger than ${MAX_MANIFEST_BYTES} bytes`);
    let manifest: unknown;
    try {
      manifest = JSON.parse(head.subarray(firstNewline + 1, secondNewline).toString('utf8'));
    } catch {
      throw new BackupFormatError(`${file} is damaged: its manifest is not valid JSON`);
    }
    checkManifest(file, manifest);
    const dataOffset = secondNewline + 1;
    const expected = dataOffset + manifest.entries.reduce((sum, e) => sum + e.size, 0);
    const actual = statSync(file).size;
    if (actual !== expected) throw new BackupFormatError(`${file} is damaged: it is ${actual} bytes, its manifest says ${expected} (cut short or appended to)`);
    return { manifest, dataOffset };
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies every entry into `dir` (same relative names, owner-only), checking each one's size and
 * sha256; throws on the first mismatch. Nothing is written outside `dir`.
 */
export function extractArchive(file: string, dir: string): Manifest {
  const { manifest, dataOffset } = readManifest(file);
  const fd = openSync(file, 'r');
  try {
    let offset = dataOffset;
    for (const entry of manifest.entries) {
      // The names were checked against ENTRY_NAME; this is the second lock on the same door.
      const target = resolve(dir, entry.name);
      if (!target.startsWith(resolve(dir) + sep)) throw new BackupFormatError(`${file} is damaged: ${entry.name} points outside the data dir`);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      const out = openSync(target, 'wx', 0o600);
      const hash = createHash('sha256');
      try {
        const buffer = Buffer.alloc(Math.min(CHUNK, Math.max(entry.size, 1)));
        for (let left = entry.size; left > 0; ) {
          const n = readSync(fd, buffer, 0, Math.min(buffer.length, left), offset);
          if (n === 0) throw new BackupFormatError(`${file} is damaged: ${entry.name} is cut short`);
          hash.update(buffer.subarray(0, n));
          writeAll(out, buffer.subarray(0, n));
          offset += n;
          left -= n;
        }
        fsyncSync(out);
      } finally {
        closeSync(out);
      }
      if (hash.digest('hex') !== entry.sha256) throw new BackupFormatError(`${file} is damaged: ${entry.name} does not match its checksum`);
    }
  } finally {
    closeSync(fd);
  }
  return manifest;
}

/** The manifest's shape; the checks below give each problem its own message. */
const manifestShape = z.looseObject({ format: z.unknown(), entries: z.array(z.looseObject({ name: z.unknown(), size: z.unknown(), sha256: z.unknown() })) });

function checkManifest(file: string, value: unknown): asserts value is Manifest {
  const bad = (why: string) => new BackupFormatError(`${file} is damaged: ${why}`);
  const shape = manifestShape.safeParse(value);
  if (!shape.success) throw bad(`its manifest lists no entries (${describeIssues(shape.error)})`);
  const manifest = shape.data;
  if (manifest.format !== BACKUP_FORMAT) throw bad(`its manifest says format ${String(manifest.format)}`);
  const seen = new Set<string>();
  for (const entry of manifest.entries) {
    if (typeof entry?.name !== 'string' || !ENTRY_NAME.test(entry.name))
      throw bad(`it holds an entry that is not a state file (${JSON.stringify(entry?.name)})`);
    if (seen.has(entry.name)) throw bad(`it holds ${entry.name} twice`);
    seen.add(entry.name);
    if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) throw bad(`${entry.name} has no valid size`);
    if (entry.size > maxEntryBytes(entry.name))
      throw bad(`${entry.name} is ${entry.size} bytes, more than the ${maxEntryBytes(entry.name)} such a file may have`);
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) throw bad(`${entry.name} has no valid checksum`);
  }
  if (!seen.has('mqttkit.db')) throw bad('it holds no mqttkit.db');
  const matter = [...seen].filter((name) => name.startsWith('matter/')).length;
  if (matter > MAX_MATTER_ENTRIES) throw bad(`it holds ${matter} Matter files, more than the ${MAX_MATTER_ENTRIES} a hub writes`);
}

function eachChunk(file: string, fn: (chunk: Buffer) => void): number {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(CHUNK);
    let total = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, total);
      if (n === 0) return total;
      fn(buffer.subarray(0, n));
      total += n;
    }
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written);
}
