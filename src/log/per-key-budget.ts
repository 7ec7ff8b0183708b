/**
 * At most `limit` log lines per key in each window: a device that reconnects in a loop (each cycle
 * "online", then "offline") must not turn the hub's log into a firehose. Bounded like OncePerKey.
 */
export type BudgetAnswer = 'log' | 'log-last' | 'skip';

export class PerKeyBudget {
  readonly #windows = new Map<string, { start: number; used: number }>();

  constructor(
    private readonly limit = 10,
    private readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `log-last`: the last line this window allows (say that more are held back). */
  take(key: string): BudgetAnswer {
    const now = this.now();
    let window = this.#windows.get(key);
    if (!window || now - window.start >= this.windowMs) {
      this.#windows.delete(key);
      window = { start: now, used: 0 };
      this.#windows.set(key, window);
      if (this.#windows.size > this.maxKeys) this.#windows.delete(this.#windows.keys().next().value!);
    }
    window.used++;
    return window.used < this.limit ? 'log' : window.used === this.limit ? 'log-last' : 'skip';
  }
}
