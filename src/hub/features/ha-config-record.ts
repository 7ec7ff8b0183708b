/**
 * [P-27] The hub's record of the Home Assistant discovery configs it has published (per device) and of
 * its leftovers not yet known to have reached Home Assistant, kept in the store's settings so that a
 * restart with the embedded broker (which forgets every retained config) still knows what to clear.
 *
 * Writes are off the hot path: a change marks the device, and one background writer saves every marked
 * device in one transaction; changes made meanwhile go in the next. A failed write is logged and kept
 * marked for the next one; nothing here rejects.
 */
import type { Logger } from '../../log/logger.js';
import type { HaDiscoveryRecord, StateStore } from '../../store/state-store.js';

export class HaConfigRecord {
  /** What the store holds now (after the last write), per device. */
  readonly #saved = new Map<string, readonly string[]>();
  /** What it should hold: the devices whose topics changed, and the leftovers when they changed. */
  readonly #due = new Map<string, readonly string[]>();
  #leftovers: readonly string[] | undefined;
  #writing: Promise<void> = Promise.resolve();
  #queued = false;

  constructor(
    private readonly store: StateStore,
    private readonly log: Logger,
  ) {}

  /** Reads the record; a damaged key is named in the log and read as empty (the hub carries on). */
  async load(): Promise<HaDiscoveryRecord> {
    const record = await this.store.haDiscoveryRecord((problem) =>
      this.log.warn({ problem }, `${problem}: read as empty, so configs it named that no device wants now may stay in Home Assistant`),
    );
    for (const [id, topics] of record.configs) this.#saved.set(id, topics);
    return record;
  }

  /** The device's published topics are now `topics` (none: the device is forgotten). */
  device(id: string, topics: readonly string[]): void {
    const saved = this.#saved.get(id) ?? [];
    if (!this.#due.has(id) && sameSet(saved, topics)) return;
    this.#due.set(id, [...topics]);
    this.#soon();
  }

  leftovers(topics: Iterable<string>): void {
    this.#leftovers = [...topics];
    this.#soon();
  }

  /** Resolves once everything marked so far is written (or its write failed and was logged). */
  async settled(): Promise<void> {
    while (this.#queued) await this.#writing;
    await this.#writing;
  }

  #soon(): void {
    if (this.#queued) return;
    this.#queued = true;
    this.#writing = this.#writing.then(() => this.#write());
  }

  async #write(): Promise<void> {
    // Taken now: what changes while this transaction runs goes in the next.
    this.#queued = false;
    const configs = new Map(this.#due);
    const leftovers = this.#leftovers;
    this.#due.clear();
    this.#leftovers = undefined;
    try {
      await this.store.saveHaDiscoveryRecord({ configs, ...(leftovers && { leftovers }) });
      for (const [id, topics] of configs) {
        if (topics.length === 0) this.#saved.delete(id);
        else this.#saved.set(id, topics);
      }
    } catch (error) {
      this.log.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'Home Assistant discovery: the record of published configs was not saved; retried at the next change',
      );
      for (const [id, topics] of configs) if (!this.#due.has(id)) this.#due.set(id, topics);
      this.#leftovers ??= leftovers;
    }
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((t) => set.has(t));
}
