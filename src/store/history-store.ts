/**
 * Value history: numeric and boolean characteristic values with their time, kept for a retention
 * window and served downsampled (bucket averages) for charts.
 */
import type { CharacteristicRef } from '../core/events.js';
import type { SqlEngine } from './engine/sql-engine.js';

export interface HistoryPoint {
  at: number;
  value: number;
}

const SERIES = 'device = ? AND service = ? AND idx = ? AND characteristic = ? AND at >= ? AND at <= ?';

export class HistoryStore {
  constructor(readonly engine: SqlEngine) {}

  async add(points: Array<{ ref: CharacteristicRef; at: number; value: number }>): Promise<void> {
    await this.engine.transaction(async (tx) => {
      for (const p of points) {
        await tx.run('INSERT INTO history (device, service, idx, characteristic, at, value) VALUES (?, ?, ?, ?, ?, ?)', [
          p.ref.deviceId,
          p.ref.service,
          p.ref.index,
          p.ref.characteristic,
          p.at,
          p.value,
        ]);
      }
    });
  }

  /** At most `points` points between `from` and `to`: raw values when few, else bucket averages. */
  async series(ref: CharacteristicRef, from: number, to: number, points: number): Promise<HistoryPoint[]> {
    const key = [ref.deviceId, ref.service, ref.index, ref.characteristic, from, to] as const;
    const total = (await this.engine.get<{ n: number }>(`SELECT COUNT(*) AS n FROM history WHERE ${SERIES}`, key))?.n ?? 0;
    if (total <= points) return this.engine.all<HistoryPoint>(`SELECT at, value FROM history WHERE ${SERIES} ORDER BY at LIMIT ?`, [...key, points]);
    const bucket = Math.max(1, Math.ceil((to - from + 1) / points));
    // BIGINT: a time in ms over a bucket of 1 ms does not fit Postgres's 32-bit INTEGER.
    const rows = await this.engine.all<HistoryPoint>(
      `SELECT CAST(at / ? AS BIGINT) AS bucket, MIN(at) AS at, AVG(value) AS value FROM history WHERE ${SERIES} GROUP BY bucket ORDER BY bucket`,
      [bucket, ...key],
    );
    return rows.map((r) => ({ at: r.at, value: r.value }));
  }

  async prune(before: number): Promise<number> {
    return (await this.engine.run('DELETE FROM history WHERE at < ?', [before])).changes;
  }

  async forget(device: string): Promise<void> {
    await this.engine.run('DELETE FROM history WHERE device = ?', [device]);
  }
}
