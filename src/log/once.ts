/**
 * "Logged once": a device repeating the same mistake every second must not flood the log. A key is
 * logged again only after `quietMs`; the table is bounded so hostile input cannot grow it.
 */
export class OncePerKey {
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly quietMs = 10 * 60_000,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `key` has not been seen within the quiet period. */
  first(key: string): boolean {
    const now = this.now();
    const last = this.#seen.get(key);
    if (last !== undefined && now - last < this.quietMs) return false;
    this.#seen.delete(key);
    this.#seen.set(key, now);
    if (this.#seen.size > this.maxKeys) this.#seen.delete(this.#seen.keys().next().value!);
    return true;
  }
}
