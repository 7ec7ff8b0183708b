/** OTA as a feature (`--no-ota`: no pending flags, no job runs, the API refuses new jobs and says why). */
import type { EmbeddedBroker } from '../../broker/embedded-broker.js';
import type { HubLink } from '../../broker/hub-link.js';
import type { DeviceChannel } from '../../ota/device-channel.js';
import { type CancelOutcome, cancelJobInStore, cancelRolloutInStore, type RolloutCancelOutcome } from '../../ota/job-control.js';
import { OtaScheduler } from '../../ota/scheduler.js';
import { uploadsRoot } from '../../ota/uploads.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

export const OTA_OFF_MESSAGE =
  'the hub runs without OTA (--no-ota, MQTTKIT_OTA=off or "ota": false in config.json): no OTA job would run; restart the hub with OTA on to update devices';

export class OtaFeature implements Feature {
  readonly name = 'ota';
  #service: OtaScheduler | undefined;

  constructor(
    private readonly ctx: HubContext,
    private readonly parts: () => { link: HubLink; channel: DeviceChannel; broker: EmbeddedBroker | undefined },
  ) {}

  async start(scope: FeatureScope): Promise<void> {
    const { options } = this.ctx;
    const { link, channel, broker } = this.parts();
    const service = new OtaScheduler({
      link,
      channel,
      store: this.ctx.ota,
      registry: this.ctx.registry,
      bus: this.ctx.bus,
      log: scope.log,
      route: (id) => broker?.route(id),
      options: {
        transferTimeoutMs: 60_000,
        rebootTimeoutMs: options.otaRebootTimeoutMs,
        commandTimeoutMs: 15_000,
        jobDeadlineMs: options.otaJobDeadlineMs ?? 30 * 60_000,
        hubAddress: options.otaHost,
        uploadsRoot: uploadsRoot(options.dataDir),
        listening: broker?.listening,
      },
    });
    this.#service = service;
    await service.start(scope);
  }

  stop(): void {
    this.#service?.stop();
  }

  cancel(id: number, by: string): Promise<CancelOutcome> {
    return this.#service?.cancel(id, by) ?? cancelJobInStore(this.ctx.ota, uploadsRoot(this.ctx.options.dataDir), id, by);
  }

  cancelRollout(id: number, by: string): Promise<RolloutCancelOutcome> {
    return this.#service?.cancelRollout(id, by) ?? cancelRolloutInStore(this.ctx.ota, id, by, (jobId) => this.cancel(jobId, `${by} (rollout #${id})`));
  }
}
