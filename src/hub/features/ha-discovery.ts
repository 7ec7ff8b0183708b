/**
 * `--ha-discovery` ([P-26]): Home Assistant's MQTT discovery configs for every device, retained, kept in
 * step with the registry (new services and characteristics, `$` fields) and cleared when a device goes.
 */
import type { HubLink } from '../../broker/hub-link.js';
import type { CharacteristicSpec } from '../../core/coerce.js';
import type { DeviceRecord } from '../../core/device.js';
import { type DiscoveryMessage, discoveryMessages } from '../../homeassistant/discovery.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';

/** A device announcing its services at boot is one update, not one per characteristic. */
const SETTLE_MS = 300;

export class HaDiscoveryFeature implements Feature {
  readonly name = 'ha-discovery';
  /** What is published now, per device: topic → payload. */
  readonly #published = new Map<string, Map<string, string>>();
  readonly #due = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #scope: FeatureScope | undefined;

  constructor(
    private readonly ctx: HubContext,
    private readonly link: () => HubLink,
    private readonly prefix: string,
  ) {}

  async start(scope: FeatureScope): Promise<void> {
    this.#scope = scope;
    const soon = (device: DeviceRecord) => this.#soon(device.id);
    scope.on('device:added', soon);
    scope.on('device:meta', soon);
    scope.on('service:added', soon);
    scope.on('value', (ref, _value, _changed, first) => {
      if (first) this.#soon(ref.deviceId);
    });
    scope.on('device:removed', (device) => void this.#clear(device));
    scope.defer(() => clearTimeout(this.#timer));
    for (const device of this.ctx.registry.list()) await this.#publish(device);
  }

  #soon(id: string): void {
    this.#due.add(id);
    this.#timer ??= setTimeout(() => void this.#flush(), SETTLE_MS).unref();
  }

  async #flush(): Promise<void> {
    this.#timer = undefined;
    const ids = [...this.#due];
    this.#due.clear();
    for (const id of ids) {
      const device = this.ctx.registry.get(id);
      if (device) await this.#publish(device);
    }
  }

  #facts = (service: string, characteristic: string): CharacteristicSpec | undefined => {
    const spec = this.ctx.catalog.service(service);
    if (!spec.ok) return undefined;
    const found = this.ctx.catalog.characteristic(spec.value, characteristic);
    return found.ok ? found.value : undefined;
  };

  async #publish(device: DeviceRecord): Promise<void> {
    const wanted = new Map(discoveryMessages(device, this.#facts, this.prefix).map((m) => [m.topic, m.payload]));
    const before = this.#published.get(device.id) ?? new Map<string, string>();
    const changes: DiscoveryMessage[] = [];
    for (const [topic, payload] of wanted) if (before.get(topic) !== payload) changes.push({ topic, payload });
    for (const topic of before.keys()) if (!wanted.has(topic)) changes.push({ topic, payload: '' });
    this.#published.set(device.id, wanted);
    await this.#send(changes);
  }

  async #clear(device: DeviceRecord): Promise<void> {
    this.#due.delete(device.id);
    const topics = new Set([...(this.#published.get(device.id)?.keys() ?? []), ...discoveryMessages(device, this.#facts, this.prefix).map((m) => m.topic)]);
    this.#published.delete(device.id);
    await this.#send([...topics].map((topic) => ({ topic, payload: '' })));
  }

  async #send(messages: DiscoveryMessage[]): Promise<void> {
    for (const { topic, payload } of messages) {
      try {
        await this.link().publish(topic, payload, { qos: 1, retain: true });
      } catch (error) {
        this.#scope?.log.warn({ topic, err: error instanceof Error ? error.message : String(error) }, 'Home Assistant discovery config not published');
      }
    }
  }
}
