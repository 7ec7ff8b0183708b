/**
 * `--ha-discovery` ([P-26]): Home Assistant's MQTT discovery configs for every device, retained, kept in
 * step with the registry (new services and characteristics, `$` fields) and cleared when a device goes.
 * [P-27] At start it also clears the retained configs of ours that nothing wants now (a device removed
 * while the hub was stopped, a prefix used before); with discovery off (no prefix) it only does that,
 * if the store says discovery ran before.
 */
import type { HubLink } from '../../broker/hub-link.js';
import type { CharacteristicSpec } from '../../core/coerce.js';
import type { DeviceRecord } from '../../core/device.js';
import { type DiscoveryMessage, discoveryMessages, haId } from '../../homeassistant/discovery.js';
import { readRetainedConfigs, SWEEP_LIMITS, type SweepLimits } from '../../homeassistant/retained-sweep.js';
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
    /** The discovery prefix in use; undefined: discovery is off (only leftovers are cleared). */
    private readonly prefix: string | undefined,
    private readonly limits: SweepLimits = SWEEP_LIMITS,
  ) {}

  async start(scope: FeatureScope): Promise<void> {
    this.#scope = scope;
    const before = await this.ctx.store.haDiscoveryPrefixes((problem) => scope.log.warn({ problem }, `${problem}: only the current prefix is looked at`));
    const prefix = this.prefix;
    if (prefix === undefined) {
      // [P-27] Off now: a hub that published configs before clears them (in the background, bounded).
      if (before.length > 0) this.#sweepInBackground(scope, before, undefined, before);
      return;
    }
    const soon = (device: DeviceRecord) => this.#soon(device.id);
    scope.on('device:added', soon);
    scope.on('device:meta', soon);
    scope.on('service:added', soon);
    scope.on('value', (ref, _value, _changed, first) => {
      if (first) this.#soon(ref.deviceId);
    });
    scope.on('device:removed', (device) => void this.#clear(device, prefix));
    scope.defer(() => clearTimeout(this.#timer));
    for (const device of this.ctx.registry.list()) await this.#publish(device, prefix);
    this.#sweepInBackground(scope, [prefix, ...before.filter((p) => p !== prefix)], prefix, before);
  }

  /** [P-27] The sweep does not hold the hub's start; the hub stopping ends its window. */
  #sweepInBackground(scope: FeatureScope, prefixes: string[], current: string | undefined, recorded: string[]): void {
    let stop: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const done = this.#sweep(scope, prefixes, current, recorded, stopped).catch((error: unknown) =>
      scope.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'Home Assistant discovery: leftover configs not cleared'),
    );
    scope.defer(async () => {
      stop();
      await done;
    });
  }

  async #sweep(scope: FeatureScope, prefixes: string[], current: string | undefined, recorded: string[], stopped: Promise<void>): Promise<void> {
    const found = await readRetainedConfigs(this.link(), prefixes, stopped, this.limits);
    if (!scope.active) return;
    const held = new Set(this.ctx.registry.held().map(({ id }) => haId(id)));
    const cleared: string[] = [];
    for (const [topic, node] of found.ours) {
      // Checked at the moment of clearing: a device that came back meanwhile keeps its configs.
      if (!scope.active || held.has(node) || this.#wanted(topic, current)) continue;
      await this.#send([{ topic, payload: '' }]);
      cleared.push(topic);
    }
    if (cleared.length > 0)
      scope.log.info(
        { prefixes, cleared: cleared.length },
        `Home Assistant discovery: cleared ${cleared.length} retained config(s) of ours that no device wants now`,
      );
    if (!scope.active) return;
    if (!found.complete) {
      scope.log.warn(
        { prefixes, seen: found.seen },
        `Home Assistant discovery: leftover configs not all checked (${found.incomplete}); the next start looks again`,
      );
    }
    // Complete: only the prefix in use may hold configs of ours now. Else all stay recorded, so the next start looks again.
    const next = found.complete
      ? current === undefined
        ? []
        : [current]
      : [...prefixes.filter((p) => p !== current), ...(current === undefined ? [] : [current])];
    if (JSON.stringify(next) !== JSON.stringify(recorded)) await this.ctx.store.setHaDiscoveryPrefixes(next);
  }

  /** A topic that the hub publishes, or would publish for a device it has now. */
  #wanted(topic: string, current: string | undefined): boolean {
    if (current === undefined) return false;
    for (const topics of this.#published.values()) if (topics.has(topic)) return true;
    const node = topic.split('/')[2];
    return this.ctx.registry
      .list()
      .some((device) => haId(device.id) === node && discoveryMessages(device, this.#facts, current).some((m) => m.topic === topic));
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
      if (device && this.prefix !== undefined) await this.#publish(device, this.prefix);
    }
  }

  #facts = (service: string, characteristic: string): CharacteristicSpec | undefined => {
    const spec = this.ctx.catalog.service(service);
    if (!spec.ok) return undefined;
    const found = this.ctx.catalog.characteristic(spec.value, characteristic);
    return found.ok ? found.value : undefined;
  };

  async #publish(device: DeviceRecord, prefix: string): Promise<void> {
    const wanted = new Map(discoveryMessages(device, this.#facts, prefix).map((m) => [m.topic, m.payload]));
    const before = this.#published.get(device.id) ?? new Map<string, string>();
    const changes: DiscoveryMessage[] = [];
    for (const [topic, payload] of wanted) if (before.get(topic) !== payload) changes.push({ topic, payload });
    for (const topic of before.keys()) if (!wanted.has(topic)) changes.push({ topic, payload: '' });
    this.#published.set(device.id, wanted);
    await this.#send(changes);
  }

  async #clear(device: DeviceRecord, prefix: string): Promise<void> {
    this.#due.delete(device.id);
    const topics = new Set([...(this.#published.get(device.id)?.keys() ?? []), ...discoveryMessages(device, this.#facts, prefix).map((m) => m.topic)]);
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
