/**
 * Presence and expiry as a feature: [P-20] devices silent past their announced keepalive go offline;
 * [P-13] devices silent past the TTL are removed, counting only hub time [D-5].
 *
 * No poll: one alarm is armed for the earliest moment a device could go offline or expire (issue 13:
 * an idle hub does not wake). A device's moment only moves later while nothing is announced (its
 * messages move `lastSeen` forward); what can bring it earlier is announced on the bus (it comes
 * online, announces a keepalive, changes state) and re-arms the alarm. An alarm that goes off early
 * finds nothing to do and is armed again for the new earliest moment.
 */

import type { DeviceRecord } from '../../core/device.js';
import { KEEPALIVE_GRACE } from '../../core/registry.js';
import { Alarm } from '../alarm.js';
import { DeviceExpiry } from '../device-expiry.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

/**
 * Moments are rounded up to whole seconds, so devices due close together share one wake-up (a device
 * goes offline at most a second after its moment, as with the once-a-second check this replaces).
 */
const GRID_MS = 1000;
/**
 * A sleeping device that wakes and says only `$state sleeping <shorter>` moves its wake time earlier
 * without any bus event; while a device sleeps, the alarm looks at least this often (and never less
 * often than a tenth of the TTL) so that such a device is still removed within that of its moment.
 */
const SLEEPER_LOOK_MS = 3_600_000;

/** [P-20] When an online device that announced a keepalive goes offline if it stays silent. */
export function offlineAt(device: DeviceRecord): number | undefined {
  if (device.state !== 'online' || device.keepalive === undefined) return undefined;
  return device.lastSeen + device.keepalive * 1000 * KEEPALIVE_GRACE;
}

export class PresenceFeature implements Feature {
  readonly name = 'presence';

  constructor(private readonly ctx: HubContext) {}

  async start(scope: FeatureScope): Promise<void> {
    const { registry } = this.ctx;
    const ttlMs = this.ctx.options.deviceTtlMs;
    const sleeperLookMs = Math.min(SLEEPER_LOOK_MS, ttlMs / 10);
    const expiry = new DeviceExpiry(registry, this.ctx.store, ttlMs, scope.log);
    await expiry.start(scope);

    /** The first moment something can happen to `device`; the checks are strict (>), so one ms after it, on the grid. */
    const dueAt = (device: DeviceRecord, now: number): number => {
      const offline = offlineAt(device) ?? Number.POSITIVE_INFINITY;
      const due = Math.ceil((Math.min(offline, expiry.expiresAt(device)) + 1) / GRID_MS) * GRID_MS;
      return device.state === 'sleeping' ? Math.min(due, now + sleeperLookMs) : due;
    };
    const look = () => {
      registry.checkPresence();
      expiry.sweep();
      const now = Date.now();
      let next = Number.POSITIVE_INFINITY;
      for (const device of registry.list()) next = Math.min(next, dueAt(device, now));
      alarm.atOrBefore(next);
    };
    const alarm = new Alarm(look);
    scope.defer(() => alarm.clear());
    const consider = (device: DeviceRecord) => {
      if (registry.get(device.id) === device) alarm.atOrBefore(dueAt(device, Date.now()));
    };
    scope.on('device:added', consider);
    scope.on('device:state', consider);
    scope.on('device:meta', consider); // a new keepalive comes with device:meta
    look();
  }
}
