/**
 * One timer for the earliest of several deadlines. It exists only while something is due and wakes
 * the hub once, at that time, instead of a poll tick that mostly finds nothing to do (issue 13: an
 * idle hub does not wake). Callers ask to be woken by a time; the owner re-arms from what is still due
 * each time it fires.
 */

/** setTimeout's longest delay; a later deadline is reached by firing early and re-arming. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class Alarm {
  #timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms since the epoch); Infinity when none is armed. */
  #at = Infinity;

  constructor(
    private readonly fire: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Makes sure the alarm goes off by `at` (ms since the epoch): an earlier one stays, a later one is brought forward. */
  atOrBefore(at: number): void {
    if (Number.isNaN(at) || at >= this.#at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, at - this.now()));
    // unref'd: a pending deadline never keeps the process alive.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = Infinity;
      this.fire();
    }, delay).unref();
  }

  /** When it goes off next, or undefined if nothing is due. */
  get due(): number | undefined {
    return this.#at === Infinity ? undefined : this.#at;
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }
}
