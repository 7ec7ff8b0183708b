/**
 * [D-12] `mqttkit migrate`: copies a SQLite store (every table, every row) into an EMPTY PostgreSQL database
 * (no table, or only mqttkit's tables without a row),
 * in one Postgres transaction: the schema is created, the rows copied in batches, the id sequences
 * moved past the copied ids, and each table's row count compared with the source's before the commit.
 * Any difference or error rolls everything back: the target is left empty, the source is never changed.
 */
import type { Db } from './database.js';
import { migratePostgres, type PostgresEngine } from './engine/postgres-engine.js';
import { IDENTITY_TABLES, POSTGRES_ONLY_TABLES, STORE_TABLES } from './engine/postgres-migrations.js';
import type { SqlValue } from './engine/sql-engine.js';

/** Rows per INSERT: a few thousand parameters, well under Postgres's 65,535. */
const ROWS_PER_INSERT = 500;

export interface TableCount {
  table: string;
  rows: number;
}

export class MigrationRefused extends Error {}

/** The tables a database already holds (the target must hold none). */
export async function existingTables(target: PostgresEngine): Promise<string[]> {
  const rows = await target.all<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename');
  return rows.map((r) => r.name);
}

export async function copySqliteToPostgres(source: Db, target: PostgresEngine, onTable?: (count: TableCount) => void): Promise<TableCount[]> {
  // Empty: no table at all, or only mqttkit's own tables without a row (a hub started on it and refused, say).
  const held: string[] = [];
  for (const table of await existingTables(target)) {
    if (table === 'schema_version') continue;
    if (![...STORE_TABLES, ...POSTGRES_ONLY_TABLES].includes(table as never)) {
      held.push(`${table} (not mqttkit's)`);
      continue;
    }
    const n = (await target.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))?.n ?? 0;
    if (n > 0) held.push(`${table} (${n} row${n === 1 ? '' : 's'})`);
  }
  if (held.length > 0) {
    throw new MigrationRefused(
      `the PostgreSQL database ${target.where} is not empty (it holds ${held.slice(0, 10).join(', ')}${held.length > 10 ? ', …' : ''}): migrate into a new, empty database (e.g. createdb mqttkit2); nothing was copied`,
    );
  }
  // One snapshot of the source for the whole copy (WAL: a hub or CLI writing meanwhile is not seen).
  source.exec('BEGIN');
  try {
    return await target.transaction(async (tx) => {
      await migratePostgres(tx, target.where);
      const counts: TableCount[] = [];
      for (const table of STORE_TABLES) {
        const columns = (source.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name);
        const quoted = columns.map((c) => `"${c}"`).join(', ');
        let batch: SqlValue[][] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          const rows = batch.map(() => `(${columns.map(() => '?').join(', ')})`).join(', ');
          await tx.run(`INSERT INTO ${table} (${quoted}) VALUES ${rows}`, batch.flat());
          batch = [];
        };
        for (const row of source.prepare(`SELECT ${quoted} FROM ${table}`).raw().iterate() as Iterable<SqlValue[]>) {
          batch.push(row);
          if (batch.length === ROWS_PER_INSERT) await flush();
        }
        await flush();
        const expected = (source.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
        const copied = (await tx.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))?.n ?? 0;
        if (copied !== expected) throw new Error(`${table}: ${expected} rows in SQLite, ${copied} in PostgreSQL after the copy: nothing was kept`);
        counts.push({ table, rows: copied });
        onTable?.({ table, rows: copied });
      }
      // New rows must get ids after the copied ones.
      for (const table of IDENTITY_TABLES) {
        await tx.run(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), COALESCE((SELECT MAX(id) FROM ${table}), 0) + 1, false)`);
      }
      return counts;
    });
  } finally {
    source.exec('COMMIT');
  }
}
