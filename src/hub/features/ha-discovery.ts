/**
 * `--ha-discovery` ([P-26]): Home Assistant's MQTT discovery configs for every device, retained, kept in
 * step with the registry (new services and characteristics, `$` fields) and cleared when a device goes.
 * [P-27] It records in the store which configs it has published per device, and at start clears those
 * of the record and those the broker retains that nothing wants now (a device removed while the hub was
 * stopped, a prefix used before), once each, and again for Home Assistant when it announces itself; with
 * discovery off (no prefix) it only does that, if the store says discovery ran before.
 */
import type { HubLink } from '../../broker/hub-link.js';
import type { CharacteristicSpec } from '../../core/coerce.js';
import type { DeviceRecord } from '../../core/device.js';
import type { InboundMessage } from '../../core/ingest.js';
import { type DiscoveryMessage, discoveryMessages, haId } from '../../homeassistant/discovery.js';
import { readRetainedConfigs, SWEEP_LIMITS, type SweepLimits } from '../../homeassistant/retained-sweep.js';
import type { HaDiscoveryRecord } from '../../store/state-store.js';
import type { Feature, FeatureScope } from '../feature.js';
import type { HubContext } from './context.js';
import { HaConfigRecord } from './ha-config-record.js';

/** A device announcing its services at boot is one update, not one per characteristic. */
const SETTLE_MS = 300;

export class HaDiscoveryFeature implements Feature {
  readonly name = 'ha-discovery';
  /** What is published now, per device: topic → payload. */
  readonly #published = new Map<string, Map<string, string>>();
  readonly #due = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #scope: FeatureScope | undefined;
  #record: HaConfigRecord | undefined;
  /** [P-27] Configs of ours nothing wants, cleared, not yet known to have reached Home Assistant. */
  readonly #leftovers = new Set<string>();
  /** Recorded leftovers of a device held aside: neither cleared nor forgotten. */
  readonly #heldLeftovers = new Set<string>();

  constructor(
    private readonly ctx: HubContext,
    private readonly link: () => HubLink,
    /** The discovery prefix in use; undefined: discovery is off (only leftovers are cleared). */
    private readonly prefix: string | undefined,
    private readonly limits: SweepLimits = SWEEP_LIMITS,
  ) {}

  async start(scope: FeatureScope): Promise<void> {
    this.#scope = scope;
    const record = new HaConfigRecord(this.ctx.store, scope.log);
    this.#record = record;
    scope.defer(() => record.settled());
    const before = await this.ctx.store.haDiscoveryPrefixes((problem) => scope.log.warn({ problem }, `${problem}: only the current prefix is looked at`));
    const recorded = await record.load();
    const prefix = this.prefix;
    if (prefix !== undefined) {
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
    } else if (before.length === 0 && recorded.configs.size === 0 && recorded.leftovers.length === 0) return;
    await this.#clearRecorded(scope, recorded, [...(prefix === undefined ? [] : [prefix]), ...before]);
    // [P-27] Off now: a hub that published configs before clears them (in the background, bounded).
    if (prefix === undefined) {
      if (before.length > 0) this.#sweepInBackground(scope, before, undefined, before);
      return;
    }
    this.#sweepInBackground(scope, [prefix, ...before.filter((p) => p !== prefix)], prefix, before);
  }

