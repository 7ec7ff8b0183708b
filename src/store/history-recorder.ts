/** Records numeric and boolean values as they are reported, batched once a second; prunes old ones. */
import type { CharacteristicRef, EventBus } from '../core/events.js';
import type { HistoryStore } from './history-store.js';

export class HistoryRecorder {
  #batch: Array<{ ref: CharacteristicRef; at: number; value: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #pruner: NodeJS.Timeout | undefined;
  readonly #offs: Array<() => void> = [];

  constructor(
    private readonly bus: EventBus,
    private readonly store: HistoryStore,
    private readonly retentionMs: number,
  ) {}

  start(): void {
    this.#offs.push(
      this.bus.on('value', (ref, value) => {
        if (typeof value === 'string') return;
        this.#batch.push({ ref: { ...ref }, at: Date.now(), value: typeof value === 'boolean' ? Number(value) : value });
        this.#timer ??= setTimeout(() => this.flush(), 1000).unref();
      }),
      this.bus.on('device:removed', (device) => this.store.forget(device.id)),
    );
    this.store.prune(Date.now() - this.retentionMs);
    this.#pruner = setInterval(() => this.store.prune(Date.now() - this.retentionMs), 3_600_000).unref();
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length > 0) this.store.add(batch);
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
    clearInterval(this.#pruner);
    this.flush();
  }
}
