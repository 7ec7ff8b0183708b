/** Latency statistics and the result rows every scenario reports. */
export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
  return { n: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

export interface Row {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  /** The same quantity for the floor (the best this machine does without mqttkit), if any. */
  floor?: number;
  ratio?: number;
  target?: string;
  met?: boolean;
}

export function row(
  scenario: string,
  metric: string,
  value: number,
  unit: string,
  extra: { floor?: number; target?: [string, (v: number) => boolean]; digits?: number } = {},
): Row {
  const r: Row = { scenario, metric, value: round(value, extra.digits), unit };
  if (extra.floor !== undefined) {
    r.floor = round(extra.floor, extra.digits);
    r.ratio = extra.floor > 0 ? round(value / extra.floor) : NaN;
  }
  if (extra.target) {
    r.target = extra.target[0];
    r.met = extra.target[1](value);
  }
  return r;
}

/** To `digits` decimals (2 unless a figure this small needs more, e.g. idle CPU). */
export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Rows for p50/p95/p99/max of a latency series, each beside the floor's. */
export function latencyRows(scenario: string, hub: Summary, floor: Summary | undefined, p99Target?: number): Row[] {
  return (['p50', 'p95', 'p99', 'max'] as const).map((k) =>
    row(scenario, `latency ${k} (n=${hub.n})`, hub[k], 'ms', {
      ...(floor ? { floor: floor[k] } : {}),
      ...(k === 'p99' && p99Target !== undefined ? { target: [`<= ${p99Target} ms`, (v: number) => v <= p99Target] as [string, (v: number) => boolean] } : {}),
    }),
  );
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.now();
