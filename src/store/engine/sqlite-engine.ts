/**
 * The SQLite engine: better-sqlite3 on the data dir's `mqttkit.db` (database.ts opens it: owner-only,
 * WAL, migrated, a damaged file refused). better-sqlite3 is synchronous; the async interface only
 * wraps it. A transaction may await between its statements, so transactions are serialised by a
 * mutex and every statement outside one waits for it to end: another caller's statement can never
 * slip into (or be rolled back with) someone else's transaction. Each waiter checks and acts in one
 * turn (`while (busy) await busy;` then a synchronous statement or BEGIN): every waiter wakes when a
 * transaction ends, the first to run takes the next one, the rest see it and wait again.
 */
import type Database from 'better-sqlite3';
import type { Db } from '../database.js';
import type { RunResult, SqlEngine, SqlParams, SqlRunner, SqlValue, TransactionOptions } from './sql-engine.js';

type Statement = Database.Statement<unknown[], unknown>;

export class SqliteEngine implements SqlEngine {
  readonly dialect = 'sqlite';
  readonly where: string;
  /** Settles when the transaction under way ends; undefined when none is. */
  #busy: Promise<void> | undefined;
  readonly #statements = new Map<string, Statement>();
  readonly #direct: SqlRunner;

  constructor(readonly db: Db) {
    this.where = db.name;
    const statement = (sql: string) => this.#prepare(sql);
    this.#direct = {
      all: async <T>(sql: string, params: SqlParams = []) => statement(sql).all(...bind(params)) as T[],
      get: async <T>(sql: string, params: SqlParams = []) => statement(sql).get(...bind(params)) as T | undefined,
      run: async (sql: string, params: SqlParams = []): Promise<RunResult> => ({ changes: statement(sql).run(...bind(params)).changes }),
      insert: async (sql: string, params: SqlParams = []) => Number(statement(sql).run(...bind(params)).lastInsertRowid),
    };
  }

  async all<T>(sql: string, params?: SqlParams): Promise<T[]> {
    while (this.#busy) await this.#busy;
    return this.#direct.all<T>(sql, params);
  }

  async get<T>(sql: string, params?: SqlParams): Promise<T | undefined> {
    while (this.#busy) await this.#busy;
    return this.#direct.get<T>(sql, params);
  }

  async run(sql: string, params?: SqlParams): Promise<RunResult> {
    while (this.#busy) await this.#busy;
    return this.#direct.run(sql, params);
  }

  async insert(sql: string, params?: SqlParams): Promise<number> {
    while (this.#busy) await this.#busy;
    return this.#direct.insert(sql, params);
  }

  async exec(sql: string): Promise<void> {
    while (this.#busy) await this.#busy;
    this.db.exec(sql);
  }

  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    while (this.#busy) await this.#busy;
    // Taken in the same turn as the check above: no other waiter can slip in between.
    let release!: () => void;
    this.#busy = new Promise((resolve) => {
      release = resolve;
    });
    try {
      // [D-2] FULL for this commit only: it is fsynced (with every earlier one) before this returns.
      if (options.durable) this.db.pragma('synchronous = FULL');
      // IMMEDIATE: the write lock up front (waiting up to the busy timeout for the CLI or a backup),
      // so a transaction that reads first cannot fail on upgrading its lock.
      this.db.exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await fn(this.#direct);
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
      this.db.exec('COMMIT');
      return result;
    } finally {
      if (options.durable) this.db.pragma('synchronous = NORMAL');
      this.#busy = undefined;
      release();
    }
  }

  async close(): Promise<void> {
    while (this.#busy) await this.#busy;
    if (this.db.open) this.db.close();
  }

  #prepare(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

/** better-sqlite3 takes no booleans. */
const bind = (params: SqlParams): SqlValue[] => params.map((p) => (typeof p === 'boolean' ? Number(p) : p));
