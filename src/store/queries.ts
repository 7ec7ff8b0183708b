/**
 * The questions people ask of the history and of what devices say about themselves (issue 15), each one
 * SQL statement per engine, answered by the database (`GET /api/query`, `mqttkit query`):
 *
 * - `series`: a characteristic's values over a time range in buckets (avg, min, max, count per bucket);
 * - `memory`: every device whose last `stats` answer ([O-22]) reports `mem_free` under a threshold;
 * - `firmware`: every device whose version differs from a given one ([P-22]: the app version, i.e.
 *   `$firmware`, or the runtime, i.e. `getversion`'s `firmware`).
 *
 * `device_info.info` is JSONB on PostgreSQL (path operators, a GIN index) and JSON text on SQLite (JSON1's
 * `json_extract`); the history is relational on both, its series index covering the value. Why, and the
 * figures: docs/data.md "Queries", docs/benchmarks.md. Callers bound the inputs (src/web/query-routes.ts).
 */
import { z } from 'zod';
import type { SqlEngine } from './engine/sql-engine.js';

/** The most buckets one series answer holds. */
export const MAX_BUCKETS = 5000;
/** The smallest bucket: a second. */
export const MIN_BUCKET_MS = 1000;

export interface SeriesQuery {
  device: string;
  service: string;
  index: number;
  characteristic: string;
  /** ms since the epoch, inclusive. */
  from: number;
  /** ms since the epoch, exclusive. */
  to: number;
  bucketMs: number;
}

export interface Bucket {
  /** Where the bucket starts (ms): `from + n × bucketMs`. */
  start: number;
  avg: number;
  min: number;
  max: number;
  count: number;
}

export interface LowMemory {
  device: string;
  /** Bytes free on the heap, as the device's last `stats` answer said. */
  memFree: number;
  /** When the hub heard that answer (ms). */
  statsAt: number | null;
}

/** [P-22] Which version: the app's (`$firmware`, else `getversion`'s `app`) or the runtime's (`getversion`'s `firmware`). */
export type VersionKind = 'app' | 'runtime';

export interface VersionRow {
  device: string;
  /** The device's version of that kind, or null when it never said. */
  version: string | null;
}

/** The largest bucket: a year (366 days). */
export const MAX_BUCKET_MS = 366 * 86_400_000;
/** The lowest threshold one may ask about: 4 GiB (no board has more). */
export const MAX_BELOW = 2 ** 32;

/** The number of buckets a range takes: what the callers bound ([A-10]). */
export const bucketCount = (from: number, to: number, bucketMs: number) => Math.ceil((to - from) / bucketMs);

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** A time in ms since the epoch (within a Date's range). */
const instant = z.coerce
  .number({ error: 'a whole number of ms since 1970' })
  .int('a whole number of ms since 1970')
  .min(0, 'a time after 1970 (ms)')
  .max(8.64e15, "beyond a Date's range");
/** A bucket as `90s`, `5m`, `1h`, `1d` or a number of ms. */
const bucket = z
  .string()
  .max(20, 'a duration such as 5m, 1h or 1d')
  .transform((v, ctx) => {
    const match = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'a duration such as 5m, 1h or 1d (or whole ms)' });
      return z.NEVER;
    }
    const ms = Number(match[1]) * UNIT_MS[(match[2] as keyof typeof UNIT_MS | undefined) ?? 'ms'];
    if (ms < MIN_BUCKET_MS || ms > MAX_BUCKET_MS) {
      ctx.addIssue({ code: 'custom', message: `from 1s to 366d (${MIN_BUCKET_MS}-${MAX_BUCKET_MS} ms)` });
      return z.NEVER;
    }
    return ms;
  });
const name = z.string().min(1, 'required').max(64, 'at most 64 characters');

/**
 * [A-10] `GET /api/query` and `mqttkit query` take the same inputs (query-string text), checked here
 * before any SQL runs: the API answers 400 naming each field, the CLI exits 2 with the same words.
 */
