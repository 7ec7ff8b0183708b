/** The OTA wire formats of docs/ota.md: pure functions, no I/O. */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import { fail, ok, type Result } from '../core/result.js';

/** The device path that means "the spare firmware partition". */
export const FIRMWARE_TARGET = '$firmware';

export const triggerTopic = (deviceId: string) => `${deviceId}/OTA`;
export const commandTopic = (deviceId: string) => `cmnd/${deviceId}/OTA`;
export const pendingTopic = (deviceId: string) => `cmnd/${deviceId}/OTA/pending`;

export function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** Hash algorithms a trigger may name; `sha1` is what every device checks. [O-16] */
export type HashAlgorithm = 'sha1' | 'sha256';

/**
 * [O-16] The algorithm for a device's transfers: `sha256` when its `getversion` lists it in `hashes`,
 * else SHA-1 (absent or unreadable `hashes` means SHA-1 only).
 */
export function chooseHash(hashes: unknown): HashAlgorithm {
  return Array.isArray(hashes) && hashes.includes('sha256') ? 'sha256' : 'sha1';
}

/** The trigger's (and the report's) hash field: bare SHA-1 hex, or `sha256:<hex>`. [O-1] [O-16] */
export function transferHash(bytes: Buffer, algorithm: HashAlgorithm): string {
  return algorithm === 'sha1' ? sha1(bytes) : `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * [O-13] What a `commit` (or a reboot=1 report's `committed`) made live against what the job sent:
 * undefined when they are the same files, else a sentence naming the difference.
 */
export function commitDifference(sent: readonly string[], committed: unknown): string | undefined {
  if (!Array.isArray(committed) || !committed.every((p) => typeof p === 'string'))
    return 'the device did not say which files it made live (no "committed" list)';
  const extra = committed.filter((p) => !sent.includes(p));
  const missing = sent.filter((p) => !committed.includes(p));
  const parts = [
    ...(extra.length ? [`it also made live ${somePaths(extra)}, which this job did not send (staged by an earlier job)`] : []),
    ...(missing.length ? [`it did not make live ${somePaths(missing)}`] : []),
  ];
  return parts.length ? `the commit does not match the job: ${parts.join('; ')}` : undefined;
}

const quote = (path: string) => `'${path.slice(0, 200)}'`;

/** At most the first 10 paths, quoted, and how many more: a device's list never makes a long message. */
export function somePaths(paths: readonly string[]): string {
  const shown = paths.slice(0, 10).map(quote).join(', ');
  return paths.length > 10 ? `${shown} and ${paths.length - 10} more` : shown;
}

/** A device's error text as it goes into a job's message: one line of at most 300 characters. */
export const deviceError = (text: unknown): string => {
  const line = String(text).replace(/\s+/g, ' ');
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
};

/** `<host>|<port>|<filename>|<hash>|<reboot 0/1>`: OTA protocol 2's trigger. [O-1] */
export function triggerMessage(host: string, port: number, filename: string, hash: string, reboot: boolean): string {
  return `${host}|${port}|${filename}|${hash}|${reboot ? 1 : 0}`;
}

/** `<host>|<port>|<filename>|<sha1>`: seed 002's trigger (OTA protocol 1): verify, rename into place, reboot. [O-11] */
export function seedTriggerMessage(host: string, port: number, filename: string, hash: string): string {
  return `${host}|${port}|${filename}|${hash}`;
}

/** 1: seed 002's firmware (4-field trigger, no commands); 2: the mqttkit device library. [O-11] */
export type OtaProtocol = 1 | 2;

export interface ProtocolFacts {
  /** Set by hand: `mqttkit device set <id> ota-protocol 1|2`. */
  otaProtocolSetting?: OtaProtocol;
  /** What the device's `getversion` said (`"ota": 2`). */
  otaProtocol?: number;
  answersCommands?: boolean;
}

/**
 * [O-11] The protocol to speak with a device, if its facts settle it: the hand setting; else what its
 * `getversion` announced; else 2 for a device that answers commands (the mqttkit library before it
 * announced a version understands 5 fields). Undefined: ask it (`getversion`); no answer means 1.
 */
export function settledProtocol(facts: ProtocolFacts): { protocol: OtaProtocol; why: string } | undefined {
  if (facts.otaProtocolSetting === 1 || facts.otaProtocolSetting === 2) return { protocol: facts.otaProtocolSetting, why: 'set by hand' };
  if (facts.otaProtocol === 1 || facts.otaProtocol === 2) return { protocol: facts.otaProtocol, why: 'announced by the device' };
  if (facts.answersCommands === true) return { protocol: 2, why: 'the device answers commands' };
  return undefined;
}

/** [O-21] A partition label from a device's JSON, if it is one: labels are opaque, compared for equality, never parsed. */
export const partitionLabel = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value.slice(0, 64) : undefined);

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
  /** Firmware: the partition label the image was written to, when the device says. [O-6] */
  partition?: string | null;
  /** reboot=1: the files the device's commit made live before it rebooted. [O-13] */
  committed?: unknown;
  /** `commit` when the transfer was good but the commit after it failed (no reboot). [O-15] */
  step?: string | null;
}

/** The report's fields as the device sends them; partition/step/error are bounded below. [O-3] */
const reportSchema = z.looseObject({
  file: z.string().max(1024).nullish(),
  ok: z.boolean(),
  hash: z.string().max(200).nullish(),
  error: z.unknown().optional(),
  partition: z.unknown().optional(),
  step: z.unknown().optional(),
  committed: z.unknown().optional(),
});

/** The device's JSON line on stat/<id>/OTA after a transfer. [O-3] */
export function parseReport(text: string): Result<TransferReport> {
  const parsed = parseJson(text, reportSchema);
  if (!parsed.ok) return fail(`not a transfer report: ${parsed.error}`);
  const value = parsed.value;
  const partition = typeof value.partition === 'string' && value.partition ? value.partition.slice(0, 64) : null;
  const step = typeof value.step === 'string' && value.step ? value.step.slice(0, 64) : null;
  // bounded here: the error goes into the job's message and the log
  const error = value.error === undefined || value.error === null ? null : deviceError(value.error);
  return ok({
    file: value.file ?? null,
    ok: value.ok,
    hash: value.hash ?? null,
    error,
    partition,
    step,
    ...(value.committed === undefined ? {} : { committed: value.committed }),
  });
}

export interface ManifestEntry {
  /** Absolute path of the local file. */
  local: string;
  /** Path on the device. */
  path: string;
}
