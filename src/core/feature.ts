/**
 * The feature interface, in the spirit of Zigbee2MQTT's extensions: a feature is started with a scope
 * and takes everything it listens to through it (bus events, MQTT subscriptions, timers, things to
 * close). When the feature stops, the hub ends all of it: no feature keeps its own list of unsubscribe
 * functions, and none outlives its stop. The hub's implementation is src/hub/feature.ts; this file is
 * the contract only, so any area (ota, homekit, store, …) may implement a feature without importing the hub.
 */

import type { Logger } from '../log/logger.js';
import type { HubEventName, HubEvents } from './events.js';
import type { InboundMessage } from './ingest.js';

export interface FeatureScope {
  readonly log: Logger;
  /** Listens on the event bus until the feature stops. */
  on<K extends HubEventName>(event: K, listener: (...args: HubEvents[K]) => void): void;
  /**
   * Subscribes on the hub's MQTT link; the handler is dropped when the feature stops (the link has
   * no unsubscribe, so the scope cuts the handler off instead).
   */
  subscribe(filter: string, handler: (message: InboundMessage) => void): Promise<void>;
  /** A repeating timer (unref'd: it never keeps the process alive), cleared at stop. */
  every(ms: number, tick: () => void): void;
  /** A one-shot timer (unref'd), cleared at stop if it has not fired. */
  after(ms: number, fire: () => void): void;
  /** Something to end at stop (a server to close, a store to flush): run in reverse order of adding. */
  defer(end: () => void | Promise<void>): void;
  /** False once the feature stops: for work that finishes after an await. */
  readonly active: boolean;
}

export interface Feature {
  /** Named in logs and in the error when it cannot start, e.g. `ota`, `homekit`. */
  readonly name: string;
  start(scope: FeatureScope): void | Promise<void>;
  /** Optional: what the feature does itself before the scope is ended (e.g. a last flush). */
  stop?(): void | Promise<void>;
}
