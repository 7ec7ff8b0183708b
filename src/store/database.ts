/** The hub's SQLite file: owner-only (it holds pairing-related state), WAL, migrated. See docs/data.md. */

import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, linkSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { syncDirectory, TEMP_PREFIX } from './atomic-file.js';

export type Db = Database.Database;

/** Each entry moves the schema one version up; never edit one that has shipped. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE devices (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE bridges (idx INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
   CREATE TABLE bridge_members (device_id TEXT PRIMARY KEY, bridge INTEGER NOT NULL REFERENCES bridges(idx));`,
  `CREATE TABLE accounts (
     name TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('device', 'admin')),
     status TEXT NOT NULL CHECK (status IN ('active', 'pending')),
     secret TEXT,
     created_at INTEGER NOT NULL,
     last_login_at INTEGER,
     last_address TEXT
   );
   CREATE TABLE hub_requests (id INTEGER PRIMARY KEY, action TEXT NOT NULL, target TEXT NOT NULL, created_at INTEGER NOT NULL);`,
  `ALTER TABLE hub_requests ADD COLUMN argument TEXT;
   ALTER TABLE hub_requests ADD COLUMN state TEXT NOT NULL DEFAULT 'new';
   ALTER TABLE hub_requests ADD COLUMN result TEXT;
   CREATE TABLE ota_jobs (
     id INTEGER PRIMARY KEY, kind TEXT NOT NULL, device TEXT NOT NULL, spec TEXT NOT NULL,
     state TEXT NOT NULL, message TEXT, progress TEXT, rollout_id INTEGER,
     created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER);
   CREATE TABLE ota_transfers (
     id INTEGER PRIMARY KEY, job_id INTEGER, device TEXT NOT NULL, file TEXT NOT NULL,
     bytes INTEGER NOT NULL, ok INTEGER NOT NULL, error TEXT, at INTEGER NOT NULL);
   CREATE TABLE rollouts (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, message TEXT, created_at INTEGER NOT NULL, finished_at INTEGER);
   CREATE TABLE device_logs (id INTEGER PRIMARY KEY, device TEXT NOT NULL, topic TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL);
   CREATE INDEX device_logs_by_device ON device_logs (device, id);
   CREATE TABLE device_info (device TEXT PRIMARY KEY, info TEXT NOT NULL, updated_at INTEGER NOT NULL);`,
  `CREATE TABLE history (device TEXT NOT NULL, service TEXT NOT NULL, idx INTEGER NOT NULL, characteristic TEXT NOT NULL, at INTEGER NOT NULL, value REAL NOT NULL);
   CREATE INDEX history_by_series ON history (device, service, idx, characteristic, at);
   CREATE TABLE web_users (name TEXT PRIMARY KEY, secret TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE web_sessions (token_hash TEXT PRIMARY KEY, user TEXT NOT NULL, expires_at INTEGER NOT NULL);
   CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);`,
  // The CLI asks the running hub over its API now (issue 13): the table it polled is gone.
  `DROP TABLE IF EXISTS hub_requests;`,
  // Issue 15 (src/store/queries.ts): the series index carries the value, so a bucketed series is read
  // from the index alone (a covering index), not from the index and then each row.
  `DROP INDEX history_by_series;
   CREATE INDEX history_by_series ON history (device, service, idx, characteristic, at, value);`,
  // ESP-NOW pairings (issue 16): which gateway speaks for which peripheral (store/espnow-pairings.ts).
  `CREATE TABLE espnow_pairings (
     peripheral TEXT PRIMARY KEY, gateway TEXT NOT NULL, gateway_since INTEGER NOT NULL, created_at INTEGER NOT NULL);
   CREATE INDEX espnow_pairings_by_gateway ON espnow_pairings (gateway);`,
];

export const DATABASE_FILE = 'mqttkit.db';

/** The schema version this mqttkit writes (SQLite's user_version; PostgreSQL has its own list, engine/postgres-migrations.ts). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Every SQLite file starts with these 16 bytes. */
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Opens the hub's database, creating it when there is none. An existing file that is empty or not
 * SQLite is refused, never treated as a new database: SQLite itself would take a zero-length file
 * for an empty database and the hub would start as a new install.
 */
export function openDatabase(file: string): Db {
  if (!existsSync(file)) createDatabase(file);
  const problem = databaseFileProblem(file);
  if (problem) throw new Error(`${file} ${problem}: refusing to use it; see 'mqttkit start --help' (--reset-state) or restore a backup`);
  chmodSync(file, 0o600);
  const db = new Database(file, { timeout: 5000, fileMustExist: true });
  configure(db);
  try {
    migrate(db, file);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** What is wrong with an existing database file at first sight (size and header), or undefined. */
export function databaseFileProblem(file: string): string | undefined {
  const size = statSync(file).size;
  if (size === 0) return 'is empty (0 bytes)';
  const header = Buffer.alloc(SQLITE_HEADER.length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  return header.equals(SQLITE_HEADER) ? undefined : 'is not an SQLite database';
}

/**
 * [D-2] WAL with synchronous=NORMAL: a commit survives a crash of the process (kill -9) at once, and a
 * power cut once SQLite or the kernel has flushed the WAL (seconds). The database stays consistent
 * either way. Writes that must be on disk before the hub acts on them go through `durably()`.
 */
function configure(db: Db): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
}

/**
 * [D-2] Runs `fn` as one transaction whose commit is on disk (fsync of the WAL, which also carries every
 * earlier commit) before this returns: for the rows that identities and files depend on, e.g. a bridge
 * recorded before HAP-NodeJS writes its keys, an account before its device is told it is registered,
 * the setup code before it is shown. A commit costs an fsync (~3 ms on an SSD, more on an SD card),
 * so value, history and log writes, which are many and cheap to lose, stay NORMAL.
 */
export function durably<T>(db: Db, fn: () => T): T {
  if (db.inTransaction) return fn(); // the outer transaction decides
  db.pragma('synchronous = FULL');
  try {
    return db.transaction(fn)();
  } finally {
    db.pragma('synchronous = NORMAL');
  }
}

/**
 * [D-1] A new database is built beside its final name and renamed into place complete, so a crash
 * during the first start can never leave an empty `mqttkit.db`. Owner-only from the first byte.
 */
function createDatabase(file: string): void {
  const temp = join(dirname(file), `${TEMP_PREFIX}${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  closeSync(openSync(temp, 'wx', 0o600));
  try {
    const db = new Database(temp, { fileMustExist: true });
    try {
      configure(db);
      migrate(db, file);
    } finally {
      db.close();
    }
    // link, not rename: if another process (the CLI, a second hub) created the file meanwhile, keep theirs.
    try {
      linkSync(temp, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  } finally {
    for (const suffix of ['', '-wal', '-shm']) rmSync(temp + suffix, { force: true });
  }
  syncDirectory(dirname(file));
}

function migrate(db: Db, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(`the state database ${file} is from a newer mqttkit (schema ${version}, this one knows ${MIGRATIONS.length}): upgrade mqttkit`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
