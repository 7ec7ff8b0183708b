/**
 * The CLI's way into a running hub: its HTTP API (docs/api.md), at the address in `hub.json`, with the
 * local token the hub writes beside it at each start ([A-8], owner-only). Every call and every stream
 * has a bound: a hub that stops answering is named within seconds, never waited for without end.
 */
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import { readHubToken, readRuntime, runningHubPid } from '../store/runtime-file.js';
import { pinnedFetch } from './pinned-fetch.js';
import { CliError } from './workspace.js';

/** A hub that sends nothing for this long is not answering (it sends a keep-alive every 15 s). */
export const STREAM_SILENCE_MS = 40_000;

export interface ApiAnswer {
  status: number;
  json: Record<string, unknown>;
}

export class HubClient {
  private constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly base: string,
    readonly token: string,
    /** [A-12] The hub serves HTTPS: calls go through a client that trusts exactly its certificate. */
    private readonly fetch: typeof globalThis.fetch = globalThis.fetch,
  ) {}

  /** The running hub's API, or a CliError saying why it cannot be reached (no API, no token). */
  static open(dataDir: string, pid: number): HubClient {
    const runtime = readRuntime(dataDir);
    if (runtime?.httpPort === undefined) {
      throw new CliError(
        `the hub on ${dataDir} (pid ${pid}) runs without its API (--http-port -1), and the CLI reaches a running hub through it: restart it with an --http-port (it may listen on 127.0.0.1 only: --http-host 127.0.0.1)`,
      );
    }
    const token = readHubToken(dataDir);
    if (!token) throw new CliError(`cannot read the running hub's local token (${dataDir}/hub-token): run this as the user the hub runs as`);
    const host = !runtime.httpHost || runtime.httpHost === '0.0.0.0' || runtime.httpHost === '::' ? '127.0.0.1' : runtime.httpHost;
    const address = `${host.includes(':') ? `[${host}]` : host}:${runtime.httpPort}`;
    if (!runtime.httpTls) return new HubClient(dataDir, pid, `http://${address}`, token);
    return new HubClient(dataDir, pid, `https://${address}`, token, pinnedFetch(runtime.httpTls.certFile, runtime.httpTls.fingerprint256));
  }

  /**
   * Says what happened to the hub when a call or stream failed: stopped, or not answering. A process
   * that just closed its sockets may take a moment to be gone: up to 2 s are given for it to tell.
   */
  async gone(what: string): Promise<CliError> {
    const deadline = Date.now() + 2000;
    while (runningHubPid(this.dataDir) === this.pid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const running = runningHubPid(this.dataDir) === this.pid;
    return new CliError(running ? `the hub on ${this.dataDir} (pid ${this.pid}) ${what}` : `the hub on ${this.dataDir} (pid ${this.pid}) has stopped`);
  }

  /** One API call; a hub that does not answer within `timeoutMs` is a CliError. */
  async call(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<ApiAnswer> {
    let response: Response;
    try {
      response = await this.fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      if (timedOut)
        throw new CliError(
          `the hub on ${this.dataDir} (pid ${this.pid}) did not answer ${method} ${path} within ${Math.round(timeoutMs / 1000)} s: it may be busy or stuck`,
        );
      throw await this.gone(
        timedOut
          ? `did not answer ${method} ${path} within ${Math.round(timeoutMs / 1000)} s: it may be busy or stuck`
          : `cannot be reached at ${this.base} (${causeOf(error)})`,
      );
    }
    const text = await response.text().catch(() => '');
    // The API answers JSON objects (docs/api.md); anything else (a proxy's page, a cut answer) is shown as the error.
    const parsed = text ? parseJson(text, z.record(z.string(), z.unknown())) : undefined;
    const json: Record<string, unknown> = parsed === undefined ? {} : parsed.ok ? parsed.value : { error: text.slice(0, 200) };
    if (response.status === 401)
      throw new CliError(`the hub on ${this.dataDir} refused the CLI's local token (${String(json.error)}): is hub.json from another hub?`);
    return { status: response.status, json };
  }

  /** An API call that must succeed: any other answer is a CliError carrying the hub's message. */
  async ok<T = Record<string, unknown>>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const answer = await this.call(method, path, body, timeoutMs);
    if (answer.status >= 300) throw new CliError(String(answer.json.error ?? `the hub answered ${answer.status}`));
    return answer.json as T;
  }

  /**
   * Opens the live event stream (`GET /api/events`, [A-3]) and hands each event to `onEvent` until it
   * returns true (done) or the stream ends. Resolves on done (true) or when `untilMs` has passed
   * (false); rejects with a CliError when the hub stops, closes the stream, or stays silent past
   * STREAM_SILENCE_MS.
   */
  async stream(query: string, onEvent: (event: string, data: unknown) => boolean | Promise<boolean>, untilMs?: number): Promise<boolean> {
    const abort = new AbortController();
    let silence: NodeJS.Timeout | undefined;
    let silent = false;
    let over = false;
    const deadline =
      untilMs === undefined
        ? undefined
        : setTimeout(() => {
            over = true;
            abort.abort();
          }, untilMs);
    const quiet = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        silent = true;
        abort.abort();
      }, STREAM_SILENCE_MS);
    };
    quiet();
    try {
      let response: Response;
      try {
        response = await this.fetch(`${this.base}/api/events${query}`, {
          headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
          signal: abort.signal,
        });
      } catch (error) {
        if (over) return false;
        throw await this.gone(silent ? 'did not open its event stream' : `cannot be reached at ${this.base} (${causeOf(error)})`);
      }
      if (response.status !== 200 || !response.body) {
        const text = await response.text().catch(() => '');
        throw new CliError(`the hub refused its event stream (${response.status}): ${text.slice(0, 200)}`);
      }
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of response.body) {
          quiet();
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event === undefined || data === undefined) continue; // a keep-alive comment
            const value: unknown = JSON.parse(data);
            if (await onEvent(event, value)) return true;
          }
        }
      } catch (error) {
        if (error instanceof CliError) throw error;
        if (over) return false;
        throw await this.gone(
          silent ? `sent nothing for ${STREAM_SILENCE_MS / 1000} s: it is stuck or unreachable` : `closed its event stream (${causeOf(error)})`,
        );
      }
      throw await this.gone('closed its event stream');
    } finally {
      clearTimeout(silence);
      clearTimeout(deadline);
      abort.abort();
    }
  }
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

/** The running hub's API client for a workspace, or undefined when no hub runs there. */
export function hubOf(ws: { dataDir: string; hubPid: number | undefined }): HubClient | undefined {
  return ws.hubPid ? HubClient.open(ws.dataDir, ws.hubPid) : undefined;
}
