/**
 * "Logged once": a device repeating the same mistake every second must not flood the log. A key is
 * logged again only after `quietMs`; the table is bounded so hostile input cannot grow it.
 */
const MAX_KEY_LENGTH = 256;

export class OncePerKey {
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly quietMs = 10 * 60_000,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `key` has not been seen within the quiet period. */
  first(key: string): boolean {
    // Keys often hold device input (a topic): 10,000 keys of 64 KB would be 640 MB. Beyond the cut two
    // keys count as one, which costs at most a log line.
    if (key.length > MAX_KEY_LENGTH) key = key.slice(0, MAX_KEY_LENGTH);
    const now = this.now();
    const last = this.#seen.get(key);
    if (last !== undefined && now - last < this.quietMs) return false;
    this.#seen.delete(key);
    this.#seen.set(key, now);
    if (this.#seen.size > this.maxKeys) this.#seen.delete(this.#seen.keys().next().value!);
    return true;
  }
}
