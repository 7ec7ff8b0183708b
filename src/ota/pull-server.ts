/**
 * The pull transfer's one-shot TCP server [O-1]: serves the raw bytes to the first connection from the
 * device's address, refuses (and logs) any other, and gives up after a timeout. The bytes go in chunks,
 * each handed on when the socket took the one before: the count of bytes the device's connection took
 * is the transfer's progress [O-26], and the moments the bytes began and ended to move are its timing.
 */
import { createServer, type Socket } from 'node:net';
import type { Logger } from '../log/logger.js';

/** What the socket is handed at once: small enough that the count moves with the device's reading. */
const CHUNK = 16 * 1024;

/** When the transfer's moments happened (`performance.now()`), as the hub sees them; absent: not (yet). */
export interface PullMarks {
  /** The device's connection was accepted. */
  connectedAt?: number;
  /** The first chunk was handed to the socket. */
  firstByteAt?: number;
  /** The socket took the last byte (and the end of the stream). */
  lastByteAt?: number;
  /** The device closed its side: it read everything there was. */
  doneAt?: number;
}

export interface PullServer {
  port: number;
  /** Resolves when the bytes were handed over (true) or the server gave up (false). */
  served: Promise<boolean>;
  /** When the transfer's moments happened: filled in as they happen. */
  readonly marks: PullMarks;
  close(): void;
}

export function normalizeAddress(address: string | undefined): string | undefined {
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}

export async function servePull(options: {
  bytes: Buffer;
  host: string;
  allowedAddress: string;
  timeoutMs: number;
  log: Logger;
  deviceId: string;
  /** Told the count of bytes the device's connection took so far, after each chunk. */
  onBytes?: (sent: number) => void;
}): Promise<PullServer> {
  const { bytes, allowedAddress, log, deviceId, onBytes } = options;
  let settle!: (ok: boolean) => void;
  const served = new Promise<boolean>((resolve) => (settle = resolve));
  const marks: PullMarks = {};
  let done = false;
  const server = createServer((socket: Socket) => {
    socket.on('error', () => settle(false));
    const from = normalizeAddress(socket.remoteAddress);
    if (done || from !== normalizeAddress(allowedAddress)) {
      log.warn({ device: deviceId, from, expected: allowedAddress }, 'OTA transfer connection from an unexpected address refused');
      socket.destroy();
      return;
    }
    done = true;
    clearTimeout(timer);
    server.close();
    marks.connectedAt = performance.now();
    // The device sends nothing; reading lets its close (it read everything) be seen.
    const read = () => (marks.doneAt ??= performance.now());
    socket
      .on('end', read)
      .on('close', () => {
        read();
        if (marks.lastByteAt === undefined) settle(false); // closed before it had everything
      })
      .resume();
    send(socket, bytes, marks, onBytes, settle);
  });
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    server.close();
    settle(false);
  }, options.timeoutMs);
  timer.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: Error) => {
      clearTimeout(timer);
      reject(new Error(`cannot open the OTA transfer server on ${options.host}: ${error.message}`));
    });
    server.listen(0, options.host, () => resolve());
  });
  // After listening, an error (rare: the socket layer) ends this transfer, never the process.
  server.on('error', (error) => {
    log.warn({ device: deviceId, err: error.message }, 'OTA transfer server failed');
    done = true;
    clearTimeout(timer);
    server.close();
    settle(false);
  });
  return {
    port: (server.address() as { port: number }).port,
    served,
    marks,
    close: () => {
      done = true;
      clearTimeout(timer);
      server.close();
      settle(false);
    },
  };
}

/** Hands the bytes to the socket a chunk at a time, the next when the socket took the one before. */
function send(socket: Socket, bytes: Buffer, marks: PullMarks, onBytes: ((sent: number) => void) | undefined, settle: (ok: boolean) => void): void {
  let sent = 0;
  const next = (error?: Error | null) => {
    if (error || socket.destroyed) return settle(false); // the socket's `error` says why
    if (sent > 0) onBytes?.(sent);
    if (sent >= bytes.length) {
      socket.end(() => {
        marks.lastByteAt = performance.now();
        settle(true);
      });
      return;
    }
    const chunk = bytes.subarray(sent, sent + CHUNK);
    sent += chunk.length;
    marks.firstByteAt ??= performance.now();
    socket.write(chunk, next);
  };
  next();
}
