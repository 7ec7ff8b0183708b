/**
 * Backup and restore of a data dir's state ([D-7]): the database (SQLite's online backup, consistent
 * while a hub writes to it), each known bridge's HomeKit keys, pairings and ids, and the config and
 * broker login. A restore is checked in full (checksums, SQLite integrity, the same consistency checks
 * as a start) in a staging folder before one file of the data dir is touched.
 */

import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { syncDirectory, TEMP_PREFIX } from './atomic-file.js';
import { type EntrySource, extractArchive, type Manifest, writeArchive } from './backup-archive.js';
import { checkFolders, FOLDERS, FolderError, HTTPS_DIR, MATTER_QUIET_MS, readHttpsPair, readMatterFiles, tightenRestored } from './backup-folders.js';
import { BROKER_CREDENTIALS_FILE } from './broker-credentials.js';
import { DATABASE_FILE, SCHEMA_VERSION } from './database.js';
import { runningHubPid } from './runtime-file.js';
import { checkState, describeProblems, HOMEKIT_DIR, HOMEKIT_FILE, homeKitFileProblem } from './state-check.js';
import { bridgeFileId } from './state-store.js';

/** config.json's name; the CLI owns its meaning, the backup only carries it. */
const CONFIG_FILE = 'config.json';
const SIDE_FILES = [CONFIG_FILE, BROKER_CREDENTIALS_FILE] as const;

export class BackupError extends Error {}

export interface BackupSummary {
  file: string;
  bytes: number;
  bridges: number;
  devices: number;
  accounts: number;
  pincode: string | undefined;
  entries: string[];
  /** Matter files carried (0: the hub never ran with --matter); copied once unchanged for `matterQuietMs`. */
  matterFiles: number;
  matterQuietMs: number;
  /** The dashboard's `--http-tls auto` certificate and key carried. */
  https: boolean;
}

