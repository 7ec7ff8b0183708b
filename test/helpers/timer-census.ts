/**
 * A preload for a hub under test (`NODE_OPTIONS=--import <this file>`, test-only: the hub knows
 * nothing of it): counts the timers that fire between two SIGUSR2 signals, by the place in the code
 * that created them, and at the second signal writes them, with the timers still armed, as JSON to
 * $TIMER_CENSUS_OUT. A timer that fires is a wake-up of the process; `repeat` marks an interval.
 */
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The checkout: its src/ (source-mapped frames) and dist/src/ are mqttkit's own code. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface CensusTimer {
  /** `src/hub/...:line` (or `dist/src/…`) for mqttkit's own code, `<package>/...:line` for a library's, else Node's frame. */
  site: string;
  own: boolean;
  ms: number;
  repeat: boolean;
}

export interface Census {
  /** Each site's timers that fired during the window, and how often. */
  fired: Array<{ site: string; own: boolean; count: number }>;
  /** Timers armed at the end of the window. */
  armed: CensusTimer[];
}

// Timer sites several frames deep (a feature's scope, aedes' callbacks) need more than the default 10.
Error.stackTraceLimit = 40;

const timers = new Map<number, CensusTimer>();
let fired: Map<string, { own: boolean; count: number }> | undefined;

/**
 * Who created the timer: the innermost frame outside Node decides. mqttkit's own code is named by its
 * file (past the feature scope, which only relays a feature's timer); a library's by its package path.
 */
function siteOf(stack: string): { site: string; own: boolean } {
  const frames = stack
    .split('\n')
    .slice(1)
    // `at fn (location:line:column)` or `at location:line:column`; Node's own frames (`node:…`) are skipped.
    .map((line) => /(?:\(|at )((?:file:\/\/)?\/[^()]*?:\d+):\d+\)?$/.exec(line.trim())?.[1]?.replace(/^file:\/\//, ''))
    .filter((f): f is string => f !== undefined && !f.includes('timer-census'));
  const isOwn = (f: string) => (f.startsWith(`${ROOT}src/`) || f.startsWith(`${ROOT}dist/src/`)) && !f.includes('/node_modules/');
  const first = frames[0];
  if (first === undefined) return { site: 'node', own: false };
  if (!isOwn(first)) return { site: first.includes('/node_modules/') ? first.slice(first.lastIndexOf('/node_modules/') + 14) : first, own: false };
  const own = frames.filter(isOwn);
  const site = own.find((f) => !/\/src\/hub\/feature\.[jt]s:/.test(f)) ?? first;
  return { site: site.slice(ROOT.length), own: true };
}

createHook({
  init(asyncId, type, _trigger, resource) {
    if (type !== 'Timeout') return;
    const timer = resource as { _idleTimeout?: number; _repeat?: number | null };
    timers.set(asyncId, { ...siteOf(new Error().stack ?? ''), ms: timer._idleTimeout ?? -1, repeat: timer._repeat != null });
  },
  before(asyncId) {
    const timer = fired && timers.get(asyncId);
    if (!timer || !fired) return;
    const seen = fired.get(timer.site) ?? { own: timer.own, count: 0 };
    seen.count++;
    fired.set(timer.site, seen);
  },
  destroy(asyncId) {
    timers.delete(asyncId);
  },
}).enable();

process.on('SIGUSR2', () => {
  if (!fired) {
    fired = new Map();
    return;
  }
  const census: Census = { fired: [...fired].map(([site, { own, count }]) => ({ site, own, count })), armed: [...timers.values()] };
  fired = undefined;
  writeFileSync(process.env.TIMER_CENSUS_OUT ?? 'timer-census.json', JSON.stringify(census, null, 2));
});
