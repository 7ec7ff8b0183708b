/** The HomeKit bridges as a feature (`--no-homekit` leaves it out: no HAP port opens, MQTT works as ever). */
import { join } from 'node:path';
import { type BridgeStatus, HomeKitBridges } from '../../homekit/homekit-bridges.js';
import type { Feature, FeatureScope } from '../feature.js';
import { VERSION } from '../version.js';
import type { HubContext } from './context.js';

export class HomeKitFeature implements Feature {
  readonly name = 'homekit';
  #bridges: HomeKitBridges | undefined;
  /** Called when a new bridge is published while running (past 149 devices). */
  onPublished: () => void = () => {};

  constructor(private readonly ctx: HubContext) {}

  async start(scope: FeatureScope): Promise<void> {
    const { options } = this.ctx;
    const bridges = new HomeKitBridges(this.ctx.bus, this.ctx.registry, this.ctx.store, this.ctx.catalog, scope.log, {
      storagePath: join(options.dataDir, 'homekit'),
      port: options.hapPort,
      host: options.hapHost,
      pincode: this.ctx.pincode,
      bridgeName: options.bridgeName,
      version: VERSION,
    });
    this.#bridges = bridges;
    scope.defer(() => bridges.stop());
    bridges.onPublished = () => this.onPublished();
    await bridges.start();
  }

  bridges(): BridgeStatus[] {
    return this.#bridges?.bridges() ?? [];
  }
}
