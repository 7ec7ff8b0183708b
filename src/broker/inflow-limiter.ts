/**
 * [P-18] A token bucket per client. aedes overflows its stack under an unpaced flood of QoS 0 publishes, and
 * one noisy device must not starve the others: past the burst, the client is cut off.
 *
 * A bucket outlives its connection: a client cut off for flooding that reconnects at once must not
 * come back with a fresh burst (it did: 20 reconnects took 9,000 messages in 0.6 s past a 100/s limit).
 * A full bucket is the same as no bucket, so full ones are what is dropped when the table is full.
 */
const MAX_CLIENTS = 10_000;

export class InflowLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
    private readonly maxClients = MAX_CLIENTS,
  ) {}

  allow(clientId: string): boolean {
    const now = this.now();
    let bucket = this.#buckets.get(clientId);
    if (!bucket) {
      if (this.#buckets.size >= this.maxClients) this.#evict(now);
      bucket = { tokens: this.burst, at: now };
      this.#buckets.set(clientId, bucket);
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Drops the buckets that have refilled (forgetting them changes nothing), else the oldest. */
  #evict(now: number): void {
    for (const [id, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond >= this.burst) this.#buckets.delete(id);
    }
    if (this.#buckets.size >= this.maxClients) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
