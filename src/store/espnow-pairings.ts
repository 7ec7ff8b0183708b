/**
 * ESP-NOW pairings (docs/security.md, "ESP-NOW peripherals"): which gateway may speak for which
 * peripheral. One row per peripheral: a peripheral has one gateway at a time. `gateway_since` is the
 * gateway account's `created_at` when it was paired: an account removed and registered again under the
 * same name (open registration) is another gateway and speaks for nobody [E-10]. Kept in memory too:
 * the broker asks on every publish of a gateway.
 *
 *   espnow_pairings(peripheral TEXT PRIMARY KEY, gateway TEXT NOT NULL, gateway_since INTEGER NOT NULL,
 *                   created_at INTEGER NOT NULL), index on (gateway)
 */
import { durably, type SqlEngine } from './engine/sql-engine.js';

export interface EspNowPairing {
  peripheral: string;
  gateway: string;
  /** The gateway account's createdAt at pairing time. */
  gatewaySince: number;
  createdAt: number;
}

interface Row {
  peripheral: string;
  gateway: string;
  gateway_since: number;
  created_at: number;
}

const toPairing = (r: Row): EspNowPairing => ({ peripheral: r.peripheral, gateway: r.gateway, gatewaySince: r.gateway_since, createdAt: r.created_at });

/**
 * Reads come from memory (the broker asks on every publish of a gateway); writes are on disk first
 * ([D-2]) and then in memory. Load it with `EspNowPairings.load`; the hub that loaded it is the one
 * writer (a standby loads it when it takes the active role, [H-1]).
 */
export class EspNowPairings {
  readonly #engine: SqlEngine;
  readonly #byPeripheral = new Map<string, EspNowPairing>();

  private constructor(engine: SqlEngine, rows: Row[]) {
    this.#engine = engine;
    for (const r of rows) this.#byPeripheral.set(r.peripheral, toPairing(r));
  }

  static async load(engine: SqlEngine): Promise<EspNowPairings> {
    return new EspNowPairings(engine, await engine.all<Row>('SELECT peripheral, gateway, gateway_since, created_at FROM espnow_pairings'));
  }

  list(): EspNowPairing[] {
    return [...this.#byPeripheral.values()].sort((a, b) => (a.peripheral < b.peripheral ? -1 : a.peripheral > b.peripheral ? 1 : 0));
  }

  get(peripheral: string): EspNowPairing | undefined {
    return this.#byPeripheral.get(peripheral);
  }

  hasGateway(gateway: string): boolean {
    for (const p of this.#byPeripheral.values()) if (p.gateway === gateway) return true;
    return false;
  }

  /** The peripherals paired to `gateway` while its account was the one created at `since`. */
  peripheralsOf(gateway: string, since: number): string[] {
    const out: string[] = [];
    for (const p of this.#byPeripheral.values()) if (p.gateway === gateway && p.gatewaySince === since) out.push(p.peripheral);
    return out;
  }

  /** Pairs (or moves) a peripheral; on disk before the gateway is told ([D-2]). */
  async pair(peripheral: string, gateway: string, gatewaySince: number): Promise<EspNowPairing> {
    const pairing = { peripheral, gateway, gatewaySince, createdAt: Date.now() };
    await durably(
      this.#engine,
      `INSERT INTO espnow_pairings (peripheral, gateway, gateway_since, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (peripheral) DO UPDATE SET gateway = excluded.gateway, gateway_since = excluded.gateway_since, created_at = excluded.created_at`,
      [peripheral, gateway, gatewaySince, pairing.createdAt],
    );
    this.#byPeripheral.set(peripheral, pairing);
    return pairing;
  }

  async unpair(peripheral: string): Promise<EspNowPairing | undefined> {
    const pairing = this.#byPeripheral.get(peripheral);
    if (!pairing) return undefined;
    await durably(this.#engine, 'DELETE FROM espnow_pairings WHERE peripheral = ?', [peripheral]);
    this.#byPeripheral.delete(peripheral);
    return pairing;
  }

  /** A removed gateway's pairings go with it. */
  async removeGateway(gateway: string): Promise<string[]> {
    const gone = [...this.#byPeripheral.values()].filter((p) => p.gateway === gateway).map((p) => p.peripheral);
    if (gone.length === 0) return gone;
    await durably(this.#engine, 'DELETE FROM espnow_pairings WHERE gateway = ?', [gateway]);
    for (const id of gone) this.#byPeripheral.delete(id);
    return gone;
  }
}
