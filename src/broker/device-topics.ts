/**
 * The MQTT side of the hub: device topics in (through ingest), `/set` commands and `$error` reports
 * out, and a removed device's retained topics cleared so a broker cannot bring it back.
 */
import { formatValue } from '../core/coerce.js';
import type { DeviceRecord } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import { ingest } from '../core/ingest.js';
import type { DeviceRegistry } from '../core/registry.js';
import { deviceFieldTopic, META_FIELDS, parseTopic, setTopic, TOPIC_ROOT, valueTopic } from '../core/topic.js';
import type { Logger } from '../log/logger.js';
import { OncePerKey } from '../log/once.js';
import type { HubLink } from './hub-link.js';

export class DeviceTopics {
  /** Messages seen on HomeKit/#, for /api/metrics and the benchmarks. */
  readonly counters = { received: 0, applied: 0, refused: 0 };
  readonly #once = new OncePerKey();
  readonly #unsubscribe: Array<() => void> = [];
  /** [P-14] Retained `/set` topics waiting for a sleeping device, per device: cleared once settled. */
  readonly #retainedSets = new Map<string, Set<string>>();

  constructor(
    private readonly link: HubLink,
    private readonly registry: DeviceRegistry,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.#unsubscribe.push(
      this.bus.on('write:requested', (ref, value) => {
        const topic = setTopic(ref.deviceId, ref, ref.characteristic);
        // [P-14] A sleeping device's session is gone: the broker keeps the write for it until it wakes.
        if (this.registry.get(ref.deviceId)?.state === 'sleeping') {
          this.#trackSet(ref.deviceId, topic);
          this.#send(topic, formatValue(value), 1, true);
          return;
        }
        this.#clearSet(ref.deviceId, topic); // an older write that still waited is replaced
        this.#send(topic, formatValue(value), 1, false);
      }),
      // Settled when reverted (it woke and did not confirm); confirmations are live reports, below.
      this.bus.on('write:reverted', (ref) => this.#clearSet(ref.deviceId, setTopic(ref.deviceId, ref, ref.characteristic))),
      this.bus.on('device:removed', (device, reason) => {
        this.log.info({ device: device.id, reason }, 'device removed');
        this.#clearRetained(device);
      }),
    );
    await this.link.subscribe(`${TOPIC_ROOT}/#`, (message) => {
      // An external broker replays a retained /set left by an earlier run of the hub: clear it once settled.
      if (!message.live && message.payload.length > 0) {
        const parsed = parseTopic(message.topic);
        if (parsed.ok && parsed.value.kind === 'set') this.#trackSet(parsed.value.deviceId, message.topic);
      }
      this.counters.received++;
      const outcome = ingest(this.registry, message);
      if (outcome.ok) {
        if (outcome.value === 'applied') this.counters.applied++;
        // [P-14] The device reported the characteristic live: the write that waited for it is settled.
        if (message.live && this.#retainedSets.has(message.topic.split('/')[1] ?? '')) {
          const parsed = parseTopic(message.topic);
          if (parsed.ok && parsed.value.kind === 'value')
            this.#clearSet(parsed.value.deviceId, setTopic(parsed.value.deviceId, parsed.value, parsed.value.characteristic));
        }
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
      ...(this.#retainedSets.get(device.id) ?? []),
    ];
    this.#retainedSets.delete(device.id);
    for (const topic of topics) this.#send(topic, '', 1, true);
  }

  #trackSet(deviceId: string, topic: string): void {
    let topics = this.#retainedSets.get(deviceId);
    if (!topics) this.#retainedSets.set(deviceId, (topics = new Set()));
    topics.add(topic);
  }

  /** [P-14] An empty retained payload clears the broker's copy (a device ignores an empty `/set`). */
  #clearSet(deviceId: string, topic: string): void {
    const topics = this.#retainedSets.get(deviceId);
    if (!topics?.delete(topic)) return;
    if (topics.size === 0) this.#retainedSets.delete(deviceId);
    this.#send(topic, '', 1, true);
  }

  #send(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    this.link.publish(topic, payload, { qos, retain }).catch((error: Error) => {
      if (this.#once.first(`publish|${error.message}`)) this.log.error({ topic, err: error.message }, 'could not publish to the broker');
    });
  }
}
