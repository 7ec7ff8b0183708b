/**
 * Records numeric and boolean values as they are reported, batched a second and written in slices
 * (one transaction per turn of the event loop, like registry-persistence.ts); prunes old ones.
 */
import type { CharacteristicRef, EventBus } from '../core/events.js';
import type { HistoryStore } from './history-store.js';

/** Points per transaction: ~10 µs each with the index (measured under load), so a slice stays around a millisecond. */
export const POINTS_PER_SLICE = 100;

export class HistoryRecorder {
  #batch: Array<{ ref: CharacteristicRef; at: number; value: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #next: NodeJS.Immediate | undefined;
  #pruner: NodeJS.Timeout | undefined;
  readonly #offs: Array<() => void> = [];

  constructor(
    private readonly bus: EventBus,
    private readonly store: HistoryStore,
    private readonly retentionMs: number,
    /** Told after each commit (the WAL checkpointer). */
    private readonly wrote: () => void = () => {},
  ) {}

  start(): void {
    this.#offs.push(
      this.bus.on('value', (ref, value) => {
        if (typeof value === 'string') return;
        this.#batch.push({ ref: { ...ref }, at: Date.now(), value: typeof value === 'boolean' ? Number(value) : value });
        this.#timer ??= setTimeout(() => this.#batchDue(), 1000).unref();
      }),
      this.bus.on('device:removed', (device) => this.store.forget(device.id)),
    );
    this.store.prune(Date.now() - this.retentionMs);
    this.#pruner = setInterval(() => this.store.prune(Date.now() - this.retentionMs), 3_600_000).unref();
  }

  /** Writes every waiting point now, in one transaction (stop, tests). */
  flush(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#next);
    this.#timer = this.#next = undefined;
    this.#write(this.#batch.splice(0));
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
    clearInterval(this.#pruner);
    this.flush();
  }

  #batchDue(): void {
    this.#timer = undefined;
    if (!this.#next) this.#writeSlice(); // else the slices under way take the new ones too
  }

  /** One slice of the batch; the next one waits for the next turn of the event loop. */
  #writeSlice(): void {
    this.#next = undefined;
    this.#write(this.#batch.splice(0, POINTS_PER_SLICE));
    // setImmediate: after the I/O waiting now (a 0 ms timer can run in the same timers phase).
    if (this.#batch.length > 0) this.#next = setImmediate(() => this.#writeSlice());
  }

  #write(points: Array<{ ref: CharacteristicRef; at: number; value: number }>): void {
    if (points.length === 0) return;
    this.store.add(points);
    this.wrote();
  }
}
