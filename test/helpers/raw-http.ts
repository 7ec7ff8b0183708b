/**
 * HTTP requests exactly as written: `fetch` normalises paths (`/./`, `..`) and cannot set Host, so
 * tests of path spellings and Host checks go through node:http.
 */
import { Agent, request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RawRequest {
  method?: string;
  /** Sent as is: `/%61pi/x`, `//api`, `http://host/api/x` (absolute form)… */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Gives up (and rejects) after this long; default 5 s. */
  timeoutMs?: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** Reads at most this much of a body; a stream (SSE) is cut after its first chunk. */
const MAX_BODY = 256 * 1024;

export function rawRequest(port: number, options: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: {
          host: `127.0.0.1:${port}`,
          ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}),
          ...options.headers,
        },
        agent,
        setHost: false,
      },
      (res) => {
        let body = '';
        const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        const stream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
          if (stream || body.length > MAX_BODY) {
            res.destroy();
            done();
          }
        });
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.setTimeout(options.timeoutMs ?? 5000, () =>
      req.destroy(new Error(`no answer to ${options.method ?? 'GET'} ${options.path} within ${options.timeoutMs ?? 5000} ms`)),
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A JSON body with its headers. */
export function json(value: unknown): { body: string; headers: Record<string, string> } {
  return { body: JSON.stringify(value), headers: { 'content-type': 'application/json' } };
}
