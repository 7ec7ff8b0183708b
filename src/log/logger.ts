/** pino, readable on a terminal, JSON lines otherwise (for log collectors and tests). */
import { type LoggerOptions, type Logger as PinoLogger, pino } from 'pino';
import { boundValue } from './bounded.js';
import { hubLog } from './log-ring.js';

export type Logger = PinoLogger;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Every message and field is bounded before it is written: log lines carry device input. */
const hooks: LoggerOptions['hooks'] = {
  logMethod(args, method) {
    method.apply(this, args.map((arg) => boundValue(arg)) as Parameters<typeof method>);
  },
  // The dashboard's view of the hub's log (log-ring.ts): each line as written, bounded above.
  streamWrite(line) {
    hubLog.add(line);
    return line;
  },
};

export function createLogger(level: LogLevel, pretty = process.stdout.isTTY === true): Logger {
  if (!pretty) return pino({ level, base: undefined, hooks });
  return pino({
    level,
    base: undefined,
    hooks,
    transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } },
  });
}
