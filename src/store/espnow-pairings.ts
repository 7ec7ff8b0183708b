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
import { type Db, durably } from './database.js';

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

export class EspNowPairings {
  readonly #db: Db;
  readonly #s;
  readonly #byPeripheral = new Map<string, EspNowPairing>();

  constructor(db: Db) {
    this.#db = db;
    this.#s = {
      all: db.prepare<[], Row>('SELECT peripheral, gateway, gateway_since, created_at FROM espnow_pairings'),
      put: db.prepare<[string, string, number, number]>(
        'INSERT OR REPLACE INTO espnow_pairings (peripheral, gateway, gateway_since, created_at) VALUES (?, ?, ?, ?)',
      ),
      remove: db.prepare<[string]>('DELETE FROM espnow_pairings WHERE peripheral = ?'),
      removeGateway: db.prepare<[string]>('DELETE FROM espnow_pairings WHERE gateway = ?'),
    };
    for (const r of this.#s.all.all())
      this.#byPeripheral.set(r.peripheral, { peripheral: r.peripheral, gateway: r.gateway, gatewaySince: r.gateway_since, createdAt: r.created_at });
  }

  list(): EspNowPairing[] {
    return [...this.#byPeripheral.values()].sort((a, b) => a.peripheral.localeCompare(b.peripheral));
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
  pair(peripheral: string, gateway: string, gatewaySince: number): EspNowPairing {
    const pairing = { peripheral, gateway, gatewaySince, createdAt: Date.now() };
    durably(this.#db, () => this.#s.put.run(peripheral, gateway, gatewaySince, pairing.createdAt));
    this.#byPeripheral.set(peripheral, pairing);
    return pairing;
  }

  unpair(peripheral: string): EspNowPairing | undefined {
    const pairing = this.#byPeripheral.get(peripheral);
    if (!pairing) return undefined;
    durably(this.#db, () => this.#s.remove.run(peripheral));
    this.#byPeripheral.delete(peripheral);
    return pairing;
  }

  /** A removed gateway's pairings go with it. */
  removeGateway(gateway: string): string[] {
    const gone = [...this.#byPeripheral.values()].filter((p) => p.gateway === gateway).map((p) => p.peripheral);
    if (gone.length === 0) return gone;
    durably(this.#db, () => this.#s.removeGateway.run(gateway));
    for (const id of gone) this.#byPeripheral.delete(id);
    return gone;
  }
}
