/**
 * scrypt in one dedicated thread. Each hash works in 16 MiB; run on libuv's pool it lands in up to four
 * threads whose glibc arenas keep that memory, growing the hub by ~60 MB for good.
 */
import { scryptSync } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { HashRequest } from './password-hash.js';

parentPort!.on('message', (request: HashRequest) => {
  try {
    const key = scryptSync(request.password, Buffer.from(request.salt, 'base64'), request.keyLength, {
      N: request.N,
      r: request.r,
      p: request.p,
      maxmem: 256 * request.N * request.r,
    });
    parentPort!.postMessage({ id: request.id, key: key.toString('base64') });
  } catch (error) {
    parentPort!.postMessage({ id: request.id, error: (error as Error).message });
  }
});
