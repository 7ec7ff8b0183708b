/**
 * MQTT as a feature: the embedded broker (with device registration and its login throttle, the
 * security feature) or the link to an external broker, and the device topics on it. Every other
 * feature that talks MQTT starts after this one and uses its link.
 */
import { DeviceTopics } from '../../broker/device-topics.js';
import { EmbeddedBroker } from '../../broker/embedded-broker.js';
import type { HubLink } from '../../broker/hub-link.js';
import { DEFAULT_THROTTLE } from '../../security/auth-throttle.js';
import { EspNowAccess } from '../../security/espnow-access.js';
import { LoginThrottle } from '../../security/login-throttle.js';
import { Registration } from '../../security/registration.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

export class MqttFeature implements Feature {
  readonly name = 'mqtt';
  #link: HubLink | undefined;
  #broker: EmbeddedBroker | undefined;
  #registration: Registration | undefined;
  #topics: DeviceTopics | undefined;

  constructor(private readonly ctx: HubContext) {}

  async start(scope: FeatureScope): Promise<void> {
    const { options, registry, accounts } = this.ctx;
    const mqtt = options.mqtt;
    if (mqtt.kind === 'embedded') {
      const brokerLog = scope.log.child({ part: 'broker' });
      const throttle = new LoginThrottle({ ...DEFAULT_THROTTLE, maxDelayMs: mqtt.authMaxDelayMs });
      const registration = new Registration(accounts, mqtt.registration, brokerLog, throttle);
      this.#registration = registration;
      const broker = await EmbeddedBroker.start(
        {
          host: mqtt.host,
          port: mqtt.port,
          registration,
          tls: mqtt.tls,
          onDeviceGone: (id) => registry.connectionClosed(id),
          espnow: new EspNowAccess(this.ctx.espnow, accounts),
        },
        brokerLog,
      );
      this.#broker = broker;
      scope.defer(() => broker.close());
      this.#link = broker.link();
    } else {
      // MQTT.js is loaded only for an external broker (~10 MB the embedded hub never carries).
      const { connectExternal } = await import('../../broker/external-link.js');
      this.#link = await connectExternal(mqtt, scope.log);
    }
    const link = this.#link;
    scope.defer(() => link.close());
    const topics = new DeviceTopics(link, registry, this.ctx.bus, scope.log);
    this.#topics = topics;
    await topics.start();
    scope.defer(() => topics.stop());
  }

  get link(): HubLink {
    if (!this.#link) throw new Error('the MQTT link is not up yet');
    return this.#link;
  }

  /** The embedded broker, undefined with an external one. */
  /** The embedded broker's registration (none with an external broker). */
  get registration(): Registration | undefined {
    return this.#registration;
  }

  get broker(): EmbeddedBroker | undefined {
    return this.#broker;
  }

  counters(): { received: number; applied: number; refused: number } {
    return { ...(this.#topics?.counters ?? { received: 0, applied: 0, refused: 0 }) };
  }
}
