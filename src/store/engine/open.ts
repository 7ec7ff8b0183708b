/** Opens the store's engine: PostgreSQL when a database URL is set, else the data dir's SQLite file. */
import { join } from 'node:path';
import { DATABASE_FILE, openDatabase } from '../database.js';
import { PostgresEngine } from './postgres-engine.js';
import type { SqlEngine } from './sql-engine.js';
import { SqliteEngine } from './sqlite-engine.js';

export interface StorePlace {
  dataDir: string;
  /** `postgres://…` (--database-url): the store lives there instead of `<dataDir>/mqttkit.db`. */
  databaseUrl?: string | undefined;
}

export async function openEngine(place: StorePlace, onError?: (message: string) => void): Promise<SqlEngine> {
  if (place.databaseUrl) return PostgresEngine.open(place.databaseUrl, onError ? { onError } : {});
  return new SqliteEngine(openDatabase(join(place.dataDir, DATABASE_FILE)));
}

/** Whether the URL names a PostgreSQL database (the only kind --database-url takes). */
export const isPostgresUrl = (url: string) => /^postgres(ql)?:\/\//i.test(url);

/** The SQLite engine on one file (tests, tools): opened, migrated, a damaged file refused. */
export const openSqliteEngine = (file: string): SqliteEngine => new SqliteEngine(openDatabase(file));
