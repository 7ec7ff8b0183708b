/**
 * OTA progress for people: one bar per device job (and a total when there are several), moving with the
 * bytes the hub reports on its live stream ([O-26]), with the speed and the time left in human units.
 * On a terminal the bars redraw in place; written to a file or a pipe, a line when a bar has news.
 * Bars go to stderr: stdout keeps the result (and `--json` turns the bars off).
 */
import cliProgress from 'cli-progress';
import { formatSize } from '../ota/file-size.js';
import type { Job } from '../store/ota-store.js';
import { printable } from './table.js';

/** Seconds for people: "8 s", "2 min 5 s", "1 h 3 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
}

/** The speed over the last few seconds of samples: a stall shows as it happens, not averaged away. */
export class Rate {
  readonly #samples: Array<{ at: number; bytes: number }> = [];
  constructor(private readonly windowMs = 5000) {}

  add(bytes: number, at = Date.now()): void {
    const last = this.#samples.at(-1);
    if (last && bytes < last.bytes) this.#samples.length = 0; // a new file or a retry starts over
    this.#samples.push({ at, bytes });
    while (this.#samples.length > 2 && at - this.#samples[0]!.at > this.windowMs) this.#samples.shift();
  }

  /** Bytes per second, or undefined before two samples apart in time. */
  perSecond(): number | undefined {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at - first.at < 200) return undefined;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }
}

/** The payload a bar's line shows: done/size, speed, time left, what the job does now. */
export function describeProgress(bytes: number, total: number, perSecond: number | undefined, done: boolean): Record<string, string> {
  const speed = perSecond === undefined ? '-' : `${formatSize(Math.round(perSecond))}/s`;
  // Rounded up: "0 s left" while bytes are still on their way would be a small lie.
  const left = done ? 'done' : perSecond && perSecond > 0 ? `${formatDuration(Math.ceil((total - bytes) / perSecond))} left` : '- left';
  return { done: formatSize(bytes), size: formatSize(total), speed, left };
}

const FORMAT = ' {label} {bar} {percentage}% | {done} / {size} | {speed} | {left} | {step}';
const BAR_SIZE = 20;

/** A bar's line as cli-progress draws it (shades_classic), for the plain-text view. */
export function barLine(label: string, bytes: number, total: number, values: Record<string, string>): string {
  const ratio = Math.min(1, Math.max(0, bytes / total));
  const filled = Math.round(ratio * BAR_SIZE);
  const bar = '\u2588'.repeat(filled) + '\u2591'.repeat(BAR_SIZE - filled);
  return ` ${label} ${bar} ${Math.round(ratio * 100)}% | ${values.done} / ${values.size} | ${values.speed} | ${values.left} | ${values.step ?? ''}`;
}

/**
 * When the plain-text view writes a bar's line: its first sight, each further tenth of the bytes, a
 * quiet minute's worth of nothing new (a stall shows), and its end. A rollout of 200 devices writes
 * ~12 lines per device, not 200 lines a second.
 */
export class LineSchedule {
  readonly #last = new Map<string, { tenth: number; at: number; finished: boolean }>();
  constructor(private readonly quietMs = 10_000) {}

  due(key: string, bytes: number, total: number, finished: boolean, at = Date.now()): boolean {
    const tenth = Math.floor((Math.min(bytes, total) / Math.max(1, total)) * 10);
    const last = this.#last.get(key);
    const due = !last || (finished && !last.finished) || tenth > last.tenth || (!finished && at - last.at >= this.quietMs);
    if (due) this.#last.set(key, { tenth, at, finished });
    return due;
  }
}

interface BarState {
  label: string;
  rate: Rate;
  bytes: number;
  total: number;
  finished: boolean;
  values: Record<string, string>;
  bar?: cliProgress.SingleBar;
}

/**
 * One bar per job, plus a total for a rollout. On a terminal the bars redraw in place, and a finished
 * job's bar folds into one line above them, so only the jobs under way take rows. Written to a file
 * or a pipe, each bar is a line when it has something new (LineSchedule).
 */
export class TransferBars {
  readonly #multi: cliProgress.MultiBar | undefined;
  readonly #bars = new Map<number, BarState>();
  readonly #totalRate = new Rate();
  #totalBar: cliProgress.SingleBar | undefined;
  readonly #width: number;
  readonly #schedule = new LineSchedule();
  #endedShown = 0;

