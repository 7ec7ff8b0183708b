/**
 * [D-2] Keeps the hub's WAL checkpoints short, or off the event loop. A checkpoint copies the WAL into the
 * database file and fsyncs it; SQLite's own, at 1,000 pages, took ~6 ms on this machine's disk inside
 * whichever commit crossed the line, a stall of every MQTT and HomeKit event (issue 13: the load test's
 * p99). The batch writers say when they wrote; a moment later one PASSIVE checkpoint runs on its own
 * turn of the event loop, covering a second's pages (~2 ms here). Where the disk makes that slow (an SD
 * card: tens of ms), checkpoints move to a thread of their own (checkpoint-worker.ts) for good: a thread
 * costs ~15 MB, so only a disk that needs it pays. SQLite's own checkpoint on the hub's connection stays
 * as a safety net at ten times its usual size.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger.js';
import type { CheckpointMessage } from './checkpoint-worker.js';
import type { Db } from './database.js';

/** SQLite's default: the connection that commits past this many WAL pages checkpoints, synchronously. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export interface CheckpointTiming {
  /** From the first write after a checkpoint to the next checkpoint. */
  delayMs: number;
  /** A checkpoint on the event loop longer than this is slow… */
  slowMs: number;
  /** …and this many slow ones move checkpoints to the thread. */
  slowCount: number;
  /** The thread ends after this long without writes (a new write starts it again). */
  idleMs: number;
}

export const DEFAULT_CHECKPOINT_TIMING: CheckpointTiming = { delayMs: 1000, slowMs: 4, slowCount: 3, idleMs: 30_000 };

export class WalCheckpointer {
  #worker: Worker | undefined;
  #due: NodeJS.Timeout | undefined;
  #slow = 0;
  #threaded = false;
  #stopped = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly timing: CheckpointTiming = DEFAULT_CHECKPOINT_TIMING,
  ) {
    db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES * 10}`);
  }

  /** Called after a batch commit. Nothing is armed until something is written: an idle hub has no timer here. */
  wrote(): void {
    if (this.#stopped) return;
    if (this.#threaded) (this.#worker ??= this.#startThread()).postMessage('wrote' satisfies CheckpointMessage);
    else this.#due ??= setTimeout(() => this.#checkpointHere(), this.timing.delayMs).unref();
  }

  /** Where checkpoints run now (tests, metrics). */
  get where(): 'event loop' | 'thread' | 'thread (not running)' {
    if (!this.#threaded) return 'event loop';
    return this.#worker ? 'thread' : 'thread (not running)';
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#due);
    const worker = this.#worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close' satisfies CheckpointMessage);
    const deadline = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(deadline);
  }

  #checkpointHere(): void {
    this.#due = undefined;
    if (!this.db.open) return;
    const started = performance.now();
    this.db.pragma('wal_checkpoint(PASSIVE)');
    const ms = performance.now() - started;
    if (ms <= this.timing.slowMs || ++this.#slow < this.timing.slowCount) return;
    this.#threaded = true;
    this.log.info(
      `WAL checkpoints move to a thread of their own: this disk took ${ms.toFixed(1)} ms for one (over ${this.timing.slowMs} ms ${this.#slow} times)`,
    );
  }

  #startThread(): Worker {
    const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { file: this.db.name, delayMs: this.timing.delayMs, idleMs: this.timing.idleMs },
    });
    worker.unref();
    worker.on('error', (error) => {
      this.log.warn({ err: error.message }, 'the WAL checkpoint thread failed: checkpoints run on the hub thread again');
      this.#threaded = false;
      this.#slow = 0;
    });
    worker.on('exit', () => {
      if (this.#worker === worker) this.#worker = undefined;
    });
    return worker;
  }
}