/** Writes a backup of `dataDir` to `file` (owner-only, atomically). Works while a hub runs there. */
export async function takeBackup(dataDir: string, file: string, options: { force: boolean; version: string }): Promise<BackupSummary> {
  if (!existsSync(join(dataDir, DATABASE_FILE))) throw new BackupError(`no mqttkit data in ${dataDir}: nothing to back up (pass --data-dir)`);
  if (existsSync(file) && !options.force) throw new BackupError(`${file} exists already: choose another name, or pass --force to replace it`);
  const problems = checkState(dataDir, { deep: false });
  if (problems.length > 0) throw new BackupError(describeProblems(dataDir, problems, 'back it up'));

  const stage = mkdtempSync(join(dirname(file), `${TEMP_PREFIX}backup-`));
  const temp = join(dirname(file), `${TEMP_PREFIX}${basename(file)}.${randomBytes(4).toString('hex')}`);
  try {
    // 1. The database, as one consistent snapshot (SQLite's online backup; the hub keeps writing meanwhile).
    const copy = join(stage, DATABASE_FILE);
    closeSync(openSync(copy, 'wx', 0o600));
    const source = new Database(join(dataDir, DATABASE_FILE), { readonly: true, fileMustExist: true, timeout: 5000 });
    try {
      // All remaining pages in one step: a WAL reader sees one snapshot and never blocks the hub.
      await source.backup(copy, { progress: () => 0x7fffffff });
    } finally {
      source.close();
    }
    const facts = databaseFacts(copy, 'the copy of the database');

    // 2. The HomeKit files of the bridges in that snapshot, read after it: a bridge's row is committed
    // before HAP-NodeJS writes its files, and its "published" mark after, so the pair is consistent.
    const sources: EntrySource[] = [{ name: DATABASE_FILE, file: copy }];
    for (const id of facts.bridgeIds) {
      for (const kind of ['AccessoryInfo', 'IdentifierCache', 'ControllerStorage']) {
        const name = `${HOMEKIT_DIR}/${kind}.${id}.json`;
        const data = readIfExists(join(dataDir, name));
        if (!data) continue;
        const problem = homeKitFileProblem(`${kind}.${id}.json`, data.toString('utf8'));
        if (problem) throw new BackupError(`${join(dataDir, name)} ${problem}: not backing up damaged HomeKit keys`);
        sources.push({ name, data });
      }
    }
    for (const name of SIDE_FILES) {
      const data = readIfExists(join(dataDir, name));
      if (data) sources.push({ name, data });
    }
    // 3. Matter's storage as one consistent set, and the dashboard's certificate with its key.
    let matter: EntrySource[];
    let https: EntrySource[];
    try {
      matter = await readMatterFiles(dataDir);
      https = await readHttpsPair(dataDir);
    } catch (error) {
      if (error instanceof FolderError) throw new BackupError(error.message);
      throw error;
    }
    sources.push(...matter, ...https);

    const fd = openSync(temp, 'wx', 0o600);
    let manifest: Manifest;
    try {
      manifest = writeArchive(fd, sources, { createdAt: new Date().toISOString(), mqttkit: options.version });
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
    syncDirectory(dirname(file));
    return {
      file,
      bytes: statSync(file).size,
      bridges: facts.bridgeIds.length,
      devices: facts.devices,
      accounts: facts.accounts,
      pincode: facts.pincode,
      entries: manifest.entries.map((e) => e.name),
      matterFiles: matter.length,
      matterQuietMs: MATTER_QUIET_MS,
      https: https.length > 0,
    };
  } finally {
    rmSync(temp, { force: true });
    rmSync(stage, { recursive: true, force: true });
  }
}

export interface RestoreSummary extends Omit<BackupSummary, 'file' | 'bytes' | 'matterQuietMs'> {
  createdAt: string;
  movedAside: string[];
  keptConfig: boolean;
}

/** The state files a restore would replace (relative to the data dir). */
export function existingState(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  const found = [DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`, BROKER_CREDENTIALS_FILE].filter((name) => existsSync(join(dataDir, name)));
  const homekit = join(dataDir, HOMEKIT_DIR);
  if (existsSync(homekit))
    found.push(
      ...readdirSync(homekit)
        .filter((name) => HOMEKIT_FILE.test(name))
        .map((name) => `${HOMEKIT_DIR}/${name}`),
    );
  // Matter's and the certificate's folders are moved aside whole (a mix of two hubs' files is no state).
  for (const folder of FOLDERS) if (existsSync(join(dataDir, folder))) found.push(folder);
  return found;
}

/**
 * Restores `file` into `dataDir`. Refuses an existing state unless `force` (which moves it aside to
 * `<name>.before-restore-<time>`); the caller refuses while a hub runs there. Each file is renamed into
 * place whole, the database last, so an interrupted restore is refused at the next start, not half-used.
 */
export function restoreBackup(file: string, dataDir: string, options: { force: boolean }): RestoreSummary {
  if (!existsSync(file)) throw new BackupError(`${file} does not exist`);
  const running = runningHubPid(dataDir);
  if (running) throw new BackupError(`a hub is running on ${dataDir} (pid ${running}): stop it before restoring into its data dir`);
  const existing = existingState(dataDir);
  if (existing.length > 0 && !options.force) {
    throw new BackupError(
      `${dataDir} holds a hub's state already (${existing.join(', ')}): restore into a new --data-dir, or pass --force to move that state aside and restore over it`,
    );
  }
  const created = !existsSync(dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const stage = mkdtempSync(join(dataDir, `${TEMP_PREFIX}restore-`));
  try {
    // 1. Everything is checked in the staging folder first: checksums, SQLite, consistency.
    mkdirSync(join(stage, HOMEKIT_DIR), { mode: 0o700 });
    let manifest: Manifest;
    try {
      manifest = extractArchive(file, stage);
    } catch (error) {
      throw new BackupError((error as Error).message);
    }
    const facts = databaseFacts(join(stage, DATABASE_FILE), `the database in ${file}`, true);
    const names = manifest.entries.map((e) => e.name);
    const problems = [...checkState(stage), ...checkFolders(stage, names)];
    if (problems.length > 0)
      throw new BackupError(`${file} does not hold a consistent state:\n${problems.map((p) => `  - ${p.file} ${p.problem}`).join('\n')}`);

    // 2. Make room: the old state is moved aside, never deleted.
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const keptConfig = names.includes(CONFIG_FILE) && existsSync(join(dataDir, CONFIG_FILE)) && !options.force;
    const movedAside: string[] = [];
    const replaced = options.force ? [...existing, ...(names.includes(CONFIG_FILE) && existsSync(join(dataDir, CONFIG_FILE)) ? [CONFIG_FILE] : [])] : [];
    for (const name of replaced) {
      const aside = `${name}.before-restore-${stamp}`;
      renameSync(join(dataDir, name), join(dataDir, aside));
      movedAside.push(`${name} → ${aside}`);
    }

    // 3. Into place, one whole file at a time; the database last.
    mkdirSync(join(dataDir, HOMEKIT_DIR), { recursive: true, mode: 0o700 });
    const inFolder = (name: string) => FOLDERS.some((folder) => name.startsWith(`${folder}/`));
    // Matter's and the certificate's folders go into place whole, owner-only (the key 0600).
    const folders = FOLDERS.filter((folder) => names.some((name) => name.startsWith(`${folder}/`)));
    for (const folder of folders) {
      tightenRestored(join(stage, folder));
      renameSync(join(stage, folder), join(dataDir, folder));
    }
    const order = [...names.filter((n) => n !== DATABASE_FILE && !inFolder(n) && !(keptConfig && n === CONFIG_FILE)), DATABASE_FILE];
    for (const name of order) renameSync(join(stage, name), join(dataDir, name));
    syncDirectory(join(dataDir, HOMEKIT_DIR));
    syncDirectory(dataDir);
    return {
      createdAt: new Date(manifestDate(manifest)).toISOString(),
      bridges: facts.bridgeIds.length,
      devices: facts.devices,
      accounts: facts.accounts,
      pincode: facts.pincode,
      entries: [...names.filter(inFolder), ...order],
      matterFiles: names.filter((name) => name.startsWith('matter/')).length,
      https: folders.includes(HTTPS_DIR),
      movedAside,
      keptConfig,
    };
  } catch (error) {
    if (created) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

interface DatabaseFacts {
  bridgeIds: string[];
  devices: number;
  accounts: number;
  pincode: string | undefined;
}

/** Opens a database copy read-only, checks it (fully when `integrity`) and counts what it holds. */
function databaseFacts(path: string, what: string, integrity = true): DatabaseFacts {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const check = db.pragma(integrity ? 'integrity_check' : 'quick_check', { simple: true });
    if (check !== 'ok') throw new BackupError(`${what} fails SQLite's integrity check (${String(check)})`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION)
      throw new BackupError(`${what} is from a newer mqttkit (schema ${version}, this one knows ${SCHEMA_VERSION}): upgrade mqttkit first`);
    const count = (table: string) => db!.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).get()?.n ?? 0;
    return {
      bridgeIds: db
        .prepare<[], { username: string }>('SELECT username FROM bridges ORDER BY idx')
        .all()
        .map((b) => bridgeFileId(b.username)),
      devices: count('devices'),
      accounts: count('accounts'),
      // The hub's PINCODE_SETTING (hub/ is not imported from store/).
      pincode: db.prepare<[], { value: string }>("SELECT value FROM settings WHERE key = 'homekit.pincode'").get()?.value,
    };
  } catch (error) {
    if (error instanceof BackupError) throw error;
    throw new BackupError(`${what} cannot be read (${(error as Error).message})`);
  } finally {
    db?.close();
  }
}

function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function manifestDate(manifest: Manifest): number {
  const t = Date.parse(manifest.createdAt);
  return Number.isFinite(t) ? t : 0;
}