export const queryInput = z.discriminatedUnion(
  'kind',
  [
    z
      .object({
        kind: z.literal('series'),
        device: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'not a device id (1-64 letters, digits, _ or -)'),
        service: name,
        index: z.coerce
          .number({ error: 'a whole number from 0 to 99' })
          .int('a whole number from 0 to 99')
          .min(0, 'from 0 to 99')
          .max(99, 'from 0 to 99')
          .default(0),
        characteristic: name,
        from: instant.optional(),
        to: instant.optional(),
        bucket,
      })
      .transform((q, ctx) => {
        const to = q.to ?? Date.now();
        const from = q.from ?? to - 86_400_000;
        if (from >= to) ctx.addIssue({ code: 'custom', path: ['from'], message: 'must be before to' });
        else if (bucketCount(from, to, q.bucket) > MAX_BUCKETS)
          ctx.addIssue({
            code: 'custom',
            path: ['bucket'],
            message: `the range holds ${bucketCount(from, to, q.bucket)} buckets of this size, over the limit of ${MAX_BUCKETS}: take a larger bucket or a shorter range`,
          });
        else return { ...q, from, to, bucketMs: q.bucket };
        return z.NEVER;
      }),
    z.object({
      kind: z.literal('memory'),
      below: z.coerce
        .number({ error: 'a whole number of bytes' })
        .int('a whole number of bytes')
        .min(1, 'at least 1 (bytes)')
        .max(MAX_BELOW, `at most ${MAX_BELOW} (4 GiB)`),
    }),
    z.object({
      kind: z.literal('firmware'),
      version: z.string().min(1, 'required').max(200, 'at most 200 characters'),
      of: z.enum(['app', 'runtime']).default('app'),
    }),
  ],
  { error: 'one of series, memory, firmware' },
);
export type QueryInput = z.output<typeof queryInput>;

/** What one query answers, as the API sends it and `mqttkit query --json` prints it. */
export type QueryAnswer =
  | { kind: 'series'; from: number; to: number; bucketMs: number; buckets: Bucket[] }
  | { kind: 'memory'; below: number; devices: LowMemory[] }
  | { kind: 'firmware'; version: string; of: VersionKind; devices: VersionRow[] };

/** Runs a checked query. */
export async function runQuery(queries: StoreQueries, q: QueryInput): Promise<QueryAnswer> {
  if (q.kind === 'series') return { kind: 'series', from: q.from, to: q.to, bucketMs: q.bucketMs, buckets: await queries.series(q) };
  if (q.kind === 'memory') return { kind: 'memory', below: q.below, devices: await queries.memory(q.below) };
  return { kind: 'firmware', version: q.version, of: q.of, devices: await queries.firmware(q.version, q.of) };
}

const SERIES_WHERE = 'device = ? AND service = ? AND idx = ? AND characteristic = ? AND at >= ? AND at < ?';

export class StoreQueries {
  constructor(readonly engine: SqlEngine) {}

  /**
   * Buckets of `bucketMs` from `from`; a bucket without samples is left out. Both engines read the series
   * index (device, service, idx, characteristic, at), which carries the value, and never a row.
   */
  async series(q: SeriesQuery): Promise<Bucket[]> {
    const key = [q.device, q.service, q.index, q.characteristic] as const;
    type Row = { bucket: number; avg: number; min: number; max: number; count: number };
    let rows: Row[];
    if (this.engine.dialect === 'postgres') {
      // One index range per bucket (LATERAL): the rows arrive in index order and are aggregated as they
      // come. A GROUP BY over the whole range sorts every sample first (105,120 for a year at 5 min: twice
      // the time, docs/benchmarks.md). JIT off: compiling the plan costs more than this query ever takes.
      rows = await this.engine.transaction(async (tx) => {
        await tx.run('SET LOCAL jit = off');
        return tx.all<Row>(
          `SELECT b.n AS bucket, s.avg, s.min, s.max, s.count
             FROM generate_series(0, CAST(? AS BIGINT) - 1) AS b(n)
             CROSS JOIN LATERAL (
               SELECT AVG(value) AS avg, MIN(value) AS min, MAX(value) AS max, COUNT(*) AS count FROM history
                WHERE device = ? AND service = ? AND idx = ? AND characteristic = ?
                  AND at >= CAST(? AS BIGINT) + b.n * CAST(? AS BIGINT) AND at < LEAST(CAST(? AS BIGINT) + (b.n + 1) * CAST(? AS BIGINT), CAST(? AS BIGINT))
             ) AS s
            WHERE s.count > 0 ORDER BY b.n`,
          [bucketCount(q.from, q.to, q.bucketMs), ...key, q.from, q.bucketMs, q.from, q.bucketMs, q.to],
        );
      });
    } else {
      // SQLite reads the covering index in order and groups in a small temp b-tree.
      rows = await this.engine.all<Row>(
        `SELECT CAST((at - ?) / ? AS BIGINT) AS bucket, AVG(value) AS avg, MIN(value) AS min, MAX(value) AS max, COUNT(*) AS count
           FROM history WHERE ${SERIES_WHERE} GROUP BY bucket ORDER BY bucket`,
        [q.from, q.bucketMs, ...key, q.from, q.to],
      );
    }
    return rows.map((r) => ({ start: q.from + Number(r.bucket) * q.bucketMs, avg: r.avg, min: r.min, max: r.max, count: Number(r.count) }));
  }

