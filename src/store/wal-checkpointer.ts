/**
 * [D-2] Moves the hub's WAL checkpoints off the event loop (see checkpoint-worker.ts). The batch writers
 * say when they wrote; the thread checkpoints a moment later. SQLite's own checkpoint on the hub's
 * connection stays as a safety net, at a WAL ten times the usual size, should the thread fail.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger.js';
import type { CheckpointMessage } from './checkpoint-worker.js';
import type { Db } from './database.js';

/** SQLite's default: the connection that commits past this many WAL pages checkpoints, synchronously. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export class WalCheckpointer {
  #worker: Worker | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly delayMs = 1000,
  ) {}

  start(): void {
    const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { file: this.db.name, delayMs: this.delayMs } });
    worker.unref();
    worker.on('error', (error) => {
      this.log.warn({ err: error.message }, 'the WAL checkpoint thread failed: checkpoints run on the hub thread again');
      this.#fallBack();
    });
    worker.on('exit', () => {
      if (this.#worker === worker) this.#fallBack();
    });
    this.#worker = worker;
    this.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES * 10}`);
  }

  /** Called after a batch commit. */
  wrote(): void {
    this.#worker?.postMessage('wrote' satisfies CheckpointMessage);
  }

  async stop(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = undefined;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close' satisfies CheckpointMessage);
    const deadline = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(deadline);
    this.#fallBack();
  }

  #fallBack(): void {
    this.#worker = undefined;
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
  }
}
