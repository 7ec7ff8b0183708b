/**
 * Faults the hub survived: promise rejections nobody handled, exceptions nobody caught, event
 * listeners that threw. Each is logged (bounded, with its stack) and counted; the counts show in
 * `/api/metrics` and on every fault's log line. One bug must not end the process a home relies on.
 */
import type { Logger } from '../log/logger.js';
import { OncePerKey } from '../log/once.js';

export interface FaultCounts {
  unhandledRejections: number;
  uncaughtExceptions: number;
  listenerErrors: number;
}

type FaultKind = keyof FaultCounts;

const WHAT: Record<FaultKind, string> = {
  unhandledRejections: 'unhandled promise rejection',
  uncaughtExceptions: 'uncaught exception',
  listenerErrors: 'event listener failed',
};

/** Message and stack of anything thrown, cut to a size a log line can carry. */
function describeFault(error: unknown): { type: string; message: string; stack?: string } {
  const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text);
  if (error instanceof Error) {
    return { type: error.name, message: cut(error.message, 1000), ...(error.stack ? { stack: cut(error.stack, 4000) } : {}) };
  }
  let text: string;
  try {
    text = typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
  } catch {
    text = String(error);
  }
  return { type: typeof error, message: cut(text, 1000) };
}

export class Faults {
  readonly counts: FaultCounts = { unhandledRejections: 0, uncaughtExceptions: 0, listenerErrors: 0 };
  // The same fault repeating (say, every message) is counted every time but logged once a minute.
  readonly #once = new OncePerKey(60_000, 1000);

  constructor(private readonly log: Logger) {}

  snapshot(): FaultCounts {
    return { ...this.counts };
  }

  record(kind: FaultKind, error: unknown, context: Record<string, unknown> = {}): void {
    this.counts[kind]++;
    const err = describeFault(error);
    if (!this.#once.first(`${kind}|${JSON.stringify(context)}|${err.message}`)) return;
    this.log.error({ ...context, fault: err, faults: this.snapshot() }, `${WHAT[kind]} (the hub keeps running): ${err.message}`);
  }

  /**
   * Process-level handlers: without them Node ends the process on the first unhandled rejection or
   * uncaught exception. Returns a function that removes them.
   */
  installProcessHandlers(): () => void {
    const onRejection = (reason: unknown) => this.record('unhandledRejections', reason);
    const onException = (error: unknown) => this.record('uncaughtExceptions', error);
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    return () => {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    };
  }
}
