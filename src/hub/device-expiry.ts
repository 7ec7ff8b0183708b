/**
 * [P-13] Removes devices silent for longer than the TTL, and [D-5] counts only the time the hub ran:
 * a hub that was switched off for a while must not come back to an empty house.
 */

import type { DeviceRecord } from '../core/device.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { Logger } from '../log/logger.js';
import { Downtime, HEARTBEAT_MS } from '../store/downtime.js';
import type { StateStore } from '../store/state-store.js';
import type { FeatureScope } from './feature.js';

export class DeviceExpiry {
  /** Read from the store at start; until then, none. */
  #downtime: Downtime;

  constructor(
    private readonly registry: DeviceRegistry,
    private readonly store: StateStore,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    this.#downtime = new Downtime(store);
  }

  /** Records the downtime since the last run, then notes once a minute that the hub is alive [D-5]. The sweeps are the caller's. */
  async start(scope: FeatureScope): Promise<void> {
    const newest = this.registry.list().reduce<number | undefined>((max, d) => Math.max(max ?? 0, d.lastSeen), undefined);
    this.#downtime = await Downtime.load(this.store);
    const gap = await this.#downtime.start(newest);
    if (gap && gap[1] - gap[0] > this.ttlMs / 10) {
      this.log.info(`the hub was not running for ${Math.round((gap[1] - gap[0]) / 60_000)} min; that time does not count against silent devices`);
    }
    scope.every(HEARTBEAT_MS, () => void this.#heartbeat());
    // The last heartbeat marks the start of the coming downtime.
    scope.defer(() => this.#heartbeat());
  }

  /** A heartbeat the store cannot take (a database gone) is logged; the next one tries again. */
  async #heartbeat(): Promise<void> {
    try {
      await this.#downtime.heartbeat();
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, "cannot note that the hub is alive (the next minute's note tries again)");
    }
  }

  sweep(): string[] {
    const removed = this.registry.sweep(this.ttlMs, (from, to) => this.#downtime.within(from, to));
    const oldest = this.registry.list().reduce((min, d) => Math.min(min, d.lastSeen), Date.now());
    this.#downtime.prune(oldest).catch((error: unknown) => this.log.warn({ err: (error as Error).message }, 'cannot prune the downtime record'));
    return removed;
  }

  /**
   * When `device` passes the TTL if it stays silent: the sweep removes it at any time after this.
   * The downtime spans all lie before this start of the hub, so the downtime within its silence stops
   * growing: the sweep's `now - sign - downtime(sign, now) > ttl` holds exactly when now > this.
   */
  expiresAt(device: DeviceRecord): number {
    const sign = lastSign(device);
    return sign + this.ttlMs + this.#downtime.within(sign, Number.POSITIVE_INFINITY);
  }
}

/** [P-13] A device's last sign of life, as the registry's sweep counts it: a sleeper's counts from its announced wake. */
export function lastSign(device: DeviceRecord): number {
  return device.state === 'sleeping' && device.wakeAt !== undefined ? Math.max(device.lastSeen, device.wakeAt) : device.lastSeen;
}
