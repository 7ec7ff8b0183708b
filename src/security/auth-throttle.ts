/**
 * How long a failed login holds its turn: a delay that doubles with each recent failure, up to a cap,
 * forgotten after a quiet period. login-throttle.ts applies it, per source address, to device and
 * dashboard logins alike.
 */
export interface ThrottleOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures older than this no longer count. */
  forgetAfterMs: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { baseDelayMs: 100, maxDelayMs: 5000, forgetAfterMs: 15 * 60_000 };

export function failureDelay(failures: number, options: ThrottleOptions = DEFAULT_THROTTLE): number {
  if (failures <= 0) return 0;
  return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(failures - 1, 30));
}
