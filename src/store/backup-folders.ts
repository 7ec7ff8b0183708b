/**
 * The two folders a backup carries beside the database and HomeKit's files ([D-7]): `<data>/matter/`
 * (matter.js's storage of the bridge's fabrics and keys, and the pairing passcode: without them every
 * Matter controller must add the hub again) and `<data>/https/` (the `--http-tls auto` certificate and
 * key: without them browsers warn again and the CLI's pin changes).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkPairing } from '../matter/pairing.js';
import { isMatterStateFile, isWriteInFlight, MATTER_DIR, NODE_DIR, PAIRING_FILE } from '../matter/state-files.js';
import { maxEntryBytes } from './backup-archive.js';

/** src/web/tls.ts's AUTO_TLS_DIR, AUTO_CERT, AUTO_KEY (store/ does not import web/). */
export const HTTPS_DIR = 'https';
export const HTTPS_FILES = [`${HTTPS_DIR}/cert.pem`, `${HTTPS_DIR}/key.pem`] as const;
export const FOLDERS = [MATTER_DIR, HTTPS_DIR] as const;

/**
 * How long the Matter files must stay unchanged to be copied. matter.js writes each value to
 * `<name>.tmp` and renames it (a file is always whole), but the values of one change (a commissioning:
 * fabric, certificates, ACL) are separate files written together within milliseconds: two equal reads
 * this far apart, with no write in flight, are one state, not half old and half new.
 */
export const MATTER_QUIET_MS = 250;
const MATTER_ATTEMPTS = 20;

export class FolderError extends Error {}

export interface Entry {
  name: string;
  data: Buffer;
}

/** Matter's files as one consistent set (see MATTER_QUIET_MS); [] without `<data>/matter`. */
export async function readMatterFiles(dataDir: string): Promise<Entry[]> {
  if (!existsSync(join(dataDir, MATTER_DIR))) return [];
  for (let attempt = 0; attempt < MATTER_ATTEMPTS; attempt++) {
    const first = readMatterOnce(dataDir);
    await sleep(MATTER_QUIET_MS);
    const second = readMatterOnce(dataDir);
    if (first && second && sameEntries(first, second)) return second;
  }
  throw new FolderError(
    `the Matter files in ${join(dataDir, MATTER_DIR)} kept changing for ${(MATTER_ATTEMPTS * MATTER_QUIET_MS) / 1000} s (a controller adding or removing the bridge?): try again in a moment, or stop the hub and back up then`,
  );
}

/** One pass over the files; undefined when a write is in flight (or a file went away meanwhile). */
function readMatterOnce(dataDir: string): Entry[] | undefined {
  const entries: Entry[] = [];
  const pairing = readBounded(dataDir, `${MATTER_DIR}/${PAIRING_FILE}`);
  if (pairing) {
    const problem = matterFileProblem(`${MATTER_DIR}/${PAIRING_FILE}`, pairing);
    if (problem) throw new FolderError(`${join(dataDir, MATTER_DIR, PAIRING_FILE)} ${problem}: not backing up a damaged Matter file`);
    entries.push({ name: `${MATTER_DIR}/${PAIRING_FILE}`, data: pairing });
  }
  const node = join(dataDir, MATTER_DIR, NODE_DIR);
  if (!existsSync(node)) return entries;
  for (const file of readdirSync(node).sort()) {
    if (isWriteInFlight(file)) return undefined;
    if (!isMatterStateFile(file)) {
      if (/^matter\.(lock|pid)$/.test(file)) continue;
      throw new FolderError(`${join(node, file)} is not a file matter.js writes: move it out of ${node}, then back up again`);
    }
    const name = `${MATTER_DIR}/${NODE_DIR}/${file}`;
    if (!statSync(join(node, file), { throwIfNoEntry: false })?.isFile())
      throw new FolderError(`${join(node, file)} is not a file: move it out of ${node}, then back up again`);
    const data = readBounded(dataDir, name);
    if (!data) return undefined; // removed between the listing and the read: a write in flight
    const problem = matterFileProblem(name, data);
    if (problem) throw new FolderError(`${join(node, file)} ${problem}: not backing up a damaged Matter file (the hub refuses it too)`);
    entries.push({ name, data });
  }
  return entries;
}

