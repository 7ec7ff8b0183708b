/**
 * The PostgreSQL engine (`--database-url postgres://…`): a `pg` Pool. A transaction runs on one
 * client checked out of the pool; a durable commit is a normal one (Postgres fsyncs every commit
 * unless told not to). The URL's password never leaves this file unredacted: errors name the host.
 *
 * [D-11] A server lost while the hub runs ends no process: the pool drops the broken client (its 'error'
 * is logged), each statement that fails rejects (its caller logs it and, for the batch writers,
 * keeps the rows for the next try), and the next statement opens a new connection.
 */
import pg from 'pg';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';
import {
  numberPlaceholders,
  type RunResult,
  redactSecret,
  redactUrl,
  type SqlEngine,
  type SqlParams,
  type SqlRunner,
  type TransactionOptions,
} from './sql-engine.js';

/** BIGINT (times in ms, ids, counts) and NUMERIC as numbers: every value the stores keep fits in 2^53. */
const INT8 = 20;
const NUMERIC = 1700;
/** JSON and JSONB as their text, as SQLite gives a JSON column: the stores parse (and check) it themselves. */
const JSON_OID = 114;
const JSONB = 3802;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8 || oid === NUMERIC) return (value: string) => Number(value);
    if (oid === JSON_OID || oid === JSONB) return (value: string) => value;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

/** Any number, so two processes (a hub and a CLI command) never migrate at once. */
const MIGRATION_LOCK = 0x6d71_7474; // 'mqtt'

/** [H-1] The active hub's advisory lock key: one per database, the same in every mqttkit (an arbitrary 64-bit constant, "mqttkit"). */
export const ACTIVE_LOCK_KEY = '7881413289637716340';

export interface PostgresEngineOptions {
  /** Told of a connection lost while idle (the pool replaces it). */
  onError?: (message: string) => void;
  /** [H-6] The caller holds the active lock itself (the hub that just took the active role): it may migrate. */
  holdsActiveLock?: boolean;
  /** Connections the hub may hold. */
  max?: number;
}

export class PostgresEngine implements SqlEngine {
  readonly dialect = 'postgres';
  readonly where: string;
  readonly #pool: pg.Pool;
  readonly #url: string;

