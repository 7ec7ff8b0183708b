/**
 * The Matter bridge's files in the data dir ([M-7]): `<data>/matter/` (0700) holds matter.js's storage
 * (`mqttkit/`: the fabrics, keys and counters controllers rely on) and `pairing.json` (the passcode and
 * discriminator, 0600). A damaged file is refused by name, never silently replaced: replacing them
 * would unpair every controller. matter.js itself would read a damaged value as missing.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic-file.js';
import { checkPairing, generatePairing, type MatterPairing, newUniqueId } from './pairing.js';

export const MATTER_DIR = 'matter';
/** matter.js's storage of the bridge's node (its `ServerNode` id). */
export const NODE_DIR = 'mqttkit';
export const PAIRING_FILE = 'pairing.json';
/** matter.js's own lock and pid files, and its in-flight temp files: not state. */
const NOT_STATE = /^(matter\.lock|matter\.pid)$|\.tmp$/;
/** The names matter.js's file driver gives stored values: a key, `encodeURIComponent`ed, plus `driver.json`. */
const STORE_FILE = /^[A-Za-z0-9_~%-][A-Za-z0-9._~%-]{0,199}$/;

/** matter.js's `*.tmp` files: a write in flight (it writes a value to `<name>.tmp`, then renames it). */
export const isWriteInFlight = (name: string): boolean => name.endsWith('.tmp');
/** A file of `<data>/matter/mqttkit/` that is matter.js's state (not its lock, pid or temp files). */
export const isMatterStateFile = (name: string): boolean => STORE_FILE.test(name) && !NOT_STATE.test(name);

export class MatterStateError extends Error {}

const damaged = (file: string, problem: string) =>
  new MatterStateError(
    `${file} is damaged (${problem}): the Matter bridge is refused rather than started with it (controllers would lose the bridge). ` +
      'Restore it from a backup, or move the matter folder aside to start Matter afresh (every controller must then add the hub again).',
  );

/** Creates `<data>/matter` owner-only and makes every file in it owner-only; returns its path. */
export function prepareMatterDir(dataDir: string): string {
  const dir = join(dataDir, MATTER_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  tighten(dir);
  return dir;
}

/** matter.js creates its files with the process umask: owner-only here, whatever it was. */
export function tighten(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    chmodSync(path, stat.isDirectory() ? 0o700 : 0o600);
    if (stat.isDirectory()) tighten(path);
  }
}

/** Every stored value of matter.js's node storage must be JSON; the first that is not is named. */
export function checkMatterStorage(dir: string): void {
  const node = join(dir, NODE_DIR);
  if (!existsSync(node)) return;
  for (const name of readdirSync(node)) {
    if (NOT_STATE.test(name)) continue;
    const path = join(node, name);
    if (!statSync(path).isFile()) continue;
    try {
      JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw damaged(path, `not JSON: ${(error as Error).message}`);
    }
  }
}

/** The pairing of this data dir: read, or generated and written (0600) at first start. */
export function loadPairing(dir: string, generate: () => MatterPairing = generatePairing): MatterPairing {
  const path = join(dir, PAIRING_FILE);
  if (!existsSync(path)) {
    const pairing = { ...generate(), uniqueId: newUniqueId() };
    writeFileAtomic(path, `${JSON.stringify(pairing)}\n`, { mode: 0o600 });
    return pairing;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw damaged(path, `not JSON: ${(error as Error).message}`);
  }
  const checked = checkPairing(parsed);
  if (!checked.ok) throw damaged(path, checked.error);
  if (checked.value.uniqueId) return checked.value;
  // Written before the bridge kept its UniqueID here (it was derived from the folder's path, so it
  // changed when a hub moved): one is chosen now and kept.
  const pairing = { ...checked.value, uniqueId: newUniqueId() };
  writeFileAtomic(path, `${JSON.stringify(pairing)}\n`, { mode: 0o600 });
  return pairing;
}
