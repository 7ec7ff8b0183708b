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

export class ReplicatedHapStorage extends HapFileStorage {
  readonly #queue: Write[] = [];
  #draining: Promise<void> | undefined;
  #outage = false;
  #closed = false;
  /** Bumped by discard(): a write in flight when the queue was dropped does not shift the new queue. */
  #generation = 0;

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
      for (const key of local) this.#queue.push({ key, value: super.getItem(key) });
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

  /** Resolves when every write so far is in the table (stop, tests; retries while the database is away). */
  async flush(): Promise<void> {
    while ((this.#queue.length > 0 && !this.#closed) || this.#draining) await (this.#draining ??= this.#drain());
  }

  /** Drops the writes not yet in the table (this hub left the active role); returns how many. */
  discard(): number {
    this.#generation++;
    return this.#queue.splice(0).length;
  }

  /** Stops retrying (the hub is stopping); returns how many writes never reached the table. */
  close(): number {
    this.#closed = true;
    return this.#queue.length;
  }

  /** Writes not yet in the table. */
  get pending(): number {
    return this.#queue.length;
  }

  #enqueue(write: Write): void {
    this.#queue.push(write);
    this.#draining ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const write = this.#queue[0]!;
        const generation = this.#generation;
        try {
          if ('removed' in write) await this.pool.query('DELETE FROM hap_storage WHERE key = $1', [write.key]);
          else
            await this.pool.query(
              `INSERT INTO hap_storage (key, value, updated_at) VALUES ($1, $2::jsonb, $3)
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
              [write.key, JSON.stringify(write.value), Date.now()],
            );
          if (generation === this.#generation) this.#queue.shift();
          this.#outage = false;
        } catch (error) {
          // One message per outage (a dropped connection, then refused ones, is one problem for the user).
          if (!this.#outage)
            this.onProblem(
              `HomeKit storage not yet copied to the database (retrying until it answers): ${error instanceof Error ? error.message : String(error)}`,
            );
          this.#outage = true;
          await new Promise((r) => setTimeout(r, this.retryMs));
        }
      }
    } finally {
      this.#draining = undefined;
    }
  }
}
