/**
 * The SQL of the active hub's lock ([H-1], [H-5]; docs/scaling.md): what src/hub/leadership.ts asks of
 * PostgreSQL, kept with the other SQL in src/store. Leadership decides what the answers mean.
 */
import pg from 'pg';
import { ACTIVE_LOCK_KEY } from './postgres-engine.js';

/** [H-1] Takes the active lock on this session if no other session holds it. */
export async function tryActiveLock(client: pg.Client, ms: number): Promise<boolean> {
  const result = await withDeadline(client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [ACTIVE_LOCK_KEY]), ms);
  return result.rows[0]?.locked === true;
}

/** [H-1] The lock is the session's as long as the session is alive: a statement answered proves it. */
export async function proveSession(client: pg.Client, ms: number): Promise<void> {
  await withDeadline(client.query('SELECT 1'), ms);
}

/**
 * [H-5] Whether this database can decide which hub is active, checked at start on a session opened as the
 * lock's is. Refused by name, with the fix:
 * - PostgreSQL older than 14 has no `idle_session_timeout`: a holder cut off without a close (a cable
 *   pulled) would keep the lock for the keepalive probes' ~25 s while it already stepped down;
 * - a connection pooler (PgBouncer) between the hub and PostgreSQL: in transaction pooling an advisory
 *   session lock belongs to whichever server connection ran the statement, not to the hub. Detected when
 *   the backend that answers is not the one the connection's start-up named (PgBouncer hands out keys of
 *   its own), when the pooler refuses the session's start-up options, or when they did not take effect.
 * A pooler that passes the server's own start-up keys through and applies `options` cannot be told from
 * PostgreSQL itself here (docs/scaling.md).
 */
export async function checkLockDatabase(databaseUrl: string, sessionTimeoutMs: number): Promise<void> {
  const pooler =
    'point --database-url of both hubs at PostgreSQL itself, not at a connection pooler such as PgBouncer (the active lock is a session lock; transaction pooling does not keep it)';
  const client = new pg.Client({
    connectionString: databaseUrl,
    connectionTimeoutMillis: 10_000,
    application_name: 'mqttkit (lock check)',
    options: `-c idle_session_timeout=${sessionTimeoutMs}`,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    const message = messageOf(error);
    if (/unsupported startup parameter/i.test(message))
      throw new Error(`--failover: the database refused the lock session's start-up options (${message}): ${pooler}`);
    throw error;
  }
  try {
    const ask = async (sql: string) => (await withDeadline(client.query<Record<string, string>>(sql), 10_000)).rows[0] ?? {};
    const version = Number((await ask('SHOW server_version_num')).server_version_num);
    if (!(version >= 140000))
      throw new Error(
        `--failover needs PostgreSQL 14 or newer (idle_session_timeout frees the active lock of a hub cut off from the database); this server is ${version ? `version ${Math.floor(version / 10000)}` : 'of an unknown version'}: upgrade PostgreSQL, or run one hub without --failover`,
      );
    const backend = Number((await ask('SELECT pg_backend_pid() AS pid')).pid);
    const announced = (client as unknown as { processID: number | null }).processID; // set by pg from BackendKeyData; not in its types
    if (backend !== announced) throw new Error(`--failover: the server answering (backend ${backend}) is not the one this connection started with: ${pooler}`);
    const applied = Number((await ask("SELECT setting FROM pg_settings WHERE name = 'idle_session_timeout'")).setting);
    if (applied !== sessionTimeoutMs)
      throw new Error(`--failover: idle_session_timeout set on the lock's session did not take effect (it is ${applied} ms): ${pooler}`);
  } finally {
    await withDeadline(client.end(), 1000).catch(() => {});
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
