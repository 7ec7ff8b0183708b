/**
 * The hub's own last log lines, kept in memory for the dashboard's Security page (`GET /api/hub-log`
 * and the live stream's `hub-log` event, docs/api.md). Fed by the logger's `streamWrite` hook with
 * every line as written (already bounded, secrets already kept out: logger.ts), whatever the output
 * (JSON or pretty). One per process: the hub is one per process.
 */

import { z } from 'zod';
import { parseJson } from '../core/json.js';

export interface HubLogLine {
  /** Increasing; a reader asks for lines after the last id it has. */
  id: number;
  /** pino's level name: fatal, error, warn, info, debug, trace. */
  level: string;
  at: number;
  /** The message, with its other fields as `key=value` after it. */
  text: string;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
export const LEVEL_RANK: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
/** What pino writes: an object; the fields a person reads are picked out below, the rest are shown as they are. */
const PINO_LINE = z.record(z.string(), z.unknown());

/** Lines kept (the issue: "the last 500 lines"). */
export const HUB_LOG_LINES = 500;
/** A line's text is cut here (pino lines are bounded already; this bounds what one line costs the page). */
const MAX_TEXT = 2000;

/** Control characters (newlines, escapes) as visible `\xNN` text. */
const oneLine = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** One JSON log line as a person reads it: the message, then its fields. */
export function readLine(json: string, id: number): HubLogLine | undefined {
  const parsed = parseJson(json, PINO_LINE);
  if (!parsed.ok) return undefined;
  const record = parsed.value;
  const { level, time, msg, ...fields } = record;
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  // One line stays one line: a client id or username with a newline (any MQTT peer sends those before it
  // is refused) would otherwise show the page a forged line with a level of its choosing.
  const text = oneLine(`${typeof msg === 'string' ? msg : ''}${extra ? ` ${extra}` : ''}`).slice(0, MAX_TEXT);
  return { id, level: LEVELS[level as number] ?? 'info', at: typeof time === 'number' ? time : Date.now(), text };
}

export class LogRing {
  readonly #lines: HubLogLine[] = [];
  readonly #listeners = new Set<(line: HubLogLine) => void>();
  #next = 1;

  /** Called with what pino writes (one JSON line, newline-terminated). Never throws: logging must go on. */
  add(chunk: string): void {
    const line = readLine(chunk.trim(), this.#next);
    if (!line) return;
    this.#next++;
    this.#lines.push(line);
    if (this.#lines.length > HUB_LOG_LINES) this.#lines.shift();
    for (const fn of this.#listeners) {
      try {
        fn(line);
      } catch {
        // a reader's failure is not the logger's
      }
    }
  }

  /** The kept lines at `level` or above, after `after`. */
  lines(level = 'trace', after = 0): HubLogLine[] {
    const min = LEVEL_RANK[level] ?? 10;
    return this.#lines.filter((l) => l.id > after && (LEVEL_RANK[l.level] ?? 30) >= min);
  }

  /** The id of the last line written (0: none yet): a stream that starts now sends every line after it. */
  get lastId(): number {
    return this.#next - 1;
  }

  onLine(fn: (line: HubLogLine) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}

export const hubLog = new LogRing();
