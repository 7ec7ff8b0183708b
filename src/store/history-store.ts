/**
 * Value history: numeric and boolean characteristic values with their time, kept for a retention
 * window and served downsampled (bucket averages) for charts.
 */
import type { CharacteristicRef } from '../core/events.js';
import type { Db } from './database.js';

export interface HistoryPoint {
  at: number;
  value: number;
}

export class HistoryStore {
  readonly #s;
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
    this.#s = {
      insert: db.prepare('INSERT INTO history (device, service, idx, characteristic, at, value) VALUES (?, ?, ?, ?, ?, ?)'),
      raw: db.prepare<[string, string, number, string, number, number, number], HistoryPoint>(
        'SELECT at, value FROM history WHERE device = ? AND service = ? AND idx = ? AND characteristic = ? AND at >= ? AND at <= ? ORDER BY at LIMIT ?',
      ),
      bucketed: db.prepare<[number, string, string, number, string, number, number], HistoryPoint>(
        'SELECT CAST(at / ? AS INTEGER) AS bucket, MIN(at) AS at, AVG(value) AS value FROM history WHERE device = ? AND service = ? AND idx = ? AND characteristic = ? AND at >= ? AND at <= ? GROUP BY bucket ORDER BY bucket',
      ),
      count: db.prepare<[string, string, number, string, number, number], { n: number }>(
        'SELECT COUNT(*) AS n FROM history WHERE device = ? AND service = ? AND idx = ? AND characteristic = ? AND at >= ? AND at <= ?',
      ),
      prune: db.prepare('DELETE FROM history WHERE at < ?'),
      forget: db.prepare('DELETE FROM history WHERE device = ?'),
    };
  }

  add(points: Array<{ ref: CharacteristicRef; at: number; value: number }>): void {
    this.#db.transaction(() => {
      for (const p of points) this.#s.insert.run(p.ref.deviceId, p.ref.service, p.ref.index, p.ref.characteristic, p.at, p.value);
    })();
  }

  /** At most `points` points between `from` and `to`: raw values when few, else bucket averages. */
  series(ref: CharacteristicRef, from: number, to: number, points: number): HistoryPoint[] {
    const key = [ref.deviceId, ref.service, ref.index, ref.characteristic] as const;
    const total = this.#s.count.get(...key, from, to)?.n ?? 0;
    if (total <= points) return this.#s.raw.all(...key, from, to, points);
    const bucket = Math.max(1, Math.ceil((to - from + 1) / points));
    return this.#s.bucketed.all(bucket, ...key, from, to).map((r) => ({ at: r.at, value: r.value }));
  }

  prune(before: number): number {
    return this.#s.prune.run(before).changes;
  }

  forget(device: string): void {
    this.#s.forget.run(device);
  }
}
