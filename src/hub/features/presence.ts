/**
 * Presence and expiry as a feature: [P-20] devices silent past their announced keepalive go offline
 * (checked every second); [P-13] devices silent past the TTL are removed, counting only hub time [D-5].
 */

import { DeviceExpiry } from '../device-expiry.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

export class PresenceFeature implements Feature {
  readonly name = 'presence';

  constructor(private readonly ctx: HubContext) {}

  start(scope: FeatureScope): void {
    const { registry } = this.ctx;
    scope.every(1000, () => registry.checkPresence());
    const expiry = new DeviceExpiry(registry, this.ctx.store, this.ctx.options.deviceTtlMs, scope.log);
    expiry.start(scope);
  }
}
