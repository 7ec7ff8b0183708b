/**
 * [S-2] The password each account last logged in with, kept as HMAC-SHA256 under a random key made at
 * start and held only in memory, and bound to the account's stored hash. A device that has logged in
 * since the hub started is checked with one HMAC, at once, instead of a scrypt run queued behind
 * strangers' hashing and guesses: so no one else's traffic can keep it out (issue 10, finding 5).
 * Never persisted or logged; the key dies with the process. A reset or a new registration changes the
 * stored hash, which voids the entry.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export class KnownPasswords {
  readonly #key = randomBytes(32);
  readonly #known = new Map<string, { secret: string; digest: Buffer }>();

  /** Only accounts that logged in are kept; the bound covers a store that grows while the hub runs. */
  constructor(private readonly maxEntries = 100_000) {}

  /** `password` just verified against (or was just stored as) `secret`. */
  remember(name: string, secret: string, password: string): void {
    this.#known.delete(name);
    if (this.#known.size >= this.maxEntries) this.#known.delete(this.#known.keys().next().value!);
    this.#known.set(name, { secret, digest: this.#digest(name, password) });
  }

  /** True when `password` is the one that last verified for `name`, and its stored hash is unchanged. */
  matches(name: string, secret: string, password: string): boolean {
    const entry = this.#known.get(name);
    if (!entry) return false;
    if (entry.secret !== secret) {
      this.#known.delete(name);
      return false;
    }
    return timingSafeEqual(entry.digest, this.#digest(name, password));
  }

  #digest(name: string, password: string): Buffer {
    return createHmac('sha256', this.#key).update(name).update('\0').update(password).digest();
  }
}
