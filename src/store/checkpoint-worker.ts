/**
 * [D-2] The WAL checkpoint in its own thread. A checkpoint copies the WAL into the database file and
 * fsyncs it: ~6 ms for 1,000 pages on this machine's disk, tens of ms on an SD card, a stall of every
 * MQTT and HomeKit event when it runs on the event loop (issue 13: it was the load test's p99).
 * PASSIVE never waits for the hub's writer and never blocks it. The thread ends after a quiet spell
 * (its memory is the hub's for nothing while no values arrive); the hub starts it again on a write.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export type CheckpointMessage = 'wrote' | 'close';

const { file, delayMs, idleMs } = workerData as { file: string; delayMs: number; idleMs: number };
const db = new Database(file, { fileMustExist: true, timeout: 5000 });
let due: NodeJS.Timeout | undefined;
let idle: NodeJS.Timeout | undefined;

const end = () => {
  clearTimeout(due);
  clearTimeout(idle);
  db.pragma('wal_checkpoint(PASSIVE)');
  db.close();
  parentPort!.close();
};

const checkpoint = () => {
  due = undefined;
  db.pragma('wal_checkpoint(PASSIVE)');
  idle = setTimeout(end, idleMs);
};

parentPort!.on('message', (message: CheckpointMessage) => {
  if (message === 'close') return end();
  clearTimeout(idle);
  // Armed by the first write after a checkpoint: a hub with nothing to write has no timer here.
  due ??= setTimeout(checkpoint, delayMs);
});
