/**
 * The Matter setup passcode and discriminator: random per data dir at first start ([M-6]), never one of
 * the passcodes the Matter specification forbids (5.1.7.1: 00000000, 11111111 … 99999999, 12345678,
 * 87654321), never logged (only the pairing code derived from them is shown, in the banner).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { fail, ok, type Result } from '../core/result.js';

export interface MatterPairing {
  /** 1–99999998, not a forbidden one. */
  passcode: number;
  /** The 12-bit long discriminator, 0–4095. */
  discriminator: number;
  /**
   * The bridge's UniqueID (32 hex digits, random): kept here, beside the passcode, so it travels with
   * the data dir and its backups; an ecosystem that keys the bridge on it sees one device after a move.
   * Files written before it existed get one at the next start.
   */
  uniqueId?: string;
}

const UNIQUE_ID = /^[0-9a-f]{32}$/;

export function newUniqueId(): string {
  return randomBytes(16).toString('hex');
}

const FORBIDDEN = new Set([...Array.from({ length: 10 }, (_, d) => Number(String(d).repeat(8))), 12345678, 87654321]);

export function checkPairing(value: unknown): Result<MatterPairing> {
  if (typeof value !== 'object' || value === null) return fail('not an object with passcode and discriminator');
  const { passcode, discriminator } = value as Record<string, unknown>;
  if (typeof passcode !== 'number' || !Number.isInteger(passcode) || passcode < 1 || passcode > 99999998 || FORBIDDEN.has(passcode)) {
    return fail(`passcode ${String(passcode)} is not a valid Matter passcode (1–99999998, not a trivial one)`);
  }
  if (typeof discriminator !== 'number' || !Number.isInteger(discriminator) || discriminator < 0 || discriminator > 4095) {
    return fail(`discriminator ${String(discriminator)} is not 0–4095`);
  }
  const { uniqueId } = value as Record<string, unknown>;
  if (uniqueId !== undefined && (typeof uniqueId !== 'string' || !UNIQUE_ID.test(uniqueId))) return fail('uniqueId is not 32 hex digits');
  return ok(uniqueId === undefined ? { passcode, discriminator } : { passcode, discriminator, uniqueId });
}

export function generatePairing(random: (max: number) => number = randomInt): MatterPairing {
  for (;;) {
    const candidate = { passcode: 1 + random(99999998), discriminator: random(4096) };
    if (checkPairing(candidate).ok) return candidate;
  }
}