  private constructor(url: string, options: PostgresEngineOptions) {
    this.#url = url;
    this.where = redactUrl(url);
    this.#pool = new pg.Pool({
      connectionString: url,
      types,
      max: options.max ?? 5,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      // A server that accepts but never answers must not hold a writer's queue for ever: the statement fails, the rows are kept.
      query_timeout: 60_000,
      application_name: 'mqttkit',
    });
    // An idle client's broken connection is emitted here; unheard, it would end the process.
    this.#pool.on('error', (error) => options.onError?.(`PostgreSQL connection lost (${this.#describe(error)}); the next statement reconnects`));
  }

  /** Connects, checks the schema version and migrates; a server that cannot be reached or used is a clear error. */
  static async open(url: string, options: PostgresEngineOptions = {}): Promise<PostgresEngine> {
    const engine = await PostgresEngine.connect(url, options);
    try {
      await engine.migrate(options.holdsActiveLock === true);
    } catch (error) {
      await engine.close().catch(() => {});
      throw new Error(engine.explain(error));
    }
    return engine;
  }

  /** Connects (one round trip proves it) without touching the schema: `mqttkit migrate` looks first. */
  static async connect(url: string, options: PostgresEngineOptions = {}): Promise<PostgresEngine> {
    const engine = new PostgresEngine(url, options);
    try {
      await engine.get('SELECT 1 AS one');
    } catch (error) {
      await engine.close().catch(() => {});
      throw new Error(engine.explain(error));
    }
    return engine;
  }

  /** Brings the schema to this mqttkit's version ([D-9]); refused while another process holds the active lock ([H-6]). */
  async migrate(holdsActiveLock = false): Promise<void> {
    await this.transaction((tx) => migratePostgres(tx, this.where, holdsActiveLock));
  }

  async all<T>(sql: string, params: SqlParams = []): Promise<T[]> {
    return (await this.#query(this.#pool, sql, params)).rows as T[];
  }

  async get<T>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    return (await this.#query(this.#pool, sql, params)).rows[0] as T | undefined;
  }

  async run(sql: string, params: SqlParams = []): Promise<RunResult> {
    return { changes: (await this.#query(this.#pool, sql, params)).rowCount ?? 0 };
  }

  async insert(sql: string, params: SqlParams = []): Promise<number> {
    return Number((await this.#query(this.#pool, `${sql} RETURNING id`, params)).rows[0]?.id);
  }

  async exec(sql: string): Promise<void> {
    await this.#query(this.#pool, sql, []);
  }

  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>, _options: TransactionOptions = {}): Promise<T> {
    const client = await this.#pool.connect().catch((error: unknown) => {
      throw new Error(this.explain(error));
    });
    let broken: Error | undefined;
    // A checked-out client's lost connection is emitted on it (the pool listens only to idle ones): unheard,
    // it would be an uncaught exception. Its statements reject on their own; the client is not reused.
    const onLost = (error: Error) => {
      broken ??= error;
    };
    client.on('error', onLost);
    try {
      await client.query('BEGIN');
      const tx: SqlRunner = {
        all: async <R>(sql: string, params: SqlParams = []) => (await this.#query(client, sql, params)).rows as R[],
        get: async <R>(sql: string, params: SqlParams = []) => (await this.#query(client, sql, params)).rows[0] as R | undefined,
        run: async (sql: string, params: SqlParams = []) => ({ changes: (await this.#query(client, sql, params)).rowCount ?? 0 }),
        insert: async (sql: string, params: SqlParams = []) => Number((await this.#query(client, `${sql} RETURNING id`, params)).rows[0]?.id),
      };
      let result: T;
      try {
        result = await fn(tx);
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken = rollbackError;
        });
        throw error;
      }
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A client whose connection failed mid-transaction is not given back for reuse.
      if (isConnectionError(error)) broken ??= error as Error;
      throw error;
    } finally {
      client.off('error', onLost);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (!this.#pool.ended) await this.#pool.end();
  }

  /** An error as the user should read it: what failed, where (host and port, no password) and the fix. */
  explain(error: unknown): string {
    if (error instanceof NewerSchemaError || error instanceof ActiveHubError) return error.message;
    const code = (error as { code?: string }).code;
    const target = this.#target();
    const detail = this.#describe(error);
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || /timeout/i.test(detail))
      return `cannot reach PostgreSQL at ${target} (${detail}): start the server, or fix --database-url (MQTTKIT_DATABASE_URL, config.json databaseUrl)`;
    if (code === '28P01' || code === '28000') return `PostgreSQL at ${target} refused the login (${detail}): check the user and password in --database-url`;
    if (code === '3D000') return `PostgreSQL at ${target}: ${detail}: create it (createdb) or fix the database name in --database-url`;
    return `PostgreSQL at ${target}: ${detail}`;
  }

  #target(): string {
    try {
      const url = new URL(this.#url);
      return `${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname && url.pathname !== '/' ? ` (database ${url.pathname.slice(1)})` : ''}`;
    } catch {
      return this.where;
    }
  }

  #describe(error: unknown): string {
    const e = error as { message?: string; code?: string };
    const text = e.message || e.code || String(error);
    return redactSecret(text, this.#url);
  }

  async #query(on: pg.Pool | pg.PoolClient, sql: string, params: SqlParams): Promise<pg.QueryResult> {
    try {
      // Without parameters: the simple protocol, which takes several statements at once (exec).
      return params.length === 0 ? await on.query(sql) : await on.query(numberPlaceholders(sql), params as unknown[]);
    } catch (error) {
      // The driver's message may quote the connection string: never let the password out in it.
      if (error instanceof Error) error.message = redactSecret(error.message, this.#url);
      throw error;
    }
  }
}

/**
 * Brings the schema to this mqttkit's version inside `tx`, under an advisory lock so two processes (a
 * hub and a CLI command) never migrate at once; a database from a newer mqttkit is refused by name.
 */
export async function migratePostgres(tx: SqlRunner, where: string, holdsActiveLock = false): Promise<void> {
  await tx.run('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK]);
  await tx.run('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = await tx.get<{ version: number }>('SELECT version FROM schema_version');
  const version = row?.version ?? 0;
  if (row === undefined) await tx.run('INSERT INTO schema_version (version) VALUES (0)');
  if (version > POSTGRES_MIGRATIONS.length) {
    throw new NewerSchemaError(
      `the PostgreSQL database ${where} is from a newer mqttkit (schema ${version}, this one knows ${POSTGRES_MIGRATIONS.length}): upgrade mqttkit`,
    );
  }
  // [H-6] A hub running on this schema (the active one, older) must not have it changed under it: a newer
  // mqttkit migrates only once no other process holds the active lock (it took the role itself, or none runs).
  if (version > 0 && version < POSTGRES_MIGRATIONS.length && !holdsActiveLock && (await activeLockHeld(tx))) {
    throw new ActiveHubError(
      `the PostgreSQL database ${where} has schema ${version} and this mqttkit would migrate it to ${POSTGRES_MIGRATIONS.length}, but another mqttkit is active on it (it holds the active lock) and runs on that schema: upgrade in order (docs/scaling.md, "Upgrading"): start the upgraded hub as the standby (--failover; it migrates when it takes the active role), then stop the active hub`,
    );
  }
  for (let v = version; v < POSTGRES_MIGRATIONS.length; v++) {
    for (const statement of splitStatements(POSTGRES_MIGRATIONS[v]!)) await tx.run(statement);
    await tx.run('UPDATE schema_version SET version = ?', [v + 1]);
  }
}

export class NewerSchemaError extends Error {}

/** [H-6] A migration refused because another mqttkit is active on the database. */
export class ActiveHubError extends Error {}

/** Whether some session holds the active lock (pg_locks shows a bigint key as its two 32-bit halves). */
async function activeLockHeld(tx: SqlRunner): Promise<boolean> {
  const row = await tx.get<{ held: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
       AND ((classid::bigint << 32) | objid::bigint) = ?::bigint) AS held`,
    [ACTIVE_LOCK_KEY],
  );
  return row?.held === true;
}

/** The schema version of a database, refused by name when it is from a newer mqttkit (a standby waits, [H-6]). */
export async function checkedSchemaVersion(engine: PostgresEngine): Promise<{ version: number; target: number }> {
  const version = await postgresSchemaVersion(engine);
  if (version > POSTGRES_MIGRATIONS.length)
    throw new NewerSchemaError(
      `the PostgreSQL database ${engine.where} is from a newer mqttkit (schema ${version}, this one knows ${POSTGRES_MIGRATIONS.length}): upgrade mqttkit`,
    );
  return { version, target: POSTGRES_MIGRATIONS.length };
}

/** A migration's statements one by one (a prepared statement holds one; none of ours has a ';' in a literal). */
function splitStatements(sql: string): string[] {
  return sql
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  return /^E[A-Z]+$/.test(code) || code.startsWith('08') || code === '57P01' || /Connection terminated/i.test((error as Error).message ?? '');
}

/** The schema version of a Postgres database (0 when it has none yet), for `migrate` and the tests. */
export async function postgresSchemaVersion(engine: SqlRunner): Promise<number> {
  const exists = await engine.get<{ t: string | null }>("SELECT to_regclass('schema_version')::text AS t");
  if (!exists?.t) return 0;
  return (await engine.get<{ version: number }>('SELECT version FROM schema_version'))?.version ?? 0;
}