  /**
   * [O-22] Devices whose last `stats` answer says `mem_free` < `below` bytes, lowest first. A device that
   * never answered `stats`, or whose platform cannot tell (`null`), is not listed.
   */
  async memory(below: number): Promise<LowMemory[]> {
    const sql =
      this.engine.dialect === 'postgres'
        ? // A JSON path with a variable (the threshold never becomes SQL or path text); only a number compares, a missing field is no match.
          `SELECT device, (info #>> '{stats,mem_free}')::float8 AS "memFree", (info #>> '{stats,at}')::float8 AS "statsAt"
             FROM device_info
            WHERE jsonb_path_exists(info, '$.stats.mem_free ? (@.type() == "number" && @ < $below)', jsonb_build_object('below', CAST(? AS float8)))
            ORDER BY "memFree", device`
        : // json_valid first: a damaged row (named by OtaStore.info) must not fail everyone's answer.
          `SELECT device, json_extract(info, '$.stats.mem_free') AS memFree, json_extract(info, '$.stats.at') AS statsAt
             FROM device_info
            WHERE json_valid(info) AND json_type(info, '$.stats.mem_free') IN ('integer', 'real') AND json_extract(info, '$.stats.mem_free') < ?
            ORDER BY memFree, device`;
    const rows = await this.engine.all<LowMemory>(sql, [below]);
    return rows.map((r) => ({ device: r.device, memFree: Number(r.memFree), statsAt: r.statsAt === null ? null : Number(r.statsAt) }));
  }

  /**
   * [P-22] Every known device whose version of `kind` is not `version`, by id; a device that never said
   * its version is listed too (with `null`): nobody can tell it is up to date.
   */
  async firmware(version: string, kind: VersionKind): Promise<VersionRow[]> {
    const pg = this.engine.dialect === 'postgres';
    // devices.doc is the registry's record (TEXT on both engines, rewritten as values change): read as JSON here.
    const app = pg
      ? `COALESCE(CAST(d.doc AS JSON) -> 'meta' ->> 'firmware', i.info ->> 'app')`
      : `COALESCE(${sqliteJson('d.doc', '$.meta.firmware')}, ${sqliteJson('i.info', '$.app')})`;
    const runtime = pg ? `i.info ->> 'firmware'` : sqliteJson('i.info', '$.firmware');
    const column = kind === 'app' ? app : runtime;
    const differs = pg ? `${column} IS DISTINCT FROM ?` : `${column} IS NOT ?`;
    return this.engine.all<VersionRow>(
      `SELECT d.id AS device, ${column} AS version FROM devices d LEFT JOIN device_info i ON i.device = d.id WHERE ${differs} ORDER BY d.id`,
      [version],
    );
  }
}

/** A text field of a JSON column on SQLite; NULL for a damaged row or a field that is not text. */
const sqliteJson = (column: string, path: string) =>
  `(CASE WHEN json_valid(${column}) AND json_type(${column}, '${path}') = 'text' THEN json_extract(${column}, '${path}') END)`;
