/**
 * [D-2] Moves the hub's WAL checkpoints off the event loop (see checkpoint-worker.ts). The batch writers
 * say when they wrote; the thread, started on the first write, checkpoints a moment later. While it
 * runs, SQLite's own checkpoint on the hub's connection stays as a safety net at ten times the usual
 * WAL size; while it does not (quiet hub, or the thread failed), SQLite checkpoints as usual.
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
  /** The thread ends after this long without writes. */
  idleMs: number;
}

export class WalCheckpointer {
  #worker: Worker | undefined;
  #stopped = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly timing: CheckpointTiming = { delayMs: 1000, idleMs: 30_000 },
  ) {}

  /** Called after a batch commit. */
  wrote(): void {
    if (this.#stopped) return;
    (this.#worker ??= this.#start()).postMessage('wrote' satisfies CheckpointMessage);
  }

  /** Whether the checkpoint thread runs now (tests). */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const worker = this.#worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close' satisfies CheckpointMessage);
    const deadline = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(deadline);
  }

  #start(): Worker {
    const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { file: this.db.name, ...this.timing } });
    worker.unref();
    worker.on('error', (error) =>
      this.log.warn({ err: error.message }, 'the WAL checkpoint thread failed: SQLite checkpoints on the hub thread until the next write'),
    );
    worker.on('exit', () => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
    });
    this.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES * 10}`);
    return worker;
  }
}