function sameEntries(a: Entry[], b: Entry[]): boolean {
  return a.length === b.length && a.every((entry, i) => entry.name === b[i]!.name && entry.data.equals(b[i]!.data));
}

/** The https pair, both or neither, checked to belong together. */
export async function readHttpsPair(dataDir: string): Promise<Entry[]> {
  for (let attempt = 0; ; attempt++) {
    const [cert, key] = HTTPS_FILES.map((name) => readBounded(dataDir, name));
    if (!cert && !key) return [];
    const problem = httpsPairProblem(cert, key);
    if (!problem)
      return [
        { name: HTTPS_FILES[0], data: cert! },
        { name: HTTPS_FILES[1], data: key! },
      ];
    // The hub renews an expired certificate by writing the key, then the certificate: look again once.
    if (attempt > 0) throw new FolderError(`${join(dataDir, HTTPS_DIR)}: ${problem}; not backing up a certificate the hub would refuse`);
    await sleep(MATTER_QUIET_MS);
  }
}

/** What is wrong with a Matter file's content (undefined: nothing). */
export function matterFileProblem(name: string, data: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch (error) {
    return `is damaged (not JSON: ${(error as Error).message})`;
  }
  if (name === `${MATTER_DIR}/${PAIRING_FILE}`) {
    const checked = checkPairing(parsed);
    if (!checked.ok) return `is damaged (${checked.error})`;
  }
  return undefined;
}

/** What is wrong with a certificate and key as the dashboard's pair (undefined: nothing). */
export function httpsPairProblem(cert: Buffer | undefined, key: Buffer | undefined): string | undefined {
  if (!cert || !key)
    return `${cert ? HTTPS_FILES[1] : HTTPS_FILES[0]} is missing while ${cert ? HTTPS_FILES[0] : HTTPS_FILES[1]} is there (they go only as a pair)`;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    return `${HTTPS_FILES[0]} is damaged (not a PEM certificate: ${(error as Error).message})`;
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) return `${HTTPS_FILES[1]} does not belong to ${HTTPS_FILES[0]}`;
  } catch (error) {
    return `${HTTPS_FILES[1]} is damaged (not a PEM private key: ${(error as Error).message})`;
  }
  return undefined;
}

/** Problems of the folders' entries extracted into `stage` (relative names, each with its problem). */
export function checkFolders(stage: string, names: string[]): Array<{ file: string; problem: string }> {
  const problems: Array<{ file: string; problem: string }> = [];
  const matter = names.filter((name) => name.startsWith(`${MATTER_DIR}/`));
  for (const name of matter) {
    const problem = matterFileProblem(name, readFileSync(join(stage, name)));
    if (problem) problems.push({ file: name, problem });
  }
  const pairing = `${MATTER_DIR}/${PAIRING_FILE}`;
  // Without its passcode a restored bridge would make a new one: controllers keep working, but the code on the box changes.
  if (matter.length > 0 && !matter.includes(pairing)) problems.push({ file: pairing, problem: 'is missing while the Matter storage is there' });
  const https = HTTPS_FILES.map((name) => (names.includes(name) ? readFileSync(join(stage, name)) : undefined));
  if (https.some(Boolean)) {
    const problem = httpsPairProblem(https[0], https[1]);
    if (problem) problems.push({ file: HTTPS_DIR, problem });
  }
  return problems;
}

/** A restored folder: 0700 folders, 0600 files, the certificate (public) 0644 as the hub makes it. */
export function tightenRestored(path: string): void {
  const stat = statSync(path);
  if (stat.isDirectory()) {
    chmodSync(path, 0o700);
    for (const name of readdirSync(path)) tightenRestored(join(path, name));
  } else chmodSync(path, path.endsWith(`${HTTPS_DIR}/cert.pem`) ? 0o644 : 0o600);
}

function readBounded(dataDir: string, name: string): Buffer | undefined {
  const path = join(dataDir, name);
  const tooLarge = (bytes: number) =>
    new FolderError(`${path} is ${bytes} bytes, more than the ${maxEntryBytes(name)} such a file may have: not backing it up`);
  try {
    const size = statSync(path).size;
    if (size > maxEntryBytes(name)) throw tooLarge(size); // bounded before it is read
    const data = readFileSync(path);
    if (data.length > maxEntryBytes(name)) throw tooLarge(data.length);
    return data;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
