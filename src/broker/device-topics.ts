/**
 * The MQTT side of the hub: device topics in (through ingest), `/set` commands and `$error` reports
 * out, and a removed device's retained topics cleared so a broker cannot bring it back.
 */
import { formatValue } from '../core/coerce.js';
import type { DeviceRecord } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import { ingest } from '../core/ingest.js';
import type { DeviceRegistry } from '../core/registry.js';
import { deviceFieldTopic, META_FIELDS, setTopic, TOPIC_ROOT, valueTopic } from '../core/topic.js';
import type { Logger } from '../log/logger.js';
import { OncePerKey } from '../log/once.js';
import type { HubLink } from './hub-link.js';

export class DeviceTopics {
  /** Messages seen on HomeKit/#, for /api/metrics and the benchmarks. */
  readonly counters = { received: 0, applied: 0, refused: 0 };
  readonly #once = new OncePerKey();
  readonly #unsubscribe: Array<() => void> = [];

  constructor(
    private readonly link: HubLink,
    private readonly registry: DeviceRegistry,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.#unsubscribe.push(
      this.bus.on('write:requested', (ref, value) => {
        this.#send(setTopic(ref.deviceId, ref, ref.characteristic), formatValue(value), 1, false);
      }),
      this.bus.on('device:removed', (device, reason) => {
        this.log.info({ device: device.id, reason }, 'device removed');
        this.#clearRetained(device);
      }),
    );
    await this.link.subscribe(`${TOPIC_ROOT}/#`, (message) => {
      this.counters.received++;
      const outcome = ingest(this.registry, message);
      if (outcome.ok) {
        if (outcome.value === 'applied') this.counters.applied++;
        return;
      }
      this.counters.refused++;
      // One line per device and problem, then quiet: a device repeating a mistake must not flood the log.
      if (this.#once.first(`${outcome.deviceId ?? '?'}|${outcome.error}`)) {
        this.log.warn({ device: outcome.deviceId }, `refused: ${outcome.error}`);
      }
      this.bus.emit('input:refused', { topic: message.topic, error: outcome.error, ...(outcome.deviceId ? { deviceId: outcome.deviceId } : {}) });
      // [P-15]
      if (outcome.deviceId) this.#send(deviceFieldTopic(outcome.deviceId, 'error'), outcome.error, 0, false);
    });
  }

  stop(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  /** [P-16] */
  #clearRetained(device: DeviceRecord): void {
    const topics = [
      ...device.services.flatMap((s) => Object.keys(s.values).map((c) => valueTopic(device.id, s, c))),
      ...META_FIELDS.map((f) => deviceFieldTopic(device.id, f)),
      deviceFieldTopic(device.id, 'state'),
    ];
    for (const topic of topics) this.#send(topic, '', 1, true);
  }

  #send(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    this.link.publish(topic, payload, { qos, retain }).catch((error: Error) => {
      if (this.#once.first(`publish|${error.message}`)) this.log.error({ topic, err: error.message }, 'could not publish to the broker');
    });
  }
}
