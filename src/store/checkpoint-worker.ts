/**
 * [D-2] The WAL checkpoint in its own thread. A checkpoint copies the WAL into the database file and
 * fsyncs it: ~6 ms for 1,000 pages on this machine's disk, tens of ms on an SD card, a stall of every
 * MQTT and HomeKit event when it runs on the event loop (issue 13: it was the load test's p99).
 * PASSIVE never waits for the hub's writer and never blocks it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export type CheckpointMessage = 'wrote' | 'close';

const { file, delayMs } = workerData as { file: string; delayMs: number };
const db = new Database(file, { fileMustExist: true, timeout: 5000 });
let timer: NodeJS.Timeout | undefined;

const checkpoint = () => {
  timer = undefined;
  db.pragma('wal_checkpoint(PASSIVE)');
};

parentPort!.on('message', (message: CheckpointMessage) => {
  if (message === 'wrote') {
    // Armed by the first write after a quiet spell: an idle hub has no timer here.
    timer ??= setTimeout(checkpoint, delayMs);
    return;
  }
  clearTimeout(timer);
  checkpoint();
  db.close();
  parentPort!.close();
});
