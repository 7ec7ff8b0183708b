/**
 * [O-26] Where a job's time goes: a clock that cuts the job's run into consecutive spans, each the
 * hub's (its own work: reading files, hashing, the store, publishing), the device's (answering a
 * command, reacting to a trigger, hashing and staging after the last byte, rebooting) or the wire's
 * (the bytes on their way, until the device had read them all). The spans add up to the run's time.
 */
import type { JobTiming, TimingWho } from '../store/ota-store.js';
import type { PullMarks } from './pull-server.js';

/** A job's spans kept by name (the sums count every span): consecutive spans of the same name are one. */
const MAX_SPANS = 40;
const HUB = 'the hub';
const WIRE = 'the bytes on the wire';
const TRIGGER = "the trigger, until the device's request";
const AFTER = 'after the last byte, until its report (hashing, staging)';

const round = (ms: number) => Math.round(ms * 100) / 100;

export class JobClock {
  readonly #start: number;
  #at: number;
  readonly #spans: JobTiming['spans'] = [];
  readonly #sums: Record<TimingWho, number> = { hub: 0, device: 0, wire: 0 };
  #firstByteMs: number | undefined;

  /** `now`: the clock the pull server's marks are read on (`performance.now()`). */
  constructor(private readonly now: () => number = () => performance.now()) {
    this.#start = now();
    this.#at = this.#start;
  }

  /** The time from the end of the last span until `at` was `who`'s, doing `what`. */
  #span(who: TimingWho, what: string, at = this.now()): void {
    if (at <= this.#at) return;
    const ms = at - this.#at;
    this.#at = at;
    this.#sums[who] += ms;
    const last = this.#spans.at(-1);
    if (last?.who === who && last.what === what) last.ms += ms;
    else if (this.#spans.length < MAX_SPANS) this.#spans.push({ who, what, ms });
  }

  /** A wait on the device (`what`: the command, the reboot): the time until now was the hub's, the wait is the device's. */
  async device<T>(what: string, wait: Promise<T>): Promise<T> {
    this.#span('hub', HUB);
    try {
      return await wait;
    } finally {
      this.#span('device', what);
    }
  }

  /**
   * A pull transfer from the moment its trigger was handed to the device's connection until now (its
   * report, or the server's end): cut by the pull server's marks into the device's request, the bytes
   * on the wire, and the device's work after them.
   */
  transfer(triggeredAt: number, marks: PullMarks): void {
    this.#span('hub', HUB, triggeredAt);
    if (marks.connectedAt === undefined) return this.#span('device', TRIGGER);
    this.#span('device', TRIGGER, marks.connectedAt);
    if (marks.firstByteAt !== undefined) {
      this.#span('hub', HUB, marks.firstByteAt);
      this.#firstByteMs ??= Math.max(0, marks.firstByteAt - triggeredAt);
    }
    const read = marks.doneAt ?? marks.lastByteAt;
    if (read === undefined) return this.#span('wire', WIRE);
    this.#span('wire', WIRE, read);
    this.#span('device', AFTER);
  }

  /** The run's timing until now (the time since the last wait is the hub's). */
  timing(): JobTiming {
    this.#span('hub', HUB);
    return {
      totalMs: round(this.#at - this.#start),
      hubMs: round(this.#sums.hub),
      deviceMs: round(this.#sums.device),
      wireMs: round(this.#sums.wire),
      ...(this.#firstByteMs === undefined ? {} : { firstByteMs: round(this.#firstByteMs) }),
      spans: this.#spans.map((s) => ({ ...s, ms: round(s.ms) })),
    };
  }
}
