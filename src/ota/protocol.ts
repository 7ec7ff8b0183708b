/** The OTA wire formats of docs/ota.md: pure functions, no I/O. */
import { createHash } from 'node:crypto';
import { fail, ok, type Result } from '../core/result.js';

/** The device path that means "the spare firmware partition". */
export const FIRMWARE_TARGET = '$firmware';

export const triggerTopic = (deviceId: string) => `${deviceId}/OTA`;
export const commandTopic = (deviceId: string) => `cmnd/${deviceId}/OTA`;
export const pendingTopic = (deviceId: string) => `cmnd/${deviceId}/OTA/pending`;

export function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** `<host>|<port>|<filename>|<hash>[|<reboot 0/1>]` (seed 002's format). [O-1] */
export function triggerMessage(host: string, port: number, filename: string, hash: string, reboot: boolean): string {
  return `${host}|${port}|${filename}|${hash}|${reboot ? 1 : 0}`;
}

/** A device path: relative, no `..`, no empty levels. [O-2] */
export function devicePathProblem(path: string): string | undefined {
  if (path === FIRMWARE_TARGET) return undefined;
  if (!path || path.startsWith('/') || path.split('/').some((p) => p === '' || p === '..' || p === '.') || path.includes('|')) {
    return `'${path}' is not a device path: use a relative path such as main.py or lib/sensor.py`;
  }
  return undefined;
}

export interface TransferReport {
  file: string | null;
  ok: boolean;
  hash: string | null;
  error: string | null;
}

/** The device's JSON line on stat/<id>/OTA after a transfer. [O-3] */
export function parseReport(text: string): Result<TransferReport> {
  try {
    const value = JSON.parse(text) as Partial<TransferReport>;
    if (typeof value !== 'object' || value === null || typeof value.ok !== 'boolean') return fail('not a transfer report');
    return ok({ file: value.file ?? null, ok: value.ok, hash: value.hash ?? null, error: value.error ?? null });
  } catch {
    return fail('not JSON');
  }
}

export interface ManifestEntry {
  /** Absolute path of the local file. */
  local: string;
  /** Path on the device. */
  path: string;
}
