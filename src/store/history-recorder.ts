/**
 * Records numeric and boolean values as they are reported, batched a second and written in slices
 * (one transaction per turn of the event loop, like registry-persistence.ts); prunes old ones.
 * A slice that fails to be written (a PostgreSQL server gone) is kept, up to MAX_WAITING points, and
 * tried again with the next batch; the failure is logged once per outage.
 */
import type { CharacteristicRef, EventBus } from '../core/events.js';
import type { HistoryStore } from './history-store.js';

/** Points per transaction: ~10 µs each with the index (measured under load), so a slice stays around a millisecond. */
export const POINTS_PER_SLICE = 100;
/** Points kept while the store refuses writes (about an hour of 50 busy devices); older ones are dropped first. */
const MAX_WAITING = 200_000;

type Point = { ref: CharacteristicRef; at: number; value: number };

export class HistoryRecorder {
  #batch: Point[] = [];
  #timer: NodeJS.Timeout | undefined;
  #next: NodeJS.Immediate | undefined;
  #pruner: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failing = false;
  readonly #offs: Array<() => void> = [];

  constructor(
    private readonly bus: EventBus,
    private readonly store: HistoryStore,
    private readonly retentionMs: number,
    /** Told after each commit (the WAL checkpointer). */
    private readonly wrote: () => void = () => {},
    /** Told when a write fails and when writes work again. */
    private readonly onError: (message: string) => void = () => {},
  ) {}

  start(): void {
    this.#offs.push(
      this.bus.on('value', (ref, value) => {
        if (typeof value === 'string') return;
        this.#batch.push({ ref: { ...ref }, at: Date.now(), value: typeof value === 'boolean' ? Number(value) : value });
        this.#timer ??= setTimeout(() => this.#batchDue(), 1000).unref();
      }),
      this.bus.on('device:removed', (device) => void this.#enqueue(() => this.store.forget(device.id), `forgetting ${device.id}'s history`)),
    );
    const prune = () => void this.#enqueue(async () => void (await this.store.prune(Date.now() - this.retentionMs)), 'pruning old history');
    prune();
    this.#pruner = setInterval(prune, 3_600_000).unref();
  }

  /** Writes every waiting point now, in one transaction, after the writes under way (stop, tests). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    clearImmediate(this.#next);
    this.#timer = this.#next = undefined;
    void this.#write(this.#batch.splice(0));
    await this.#writing;
  }

  async stop(): Promise<void> {
    for (const off of this.#offs.splice(0)) off();
    clearInterval(this.#pruner);
    await this.flush();
  }

  #batchDue(): void {
    this.#timer = undefined;
    if (!this.#next) this.#writeSlice(); // else the slices under way take the new ones too
  }

  /** One slice of the batch; the next one waits for it and for the next turn of the event loop. */
  #writeSlice(): void {
    this.#next = undefined;
    const written = this.#write(this.#batch.splice(0, POINTS_PER_SLICE));
    // setImmediate: after the I/O waiting now (a 0 ms timer can run in the same timers phase).
    if (this.#batch.length > 0) {
      this.#next = setImmediate(() => {}); // marks the slices as under way until the next one is due
      void written.then(() => {
        clearImmediate(this.#next);
        this.#next = setImmediate(() => this.#writeSlice());
      });
    }
  }

  #write(points: Point[]): Promise<void> {
    if (points.length === 0) return this.#writing;
    return this.#enqueue(async () => {
      try {
        await this.store.add(points);
      } catch (error) {
        this.#batch.unshift(...points);
        if (this.#batch.length > MAX_WAITING) this.#batch.splice(0, this.#batch.length - MAX_WAITING);
        this.#timer ??= setTimeout(() => this.#batchDue(), 1000).unref();
        throw error;
      }
      this.wrote();
    }, `recording ${points.length} history point(s)`);
  }

  #enqueue(work: () => Promise<void>, what: string): Promise<void> {
    this.#writing = this.#writing.then(work).then(
      () => {
        if (this.#failing) this.onError('the store takes history again: the points kept meanwhile are written');
        this.#failing = false;
      },
      (error: unknown) => {
        if (!this.#failing) this.onError(`${what} failed (${error instanceof Error ? error.message : String(error)}); kept, tried again with the next batch`);
        this.#failing = true;
      },
    );
    return this.#writing;
  }
}
