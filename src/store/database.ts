/** Opens the hub's SQLite file: owner-only (it holds pairing-related state), WAL, migrated. */
import Database from 'better-sqlite3';
import { closeSync, openSync, chmodSync } from 'node:fs';

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
];

export const DATABASE_FILE = 'mqttkit.db';

export function openDatabase(file: string): Db {
  // Create the file owner-only before SQLite does, so it never exists with wider permissions.
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  const db = new Database(file, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(`the state database is from a newer mqttkit (schema ${version}, this one knows ${MIGRATIONS.length}): upgrade mqttkit`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
