/**
 * OTA progress for people: one bar per device job (and a total when there are several), moving with the
 * bytes the hub reports on its live stream ([O-26]), with the speed and the time left in human units.
 * On a terminal the bars redraw in place; written to a file or a pipe, a line per bar every second.
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

export class TransferBars {
  readonly #multi: cliProgress.MultiBar;
  readonly #bars = new Map<number, { bar: cliProgress.SingleBar; rate: Rate; bytes: number; total: number; finished: boolean }>();
  readonly #totalRate = new Rate();
  #totalBar: cliProgress.SingleBar | undefined;
  readonly #width: number;

  /** `labels`: the devices' names, to align the bars; `withTotal`: a total bar over all jobs (a rollout). */
  constructor(
    labels: string[],
    private readonly withTotal: boolean,
    stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.#width = Math.min(24, Math.max(5, ...labels.map((l) => l.length)));
    this.#multi = new cliProgress.MultiBar(
      {
        format: FORMAT,
        stream,
        hideCursor: stream.isTTY === true,
        barsize: 20,
        noTTYOutput: true,
        notTTYSchedule: 1000,
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
      // The total stays the last line: taken out, and made again below the new bar.
      if (this.#totalBar) this.#multi.remove(this.#totalBar);
      this.#totalBar = undefined;
      const bar = this.#multi.create(total, 0, { label: this.#label(job.device), step, ...describeProgress(0, total, undefined, false) });
      entry = { bar, rate: new Rate(), bytes: 0, total, finished: false };
      this.#bars.set(job.id, entry);
    }
    entry.rate.add(bytes);
    entry.bytes = bytes;
    entry.total = total;
    entry.finished = !['queued', 'running'].includes(job.state);
    entry.bar.setTotal(total);
    const shown = entry.finished && job.state !== 'succeeded' ? `${job.state}${job.message ? `: ${job.message}` : ''}` : step;
    entry.bar.update(bytes, {
      step: printable(shown.replace(/\s+/g, ' ')).slice(0, 60),
      ...describeProgress(bytes, total, entry.rate.perSecond(), entry.finished),
    });
    this.#updateTotal();
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
    this.#totalBar ??= this.#multi.create(total, 0, { label: this.#label('total'), step: '' });
    this.#totalRate.add(bytes);
    this.#totalBar.setTotal(total);
    this.#totalBar.update(bytes, {
      step: `${ended}/${entries.length} devices done`,
      ...describeProgress(bytes, total, this.#totalRate.perSecond(), ended === entries.length),
    });
  }

  stop(): void {
    this.#multi.stop();
  }
}