  /** `labels`: the devices' names, to align the bars; `withTotal`: a total bar over all jobs (a rollout). */
  constructor(
    labels: string[],
    private readonly withTotal: boolean,
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
    private readonly clock: () => number = Date.now,
  ) {
    this.#width = Math.min(24, Math.max(5, ...labels.map((l) => l.length)));
    if (stream.isTTY === true)
      this.#multi = new cliProgress.MultiBar(
        {
          format: FORMAT,
          stream: stream as NodeJS.WriteStream,
          hideCursor: true,
          barsize: BAR_SIZE,
          clearOnComplete: false,
          stopOnComplete: false,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      );
  }

  #label(text: string): string {
    return text.length > this.#width ? `${text.slice(0, this.#width - 1)}…` : text.padEnd(this.#width);
  }

  /** A job's new state from the stream. */
  update(job: Job): void {
    if (!job.progress) return;
    const { bytes, bytesTotal, step } = job.progress;
    const total = Math.max(1, bytesTotal);
    let entry = this.#bars.get(job.id);
    if (!entry) {
      entry = { label: this.#label(job.device), rate: new Rate(), bytes: 0, total, finished: false, values: {} };
      this.#bars.set(job.id, entry);
    }
    if (entry.finished) return; // folded already; a late event changes nothing
    entry.rate.add(bytes, this.clock());
    entry.bytes = bytes;
    entry.total = total;
    entry.finished = !['queued', 'running'].includes(job.state);
    const shown = entry.finished && job.state !== 'succeeded' ? `${job.state}${job.message ? `: ${job.message}` : ''}` : step;
    entry.values = { step: printable(shown.replace(/\s+/g, ' ')).slice(0, 60), ...describeProgress(bytes, total, entry.rate.perSecond(), entry.finished) };
    if (this.#multi) this.#draw(entry);
    else if (this.#worthALine(entry) && this.#schedule.due(`job ${job.id}`, bytes, total, entry.finished, this.clock()))
      this.#line(entry.label, bytes, total, entry.values);
    this.#updateTotal();
  }

  #draw(entry: BarState): void {
    const multi = this.#multi!;
    if (!entry.bar) {
      // The total stays the last line: taken out, and made again below the new bar.
      if (this.#totalBar) multi.remove(this.#totalBar);
      this.#totalBar = undefined;
      entry.bar = multi.create(entry.total, 0, { label: entry.label, ...entry.values });
    }
    entry.bar.setTotal(entry.total);
    entry.bar.update(entry.bytes, entry.values);
    if (entry.finished) {
      multi.remove(entry.bar);
      multi.log(`${barLine(entry.label, entry.bytes, entry.total, entry.values)}\n`);
    }
  }

  /** Bytes moving without a speed yet (a fraction of a second in) say less than the next line will. */
  #worthALine(entry: BarState): boolean {
    return entry.finished || entry.bytes === 0 || entry.values.speed !== '-';
  }

  #line(label: string, bytes: number, total: number, values: Record<string, string>): void {
    this.stream.write(`${barLine(label, bytes, total, values)}\n`);
  }

  #updateTotal(): void {
    if (!this.withTotal || this.#bars.size === 0) return;
    const entries = [...this.#bars.values()];
    const bytes = entries.reduce((sum, e) => sum + e.bytes, 0);
    const total = Math.max(
      1,
      entries.reduce((sum, e) => sum + e.total, 0),
    );
    const ended = entries.filter((e) => e.finished).length;
    this.#totalRate.add(bytes, this.clock());
    const values = {
      step: `${ended}/${entries.length} devices done`,
      ...describeProgress(bytes, total, this.#totalRate.perSecond(), ended === entries.length),
    };
    if (!this.#multi) {
      // `||` after the call: the schedule records every line it is asked about.
      if (this.#schedule.due('total', bytes, total, ended === entries.length, this.clock()) || ended !== this.#endedShown)
        this.#line(this.#label('total'), bytes, total, values);
      this.#endedShown = ended;
      return;
    }
    this.#totalBar ??= this.#multi.create(total, 0, { label: this.#label('total'), step: '' });
    this.#totalBar.setTotal(total);
    this.#totalBar.update(bytes, values);
  }

  stop(): void {
    this.#multi?.stop();
  }
}
