/**
 * A token bucket per client. aedes overflows its stack under an unpaced flood of QoS 0 publishes, and
 * one noisy device must not starve the others: past the burst, the client is cut off.
 */
export class InflowLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  allow(clientId: string): boolean {
    const now = this.now();
    const bucket = this.#buckets.get(clientId) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    this.#buckets.set(clientId, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  forget(clientId: string): void {
    this.#buckets.delete(clientId);
  }
}
