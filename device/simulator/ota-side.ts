/**
 * The OTA side of a simulated device (docs/ota.md), as the MicroPython library does it: pull transfers
 * over TCP with a hash check, staging (`<file>.new`), all-or-nothing `commit`, `discard`, `hashes`,
 * firmware into the spare of two partitions (partitions.ts), `partitions`, `keepversion`, and request
 * ids echoed [O-12]. Files live in memory; the caller owns MQTT and reboots.
 */
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { Partitions } from './partitions.js';

/** Reads a pull transfer to its end [O-1]: the server closes the connection when it has sent the file. */
export function download(host: string, port: number, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('no data for 20 s')));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

export const sha1 = (bytes: Buffer) => createHash('sha1').update(bytes).digest('hex');
export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** `#<n> <command>` → n and the command [O-12]; a command without a request id has none. */
export function splitRid(text: string): { rid: string | undefined; command: string } {
  const match = /^#(\d{1,9}) (.*)$/s.exec(text.trim());
  return match ? { rid: match[1], command: match[2]!.trim() } : { rid: undefined, command: text.trim() };
}

export interface TransferReport {
  file: string | null;
  ok: boolean;
  hash: string | null;
  error: string | null;
  /** [O-6] A firmware report: the partition written. */
  partition?: string;
  /** [O-13] After a good `reboot` = 1 transfer: the files the commit made live. */
  committed?: string[];
}

export interface TransferOutcome {
  report: TransferReport;
  /** The 5-field `|1` (or seed 002's 4 fields) after a good transfer: the device resets now. */
  reboot: boolean;
}

/** What the device says in `getversion` about its OTA side. */
export const OTA_FACTS = { ota: 2, rid: 1, hashes: ['sha1', 'sha256'] } as const;

export class OtaSide {
  /** Live files, path → bytes. */
  readonly files = new Map<string, Buffer>();
  /** Staged files (`<path>.new` on a board). */
  readonly staged = new Map<string, Buffer>();
  /** The two firmware slots and the bootloader [O-6]. */
  readonly partitions = new Partitions();

  /** A trigger on <id>/OTA: `host|port|file|hash[|reboot]`. */
  async transfer(text: string): Promise<TransferOutcome> {
    const fields = text.split('|');
    if (fields.length !== 4 && fields.length !== 5)
      return { report: { file: null, ok: false, hash: null, error: `a trigger has 4 or 5 fields, not ${fields.length}` }, reboot: false };
    const [host, port, file, expected, reboot] = fields as [string, string, string, string, string | undefined];
    const firmware = file === '$firmware';
    // [O-2] relative, `/`-separated, no empty, `.` or `..` part (the `|` cannot arrive: it splits fields)
    if (!firmware && file.split('/').some((part) => part === '' || part === '.' || part === '..'))
      return { report: { file, ok: false, hash: null, error: `unsafe file name ${file}` }, reboot: false };
    const sha = expected.startsWith('sha256:');
    let bytes: Buffer;
    try {
      bytes = await download(host, Number(port));
    } catch (error) {
      return { report: { file, ok: false, hash: null, error: `transfer broke: ${(error as Error).message}` }, reboot: false };
    }
    const actual = sha ? `sha256:${sha256(bytes)}` : sha1(bytes);
    if (actual !== expected)
      return { report: { file, ok: false, hash: actual, error: `hash mismatch: expected ${expected}, got ${actual} (${bytes.length} bytes)` }, reboot: false };
    const report: TransferReport = { file, ok: true, hash: actual, error: null };
    // [O-6] firmware goes to the spare partition, marked for the next boot; it is never a staged file
    if (firmware) report.partition = this.partitions.write(bytes);
    else this.staged.set(file, bytes);
    // [O-1] 4 fields: this file goes live and the device reboots; `|1`: every staged file; `|0`: stage only
    if (reboot === undefined && !firmware) this.commit([file]);
    else if (reboot === '1') report.committed = this.commit().committed;
    return { report, reboot: reboot !== '0' };
  }

  /** [O-5] Every staged file (or those named) goes live together; answers what went live [O-13]. */
  commit(names: string[] = [...this.staged.keys()]): { committed: string[] } {
    const committed = names.filter((name) => this.staged.has(name));
    for (const name of committed) {
      this.files.set(name, this.staged.get(name)!);
      this.staged.delete(name);
    }
    return { committed };
  }

  /** [O-13] Drops every staged file; answers their names as they would be on disk (`main.py.new`). */
  discard(): { discarded: string[] } {
    const discarded = [...this.staged.keys()].map((name) => `${name}.new`);
    this.staged.clear();
    return { discarded };
  }

  hashes(): Record<string, string> {
    return Object.fromEntries([...this.files].map(([path, bytes]) => [path, sha1(bytes)]));
  }

  /**
   * The OTA commands (ota.md §3); undefined for any other. `reboot` is the caller's: it answers
   * `rebooting` and resets.
   */
  command(name: string): unknown {
    switch (name) {
      case 'commit':
        return this.commit();
      case 'discard':
        return this.discard();
      case 'hashes':
        return this.hashes();
      case 'partitions':
        return { count: 2, running: this.partitions.running }; // [O-21]
      case 'keepversion':
        return this.partitions.keep(); // [O-6] [O-20]
      default:
        return undefined;
    }
  }
}
