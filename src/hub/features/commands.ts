/** The devices' command channel (cmnd/<id>/… and stat/<id>/Log): `mqttkit cmd`, device logs, and what OTA asks. */
import type { HubLink } from '../../broker/hub-link.js';
import { DeviceChannel } from '../../ota/device-channel.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

export class CommandsFeature implements Feature {
  readonly name = 'commands';
  #channel: DeviceChannel | undefined;

  constructor(
    private readonly ctx: HubContext,
    private readonly link: () => HubLink,
  ) {}

  async start(scope: FeatureScope): Promise<void> {
    this.#channel = new DeviceChannel(this.link(), this.ctx.ota, scope.log);
    await this.#channel.start();
  }

  get channel(): DeviceChannel {
    if (!this.#channel) throw new Error('the command channel is not started');
    return this.#channel;
  }
}
