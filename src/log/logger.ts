/** pino, readable on a terminal, JSON lines otherwise (for log collectors and tests). */
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, pretty = process.stdout.isTTY === true): Logger {
  if (!pretty) return pino({ level, base: undefined });
  return pino({
    level,
    base: undefined,
    transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } },
  });
}
