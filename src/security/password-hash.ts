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

let worker: Worker | undefined;
let nextId = 0;
const waiting = new Map<number, { resolve: (key: Buffer) => void; reject: (error: Error) => void }>();

/** Hashes run one at a time in a dedicated thread (see hash-worker.ts for why). */
function scrypt(password: string, salt: Buffer, keyLength: number, options: { N: number; r: number; p: number }): Promise<Buffer> {
  if (!worker) {
    worker = new Worker(new URL('./hash-worker.js', import.meta.url));
    worker.on('message', (answer: { id: number; key?: string; error?: string }) => {
      const pending = waiting.get(answer.id);
      waiting.delete(answer.id);
      // An idle hashing thread must not keep a finished CLI command (or a stopping hub) alive.
      if (waiting.size === 0) worker?.unref();
      if (answer.key !== undefined) pending?.resolve(Buffer.from(answer.key, 'base64'));
      else pending?.reject(new Error(answer.error ?? 'scrypt failed'));
    });
    worker.on('error', (error) => {
      for (const pending of waiting.values()) pending.reject(error);
      waiting.clear();
      worker = undefined;
    });
  }
  const id = nextId++;
  worker.ref();
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    worker!.postMessage({ id, password, salt: salt.toString('base64'), keyLength, ...options });
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, { N, r: R, p: P });
  return [PREFIX, N, R, P, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [prefix, n, r, p, salt, key] = stored.split('$');
  if (prefix !== PREFIX || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A password for `device add` / `user add`: 24 characters from a URL-safe alphabet (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
