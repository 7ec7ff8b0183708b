/**
 * The one SQL interface every store class is written against, with two engines behind it: SQLite
 * (better-sqlite3, the default, a file in the data dir) and PostgreSQL (the `pg` driver,
 * `--database-url`). SQL is written once with `?` placeholders; the Postgres engine numbers them.
 * Where the two differ (new row ids, schema versions) the engine answers, not the store. See docs/data.md.
 */

export type SqlValue = string | number | bigint | boolean | null | Buffer;
export type SqlParams = readonly SqlValue[];

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

/** Statements on the engine, or inside one of its transactions. */
export interface SqlRunner {
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  run(sql: string, params?: SqlParams): Promise<RunResult>;
  /** Runs an INSERT into a table whose key is an `id` it numbers itself, and returns the new row's id. */
  insert(sql: string, params?: SqlParams): Promise<number>;
}

export type Dialect = 'sqlite' | 'postgres';

export interface TransactionOptions {
  /**
   * [D-2] The commit is on disk before the promise resolves: for the rows identities and files depend
   * on. SQLite fsyncs that commit (synchronous=FULL); a Postgres commit is durable anyway.
   */
  durable?: boolean;
}

export interface SqlEngine extends SqlRunner {
  readonly dialect: Dialect;
  /** Where the data is, safe to print (a Postgres URL without its password). */
  readonly where: string;
  /** Runs statements without parameters (schema, migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Runs `fn` as one transaction: committed when its promise resolves, rolled back when it rejects.
   * Statements must go through `tx`; nothing else runs on the same connection meanwhile.
   */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options?: TransactionOptions): Promise<T>;
  close(): Promise<void>;
}

/** One statement, committed durably ([D-2]); inside no transaction of its own caller. */
export function durably(engine: SqlEngine, sql: string, params: SqlParams = []): Promise<RunResult> {
  return engine.transaction((tx) => tx.run(sql, params), { durable: true });
}

/**
 * `?` placeholders as Postgres's `$1, $2, …`. Quoted strings and identifiers are left alone, so a `?`
 * inside a literal stays a character.
 */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') out += `$${++n}`;
    else out += ch;
  }
  return out;
}

/** [D-10] A database URL as it may be printed: the password replaced by `***` (never in a log, banner, error or /api). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    // pg also takes the password (and key material) as query parameters.
    for (const key of [...parsed.searchParams.keys()]) if (/pass|key|secret|token/i.test(key)) parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    // Not a URL we can parse: show only the scheme, never what might be a password.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0];
    return scheme ? `${scheme}//…` : '(a database URL that cannot be read)';
  }
}

/** Any text with each occurrence of the URL's password replaced (a driver's error message, a stack). */
export function redactSecret(text: string, url: string | undefined): string {
  if (!url) return text;
  const secrets: string[] = [];
  try {
    const parsed = new URL(url);
    if (parsed.password) secrets.push(decodeURIComponent(parsed.password));
    for (const [key, value] of parsed.searchParams) if (/pass|key|secret|token/i.test(key) && value) secrets.push(value);
  } catch {
    // nothing readable to hide beyond the URL itself
  }
  let out = text.split(url).join(redactUrl(url));
  for (const secret of secrets) out = out.split(secret).join('***');
  return out;
}
