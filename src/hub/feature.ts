/**
 * The hub's side of the feature lifecycle (the contract is src/core/feature.ts): a Scope per feature
 * that records everything taken through it and ends it all at stop, and the runner that starts
 * features in order, names the one that fails to start, and stops them in reverse.
 */
import type { HubLink } from '../broker/hub-link.js';
import type { EventBus, HubEventName, HubEvents } from '../core/events.js';
import type { Feature, FeatureScope } from '../core/feature.js';
import type { InboundMessage } from '../core/ingest.js';
import type { Logger } from '../log/logger.js';

export type { Feature, FeatureScope };

/** A feature's failure to start, naming it. */
export class FeatureStartError extends Error {
  constructor(
    readonly feature: string,
    cause: unknown,
  ) {
    super(`the ${feature} feature could not start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The scope the hub hands one feature; `end()` removes everything taken through it. */
export class Scope implements FeatureScope {
  readonly #ends: Array<() => void | Promise<void>> = [];
  #active = true;

  constructor(
    private readonly bus: EventBus,
    private readonly link: HubLink | undefined,
    readonly log: Logger,
  ) {}

  get active(): boolean {
    return this.#active;
  }

  on<K extends HubEventName>(event: K, listener: (...args: HubEvents[K]) => void): void {
    this.#ends.push(this.bus.on(event, listener));
  }

  async subscribe(filter: string, handler: (message: InboundMessage) => void): Promise<void> {
    if (!this.link) throw new Error(`cannot subscribe to ${filter}: the feature started before the MQTT link`);
    await this.link.subscribe(filter, (message) => {
      if (this.#active) handler(message);
    });
  }

  every(ms: number, tick: () => void): void {
    const timer = setInterval(tick, ms).unref();
    this.#ends.push(() => clearInterval(timer));
  }

  after(ms: number, fire: () => void): void {
    const timer = setTimeout(fire, ms).unref();
    this.#ends.push(() => clearTimeout(timer));
  }

  defer(end: () => void | Promise<void>): void {
    this.#ends.push(end);
  }

  /** Ends everything in reverse order; one failing end does not keep the others. */
  async end(): Promise<void> {
    this.#active = false;
    for (const end of this.#ends.splice(0).reverse()) {
      try {
        await end();
      } catch (error) {
        this.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'a part of the feature did not stop cleanly');
      }
    }
  }
}

/** Starts features in order and stops them in reverse; a feature that fails to start is named, and what started is stopped. */
export class FeatureRunner {
  readonly #started: Array<{ feature: Feature; scope: Scope }> = [];

  constructor(
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  async start(feature: Feature, link?: HubLink): Promise<void> {
    const scope = new Scope(this.bus, link, this.log.child({ part: feature.name }));
    this.#started.push({ feature, scope });
    try {
      await feature.start(scope);
    } catch (error) {
      throw new FeatureStartError(feature.name, error);
    }
  }

  names(): string[] {
    return this.#started.map(({ feature }) => feature.name);
  }

  async stop(): Promise<void> {
    for (const { feature, scope } of this.#started.splice(0).reverse()) {
      try {
        await feature.stop?.();
      } catch (error) {
        this.log.warn(
          { feature: feature.name, err: error instanceof Error ? error.message : String(error) },
          `the ${feature.name} feature did not stop cleanly`,
        );
      }
      await scope.end();
    }
  }
}
