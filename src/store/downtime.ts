/**
 * [D-5] When the hub was not running. A device's silence counts against its TTL only while the hub was
 * there to hear it: after a week with the hub switched off, no device is "silent for a week". The hub
 * notes that it is alive once a minute; at start, the gap since then is recorded as downtime.
 */
import type { StateStore } from './state-store.js';

export const ALIVE_SETTING = 'hub.aliveAt';
export const DOWNTIME_SETTING = 'hub.downtime';
export const HEARTBEAT_MS = 60_000;
/** Enough for years of daily restarts within any sane TTL; older spans are merged into one. */
const MAX_SPANS = 200;

export type Span = readonly [from: number, to: number];

/** How much of [from, to] falls within the spans. */
export function downtimeWithin(spans: readonly Span[], from: number, to: number): number {
  let total = 0;
  for (const [a, b] of spans) total += Math.max(0, Math.min(b, to) - Math.max(a, from));
  return total;
}

export class Downtime {
  #spans: Span[];

  constructor(
    private readonly store: StateStore,
    private readonly now: () => number = Date.now,
    spans: Span[] = [],
  ) {
    this.#spans = spans;
  }

  /** The downtime recorded so far. */
  static async load(store: StateStore, now: () => number = Date.now): Promise<Downtime> {
    return new Downtime(store, now, parseSpans(await store.getSetting(DOWNTIME_SETTING)));
  }

  /**
   * Records the gap since the hub was last alive as downtime. `lastActivity` (e.g. the newest
   * device's last sign) stands in when no heartbeat was ever saved (a data dir from an older mqttkit).
   */
  async start(lastActivity: number | undefined): Promise<Span | undefined> {
    const saved = Number(await this.store.getSetting(ALIVE_SETTING));
    const aliveAt = Number.isFinite(saved) && saved > 0 ? saved : lastActivity;
    const now = this.now();
    let gap: Span | undefined;
    if (aliveAt !== undefined && now > aliveAt) {
      gap = [aliveAt, now];
      this.#spans.push(gap);
      await this.#save();
    }
    await this.heartbeat();
    return gap;
  }

  async heartbeat(): Promise<void> {
    await this.store.setSetting(ALIVE_SETTING, String(this.now()));
  }

  /** Milliseconds of [from, to] during which the hub was not running. */
  within(from: number, to: number): number {
    return downtimeWithin(this.#spans, from, to);
  }

  /** Forgets spans that ended before `oldest` (no device's silence reaches back that far). */
  async prune(oldest: number): Promise<void> {
    const kept = this.#spans.filter(([, to]) => to > oldest);
    if (kept.length !== this.#spans.length) {
      this.#spans = kept;
      await this.#save();
    }
  }

  async #save(): Promise<void> {
    if (this.#spans.length > MAX_SPANS) {
      // Merging the two oldest spans over-counts the uptime between them as downtime: errs on keeping devices.
      const [first, second, ...rest] = this.#spans;
      this.#spans = [[first![0], second![1]], ...rest];
    }
    await this.store.setSetting(DOWNTIME_SETTING, JSON.stringify(this.#spans));
  }
}

function parseSpans(text: string | undefined): Span[] {
  if (!text) return [];
  try {
    const value: unknown = JSON.parse(text);
    if (!Array.isArray(value)) return [];
    return value.filter((s): s is [number, number] => Array.isArray(s) && s.length === 2 && s.every((n) => Number.isFinite(n)) && s[0] <= s[1]);
  } catch {
    return [];
  }
}
