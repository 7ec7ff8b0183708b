/**
 * [P-21] What the embedded broker knows and an external one hides: which devices have an open
 * connection, and what that connection subscribed to. The hub asks a device its questions and starts
 * its OTA jobs only once it listens (its current connection subscribed to cmnd/<id>/OTA or <id>/OTA),
 * whatever the order of its SUBSCRIBE and `$state online`. A new connection starts with nothing.
 * Only filters that reach those two topics are kept, and only a change to them is told: a device that
 * subscribes to thousands of its own topics (or SUBSCRIBEs in a loop) costs neither memory here nor
 * work in the hub (bound every input before work is done on it).
 */
import { matches } from './topic-filter.js';

/** [P-21] The topics a device listens on for the hub's commands and OTA triggers: all `hears` is asked about. */
const listenTopics = (deviceId: string): string[] => [`cmnd/${deviceId}/OTA`, `${deviceId}/OTA`];
const reachesListenTopics = (deviceId: string, filter: string): boolean => listenTopics(deviceId).some((topic) => matches(filter, topic));

/** What the OTA service asks; undefined where the broker cannot tell (external broker). */
export interface ListeningSource {
  /** The device's current connection has a granted subscription that matches `topic` (cmnd/<id>/OTA or <id>/OTA). */
  hears(deviceId: string, topic: string): boolean;
  /** The device has an open connection now. */
  connected(deviceId: string): boolean;
  /** Called after a device's connection opened, subscribed, unsubscribed or closed; returns a function that stops it. */
  onChange(listener: (deviceId: string) => void): () => void;
}

interface Connection {
  /** The broker's client object: a closing old connection must not clear a newer one's state. */
  client: object;
  filters: Set<string>;
}

export class DeviceListening implements ListeningSource {
  readonly #connections = new Map<string, Connection>();
  readonly #listeners = new Set<(deviceId: string) => void>();

  hears(deviceId: string, topic: string): boolean {
    const filters = this.#connections.get(deviceId)?.filters;
    if (!filters) return false;
    for (const filter of filters) if (matches(filter, topic)) return true;
    return false;
  }

  connected(deviceId: string): boolean {
    return this.#connections.has(deviceId);
  }

  onChange(listener: (deviceId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A device's connection is up (authenticated): it listens to nothing yet. */
  opened(deviceId: string, client: object): void {
    this.#connections.set(deviceId, { client, filters: new Set() });
    this.#changed(deviceId);
  }

  /** Granted subscriptions of a device's connection (refused ones never reach here). */
  subscribed(deviceId: string, client: object, filters: string[]): void {
    const connection = this.#current(deviceId, client);
    if (!connection) return;
    const before = connection.filters.size;
    for (const filter of filters) if (reachesListenTopics(deviceId, filter)) connection.filters.add(filter);
    if (connection.filters.size !== before) this.#changed(deviceId);
  }

  unsubscribed(deviceId: string, client: object, filters: string[]): void {
    const connection = this.#current(deviceId, client);
    if (!connection) return;
    let changed = false;
    for (const filter of filters) changed = connection.filters.delete(filter) || changed;
    if (changed) this.#changed(deviceId);
  }

  closed(deviceId: string, client: object): void {
    if (!this.#current(deviceId, client)) return;
    this.#connections.delete(deviceId);
    this.#changed(deviceId);
  }

  #current(deviceId: string, client: object): Connection | undefined {
    const connection = this.#connections.get(deviceId);
    return connection?.client === client ? connection : undefined;
  }

  #changed(deviceId: string): void {
    // A listener's failure must not stop the broker's event handling (or the other listeners).
    for (const listener of this.#listeners) {
      try {
        listener(deviceId);
      } catch {
        // the OTA service guards its own work; nothing to do here
      }
    }
  }
}
