/**
 * [H-2] HomeKit's keys, pairings and ids for two hubs sharing one PostgreSQL database. HAP-NodeJS reads and
 * writes its storage synchronously, so the local files stay the copy it works on (HapFileStorage: crash-safe,
 * damaged files refused); every write is also sent, in order, to the `hap_storage` table (PostgreSQL
 * migration 4). A hub taking the active role first replaces its local copy with the table's (the table
 * is the cluster's truth: the other hub may have paired a new iPhone since), then publishes its bridges with the same identity, pairings,
 * AIDs and IIDs. The one window: a write the active hub made in the last milliseconds before it died, not yet
 * in the table (a pairing added at that instant must be made again).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import type pg from 'pg';
import { HapFileStorage } from './hap-storage.js';

/** HAP-NodeJS's file names (`AccessoryInfo.<MAC>.json`, `IdentifierCache.<MAC>.json`). */
const KEY = /^[A-Za-z]+\.[0-9A-F]{12}\.json$/;

type Write = { key: string; value: unknown } | { key: string; removed: true };

/**
 * [H-2] SQLSTATE classes a retry cannot fix: 22 data exception (e.g. a NUL in a JSON string, which JSONB
 * refuses), 23 integrity constraint, 42 syntax or access rule. Anything else (08 connection, 57 operator
 * intervention, no code at all: a socket lost) is the database being away, retried with backoff.
 */
const PERMANENT_CLASSES = new Set(['22', '23', '42']);

export function isPermanentDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && PERMANENT_CLASSES.has(code.slice(0, 2));
}

/** Retries while the database is away back off from retryMs up to this many times it. */
const MAX_BACKOFF_FACTOR = 16;

export class ReplicatedHapStorage extends HapFileStorage {
  /**
   * [H-2] Pending writes, at most one per key (the latest: a file's newest content is all the table needs),
   * oldest key first. A value the database refuses is dropped, so it never holds up the writes after it.
   */
  readonly #queue = new Map<string, Write>();
  #draining: Promise<void> | undefined;
  #outage = false;
  #closed = false;
  #refused = 0;
  /** Keys whose refusal was logged: once each, however often HAP-NodeJS writes them again. */
  readonly #refusedKeys = new Set<string>();

  constructor(
    dir: string,
    private readonly pool: pg.Pool,
    private readonly onProblem: (problem: string) => void = () => {},
    private readonly retryMs = 1000,
  ) {
    super(dir);
  }

  /**
   * Before this hub acts: the table's copy replaces the local files. An empty table is seeded from the
   * local files instead (the first hub of a cluster, or one moved from a single-machine install).
   */
  async takeOver(): Promise<{ restored: number; seeded: number }> {
    // Writes still queued from an earlier active spell are stale now; the table is the truth.
    this.discard();
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const { rows } = await this.pool.query<{ key: string; value: unknown }>('SELECT key, value FROM hap_storage');
    if (rows.length === 0) {
      const local = readdirSync(this.dir).filter((name) => KEY.test(name));
      for (const key of local) this.#queue.set(key, { key, value: super.getItem(key) });
      await this.flush();
      return { restored: 0, seeded: local.length };
    }
    const wanted = new Set<string>();
    for (const { key, value } of rows) {
      if (!KEY.test(key)) continue; // never a path outside the storage dir, whatever the table holds
      wanted.add(key);
      super.setItemSync(key, value);
    }
    for (const name of readdirSync(this.dir)) if (KEY.test(name) && !wanted.has(name)) super.removeItemSync(name);
    return { restored: wanted.size, seeded: 0 };
  }

  override setItemSync(key: string, value: unknown): void {
    super.setItemSync(key, value);
    this.#enqueue({ key, value });
  }

  override removeItemSync(key: string): void {
    super.removeItemSync(key);
    this.#enqueue({ key, removed: true });
  }

  /** Resolves when every write so far is in the table or refused (stop, tests; retries while the database is away). */
  async flush(): Promise<void> {
    while ((this.#queue.size > 0 && !this.#closed) || this.#draining) await (this.#draining ??= this.#drain());
  }

  /** Drops the writes not yet in the table (this hub left the active role); returns how many. */
  discard(): number {
    const n = this.#queue.size;
    this.#queue.clear();
    return n;
  }

  /** Stops retrying (the hub is stopping); returns how many writes never reached the table. */
  close(): number {
    this.#closed = true;
    return this.#queue.size;
  }

  /** Writes not yet in the table (one per key at most). */
  get pending(): number {
    return this.#queue.size;
  }

  /** Writes the database refused as permanently wrong, and which were dropped (since start). */
  get refused(): number {
    return this.#refused;
  }

  #enqueue(write: Write): void {
    // The newest write of a key replaces an older pending one, and goes to the back of the line.
    this.#queue.delete(write.key);
    this.#queue.set(write.key, write);
    this.#draining ??= this.#drain();
  }

  async #drain(): Promise<void> {
    let failures = 0;
    try {
      while (this.#queue.size > 0 && !this.#closed) {
        const write = this.#queue.values().next().value as Write;
        try {
          if ('removed' in write) await this.pool.query('DELETE FROM hap_storage WHERE key = $1', [write.key]);
          else
            await this.pool.query(
              `INSERT INTO hap_storage (key, value, updated_at) VALUES ($1, $2::jsonb, $3)
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
              [write.key, JSON.stringify(write.value), Date.now()],
            );
          // Only this write leaves the queue: a newer one of the same key (or a discard) meanwhile stays as it is.
          this.#settle(write);
          this.#outage = false;
          failures = 0;
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          if (isPermanentDatabaseError(error)) {
            // Retrying cannot help and would block every later write: drop it, say so by name.
            this.#settle(write);
            this.#refused++;
            if (!this.#refusedKeys.has(write.key) && this.#refusedKeys.size < 64) {
              this.#refusedKeys.add(write.key);
              this.onProblem(
                `HomeKit storage ${write.key}: the database refused this write (${(error as { code: string }).code}: ${message}); it is dropped (${this.#refused} so far), the local file keeps it`,
              );
            }
            continue;
          }
          // One message per outage (a dropped connection, then refused ones, is one problem for the user).
          if (!this.#outage) this.onProblem(`HomeKit storage not yet copied to the database (retrying until it answers): ${message}`);
          this.#outage = true;
          failures++;
          const wait = this.retryMs * Math.min(2 ** (failures - 1), MAX_BACKOFF_FACTOR);
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    } finally {
      this.#draining = undefined;
    }
  }

  #settle(write: Write): void {
    if (this.#queue.get(write.key) === write) this.#queue.delete(write.key);
  }
}