  /**
   * [P-27] The recorded configs that nothing wants now (a device removed while the hub was stopped, the
   * TTL at start, a prefix changed, discovery off) become leftovers: cleared now, for a Home Assistant
   * that is listening already (an external broker), and again when Home Assistant announces itself
   * (`<prefix>/status` `online`, its birth message, sent after it subscribed): with the embedded broker
   * it connects only after the hub is up, and an empty config retained is no config at all. Forgotten
   * after that announcement. Configs of a device held aside (damaged record) stay as they are.
   */
  async #clearRecorded(scope: FeatureScope, recorded: HaDiscoveryRecord, prefixes: string[]): Promise<void> {
    const heldIds = new Set(this.ctx.registry.held().map(({ id }) => id));
    const heldNodes = new Set([...heldIds].map(haId));
    const record = this.#record!;
    for (const [id, topics] of recorded.configs) {
      if (heldIds.has(id)) continue;
      for (const topic of topics) if (!this.#wanted(topic, this.prefix)) this.#leftovers.add(topic);
      if (!this.#published.has(id)) record.device(id, []);
    }
    for (const topic of recorded.leftovers) {
      if (heldNodes.has(topic.split('/')[2]!)) this.#heldLeftovers.add(topic);
      else if (!this.#wanted(topic, this.prefix)) this.#leftovers.add(topic);
    }
    this.#saveLeftovers();
    const listen = new Set([...prefixes, ...[...this.#leftovers].map((topic) => topic.split('/')[0]!)]);
    for (const p of listen) await scope.subscribe(`${p}/status`, (message) => this.#announced(message));
    if (this.#leftovers.size === 0) return;
    const topics = [...this.#leftovers];
    await this.#send(topics.map((topic) => ({ topic, payload: '' })));
    scope.log.info(
      { cleared: topics.length },
      `Home Assistant discovery: cleared ${topics.length} recorded config(s) of ours that no device wants now; cleared again when Home Assistant announces itself`,
    );
  }

  /** Home Assistant's birth message: it has subscribed to discovery, so the leftovers reach it now. */
  #announced(message: InboundMessage): void {
    // A retained `online` replayed by a broker is no sign that Home Assistant listens now.
    if (!message.live || message.payload.toString().trim() !== 'online' || this.#leftovers.size === 0) return;
    // Checked at the moment of clearing: a device back meanwhile (its config not yet published again) keeps it.
    const topics = [...this.#leftovers].filter((topic) => !this.#wanted(topic, this.prefix));
    this.#leftovers.clear();
    this.#saveLeftovers();
    if (topics.length === 0) return;
    void this.#send(topics.map((topic) => ({ topic, payload: '' }))).then((failed) => {
      this.#scope?.log.info(
        { cleared: topics.length - failed.length },
        `Home Assistant announced itself: cleared ${topics.length - failed.length} leftover config(s) of ours for it`,
      );
      if (failed.length === 0) return;
      for (const topic of failed) this.#leftovers.add(topic);
      this.#saveLeftovers();
    });
  }

  #saveLeftovers(): void {
    this.#record?.leftovers([...this.#heldLeftovers, ...this.#leftovers]);
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
      // A leftover of the record was cleared already: once is enough.
      if (!scope.active || held.has(node) || this.#leftovers.has(topic) || this.#wanted(topic, current)) continue;
      await this.#send([{ topic, payload: '' }]);
      cleared.push(topic);
      this.#leftovers.add(topic);
    }
    if (cleared.length > 0) this.#saveLeftovers();
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
    this.#record?.device(device.id, [...wanted.keys()]);
    // A device back under a leftover's topic: wanted again, so never cleared for Home Assistant later.
    let back = false;
    for (const topic of wanted.keys()) back = this.#leftovers.delete(topic) || back;
    if (back) this.#saveLeftovers();
    await this.#send(changes);
  }

  async #clear(device: DeviceRecord, prefix: string): Promise<void> {
    this.#due.delete(device.id);
    const topics = new Set([...(this.#published.get(device.id)?.keys() ?? []), ...discoveryMessages(device, this.#facts, prefix).map((m) => m.topic)]);
    this.#published.delete(device.id);
    const failed = await this.#send([...topics].map((topic) => ({ topic, payload: '' })));
    // Forgotten once cleared: Home Assistant, connected while the hub runs, has taken it. What the broker
    // did not take stays a leftover, cleared at the next start or announcement.
    this.#record?.device(device.id, []);
    if (failed.length > 0) {
      for (const topic of failed) this.#leftovers.add(topic);
      this.#saveLeftovers();
    }
  }

  /** Publishes each message; resolves to the topics the broker did not take (logged). */
  async #send(messages: DiscoveryMessage[]): Promise<string[]> {
    const failed: string[] = [];
    for (const { topic, payload } of messages) {
      try {
        await this.link().publish(topic, payload, { qos: 1, retain: true });
      } catch (error) {
        failed.push(topic);
        this.#scope?.log.warn({ topic, err: error instanceof Error ? error.message : String(error) }, 'Home Assistant discovery config not published');
      }
    }
    return failed;
  }
}
