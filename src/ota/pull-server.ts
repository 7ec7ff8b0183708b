/**
 * The pull transfer's one-shot TCP server [O-1]: serves the raw bytes to the first connection from the
 * device's address, refuses (and logs) any other, and gives up after a timeout.
 */
import { createServer, type Socket } from 'node:net';
import type { Logger } from '../log/logger.js';

export interface PullServer {
  port: number;
  /** Resolves when the bytes were handed over (true) or the server gave up (false). */
  served: Promise<boolean>;
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
}): Promise<PullServer> {
  const { bytes, allowedAddress, log, deviceId } = options;
  let settle!: (ok: boolean) => void;
  const served = new Promise<boolean>((resolve) => (settle = resolve));
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
    socket.end(bytes, () => settle(true));
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
    close: () => {
      done = true;
      clearTimeout(timer);
      server.close();
      settle(false);
    },
  };
}
