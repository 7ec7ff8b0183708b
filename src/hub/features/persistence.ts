/**
 * The registry kept on disk, as a feature: new devices and services at once, value changes in sliced
 * batches (registry-persistence.ts). Started before the MQTT feature and stopped after it, so the last
 * values in flight are written. A removed device's info row goes with it.
 */
import { RegistryPersistence } from '../../store/registry-persistence.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

export class PersistenceFeature implements Feature {
  readonly name = 'persistence';

  constructor(private readonly ctx: HubContext) {}

  start(scope: FeatureScope): void {
    const persistence = new RegistryPersistence(this.ctx.bus, this.ctx.registry, this.ctx.store, undefined, this.ctx.wrote, (message) =>
      scope.log.warn(message),
    );
    persistence.start();
    scope.defer(() => persistence.stop());
    // What the hub learned of a device and what a person gave it (name, notes) go with it: a device that
    // takes the id later must not inherit the old one's HomeKit name.
    scope.on('device:removed', (device) => {
      this.ctx.ota
        .forgetDevice(device.id)
        .catch((error: unknown) => scope.log.warn({ device: device.id, err: (error as Error).message }, "cannot forget the removed device's info"));
    });
  }
}
