/**
 * Slows password guessing over MQTT without locking the owner out ([S-2]). Keyed by source address,
 * never by account: guesses for an id must not make that id's owner wait (issue 10, finding 5: 20 wrong
 * passwords in flight for one id kept the real device out for 99 s).
 *
 * - An address with no recent failure runs up to two attempts at once (honest devices behind one NAT).
 * - After a failure the address is *suspect*: its attempts run one at a time, and each failure holds the
 *   address's turn for a delay that doubles per recent failure up to a cap. Failures are forgotten
 *   after a quiet period.
 * - Suspect attempts from every address share one global lane: guessers on many addresses get one
 *   password check at a time between them.
 * - At most `MAX_WAITING` attempts wait per address; more are refused at once.
 * A password that already verified since the hub started never gets here (known-passwords.ts).
 */
import { DEFAULT_THROTTLE, failureDelay, type ThrottleOptions } from './auth-throttle.js';

const HONEST_CONCURRENCY = 2;
const MAX_WAITING = 64;
const MAX_TRACKED = 10_000;

interface AddressState {
  failures: number;
  lastFailure: number;
  running: number;
  waiting: Array<() => void>;
}

export class LoginThrottle {
  readonly #addresses = new Map<string, AddressState>();
  #suspectLane: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: ThrottleOptions = DEFAULT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Runs `attempt` in `address`'s turn; it returns false for a failure (a wrong password), which is
   * then held for its penalty. Resolves false, without running it, when too many attempts from that
   * address are waiting already.
   */
  async run(address: string, attempt: () => Promise<boolean>): Promise<boolean> {
    const state = this.#state(address);
    if (!(await this.#enter(state))) return false;
    try {
      const ok = this.#suspect(state) ? await this.#inSuspectLane(attempt) : await attempt();
      if (!ok) {
        const now = this.now();
        state.failures = now - state.lastFailure > this.options.forgetAfterMs ? 1 : state.failures + 1;
        state.lastFailure = now;
        await new Promise((r) => setTimeout(r, failureDelay(state.failures, this.options)));
      }
      return true;
    } finally {
      this.#leave(state);
    }
  }

  #suspect(state: AddressState): boolean {
    return state.failures > 0 && this.now() - state.lastFailure <= this.options.forgetAfterMs;
  }

  #limit(state: AddressState): number {
    return this.#suspect(state) ? 1 : HONEST_CONCURRENCY;
  }

  #enter(state: AddressState): Promise<boolean> {
    if (state.running < this.#limit(state) && state.waiting.length === 0) {
      state.running++;
      return Promise.resolve(true);
    }
    if (state.waiting.length >= MAX_WAITING) return Promise.resolve(false);
    return new Promise((resolve) =>
      state.waiting.push(() => {
        state.running++;
        resolve(true);
      }),
    );
  }

  #leave(state: AddressState): void {
    state.running--;
    while (state.running < this.#limit(state) && state.waiting.length > 0) state.waiting.shift()!();
  }

  async #inSuspectLane(attempt: () => Promise<boolean>): Promise<boolean> {
    const ahead = this.#suspectLane;
    let release!: () => void;
    this.#suspectLane = new Promise((resolve) => (release = resolve));
    await ahead;
    try {
      return await attempt();
    } finally {
      release();
    }
  }

  #state(address: string): AddressState {
    let state = this.#addresses.get(address);
    if (!state) {
      if (this.#addresses.size >= MAX_TRACKED) this.#evict();
      state = { failures: 0, lastFailure: 0, running: 0, waiting: [] };
      this.#addresses.set(address, state);
    }
    return state;
  }

  /** Drops idle addresses with no recent failure: bounded memory under a spray of addresses. */
  #evict(): void {
    for (const [address, state] of this.#addresses) {
      if (state.running === 0 && state.waiting.length === 0 && !this.#suspect(state)) this.#addresses.delete(address);
    }
    // All suspect or busy: forget the oldest (its attempts in flight keep their own state).
    if (this.#addresses.size >= MAX_TRACKED) this.#addresses.delete(this.#addresses.keys().next().value!);
  }
}
