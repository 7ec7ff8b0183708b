/**
 * Slows password guessing at the web login (MQTT logins use login-throttle.ts, keyed by address only,
 * and reuse this file's delays). Attempts for one account, and from one address, run one at a time; a
 * failed attempt holds its turn for a delay that doubles with each recent failure (up to a cap).
 * A correct password is never delayed by its own key, so the real device gets in as soon as the
 * guesses ahead of it have run, and failures are forgotten after a quiet period.
 */
export interface ThrottleOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures older than this no longer count. */
  forgetAfterMs: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { baseDelayMs: 100, maxDelayMs: 5000, forgetAfterMs: 15 * 60_000 };
const MAX_TRACKED = 10_000;

interface KeyState {
  failures: number;
  lastFailure: number;
  queue: Promise<void>;
}

export function failureDelay(failures: number, options: ThrottleOptions = DEFAULT_THROTTLE): number {
  if (failures <= 0) return 0;
  return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(failures - 1, 30));
}

export class AuthThrottle {
  readonly #keys = new Map<string, KeyState>();

  constructor(
    private readonly options: ThrottleOptions = DEFAULT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Runs `attempt` in turn for all `keys`; when it returns false, waits the penalty before the next
   * attempt on those keys may run. Resolves with the attempt's result. `lenientKeys` (an address) join
   * the queue only once they have failures: many devices behind one address (NAT, a simulator) must
   * not wait on each other's honest logins.
   */
  async run(keys: string[], attempt: () => Promise<boolean>, lenientKeys: string[] = []): Promise<boolean> {
    const now = this.now();
    const strict = lenientKeys.filter((key) => {
      const state = this.#keys.get(key);
      return state !== undefined && state.failures > 0 && now - state.lastFailure <= this.options.forgetAfterMs;
    });
    const states = [...new Set([...keys, ...strict])].sort().map((key) => this.#state(key));
    const lenient = lenientKeys.filter((key) => !strict.includes(key)).map((key) => this.#state(key));
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    const ahead = Promise.all(states.map((s) => s.queue));
    for (const s of states) s.queue = turn;
    await ahead;
    try {
      const ok = await attempt();
      if (ok) {
        for (const s of states) s.failures = 0;
        return true;
      }
      const failedAt = this.now();
      for (const s of [...states, ...lenient]) {
        s.failures = failedAt - s.lastFailure > this.options.forgetAfterMs ? 1 : s.failures + 1;
        s.lastFailure = failedAt;
      }
      await new Promise((r) => setTimeout(r, Math.max(...[...states, ...lenient].map((s) => failureDelay(s.failures, this.options)))));
      return false;
    } finally {
      release();
    }
  }

  #state(key: string): KeyState {
    let state = this.#keys.get(key);
    if (!state) {
      if (this.#keys.size >= MAX_TRACKED) this.#evict();
      state = { failures: 0, lastFailure: 0, queue: Promise.resolve() };
      this.#keys.set(key, state);
    }
    return state;
  }

  /** Drops keys with no recent failure; bounded memory under a spray of ids or addresses. */
  #evict(): void {
    const now = this.now();
    for (const [key, state] of this.#keys) {
      if (state.failures === 0 || now - state.lastFailure > this.options.forgetAfterMs) this.#keys.delete(key);
    }
    if (this.#keys.size >= MAX_TRACKED) this.#keys.delete(this.#keys.keys().next().value!);
  }
}
