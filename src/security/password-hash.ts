/**
 * Passwords are kept only as salted scrypt hashes, compared in constant time. The parameters are part
 * of the stored string so they can be raised later without invalidating old hashes.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const N = 16384;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
const PREFIX = 'scrypt';

/** What the hashing thread is asked (hash-worker.ts). */
export interface HashRequest {
  id: number;
  password: string;
  salt: string;
  keyLength: number;
  N: number;
  r: number;
  p: number;
}

interface Job extends HashRequest {
  resolve: (key: Buffer) => void;
  reject: (error: Error) => void;
}

let worker: Worker | undefined;
/** Ends the hashing thread after a quiet spell: devices log in when they connect, and a connected fleet leaves it idle for hours. */
let idleTimer: NodeJS.Timeout | undefined;
let idleMs = 30_000;

/** Whether the hashing thread runs now, and how long it waits for work before it ends (tests). */
export const hashThread = {
  get running(): boolean {
    return worker !== undefined;
  },
  set idleMs(ms: number) {
    idleMs = ms;
  },
};
let nextId = 0;
let running: Job | undefined;
/**
 * Checking a password someone logs in with goes ahead of hashing a new one: a storm of new ids
 * registering must not keep a known device waiting behind their hashes (issue 10, finding 5).
 */
const queues = { verify: [] as Job[], hash: [] as Job[] };

function startWorker(): Worker {
  const started = new Worker(new URL('./hash-worker.js', import.meta.url));
  started.on('message', (answer: { id: number; key?: string; error?: string }) => {
    const job = running;
    if (!job || job.id !== answer.id) return;
    running = undefined;
    if (answer.key !== undefined) job.resolve(Buffer.from(answer.key, 'base64'));
    else job.reject(new Error(answer.error ?? 'scrypt failed'));
    next();
  });
  started.on('exit', () => {
    if (worker === started) worker = undefined;
  });
  started.on('error', (error) => {
    worker = undefined;
    const job = running;
    running = undefined;
    job?.reject(error);
    next();
  });
  return started;
}

/** Hands the next job to the hashing thread; one at a time, so priorities hold. */
function next(): void {
  if (running) return;
  const job = queues.verify.shift() ?? queues.hash.shift();
  if (!job) {
    // An idle hashing thread must not keep a finished CLI command (or a stopping hub) alive.
    worker?.unref();
    const idle = worker;
    if (idle) {
      idleTimer = setTimeout(() => {
        worker = undefined; // the next job starts a new thread, never one on its way out
        void idle.terminate();
      }, idleMs).unref();
    }
    return;
  }
  clearTimeout(idleTimer);
  running = job;
  worker ??= startWorker();
  worker.ref();
  const { resolve: _resolve, reject: _reject, ...request } = job;
  worker.postMessage(request);
}

/** scrypt in one dedicated thread (see hash-worker.ts for why). */
function scrypt(
  priority: keyof typeof queues,
  password: string,
  salt: Buffer,
  keyLength: number,
  options: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    queues[priority].push({ id: nextId++, password, salt: salt.toString('base64'), keyLength, ...options, resolve, reject });
    next();
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt('hash', password, salt, KEY_LENGTH, { N, r: R, p: P });
  return [PREFIX, N, R, P, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [prefix, n, r, p, salt, key] = stored.split('$');
  if (prefix !== PREFIX || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const actual = await scrypt('verify', password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A password for `device add` / `user add`: 24 characters from a URL-safe alphabet (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
