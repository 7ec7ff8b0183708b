/**
 * The typed event bus. Features (HomeKit, MQTT I/O, persistence, later the dashboard) listen here
 * and never call each other. A listener that throws is reported and does not stop the others:
 * one feature's bug must not cost another feature its update.
 */
import type { HapValue } from './coerce.js';
import type { DeviceRecord, DeviceState, ServiceRecord } from './device.js';
import type { ServiceAddress } from './topic.js';

export interface CharacteristicRef extends ServiceAddress {
  deviceId: string;
  characteristic: string;
}

export interface HubEvents {
  'device:added': [device: DeviceRecord];
  'device:removed': [device: DeviceRecord, reason: string];
  'device:state': [device: DeviceRecord, previous: DeviceState];
  'device:meta': [device: DeviceRecord];
  /** A device said `$state online` live: it has (re)connected, perhaps after a reboot. */
  'device:announced': [device: DeviceRecord];
  'service:added': [device: DeviceRecord, service: ServiceRecord];
  /** A characteristic value reported by the device (changed or not); `first`: the service had no value for it yet. */
  value: [ref: CharacteristicRef, value: HapValue, changed: boolean, first: boolean];
  /** A controller (HomeKit, later the dashboard) asks the device to take a value. */
  'write:requested': [ref: CharacteristicRef, value: HapValue];
  /** The device did not confirm a write in time: show its last confirmed value again. */
  'write:reverted': [ref: CharacteristicRef, confirmed: HapValue | undefined, requested: HapValue];
  /** Input that was refused; deviceId is set when the message could be tied to a device. */
  'input:refused': [problem: { topic: string; deviceId?: string; error: string }];
}

export type HubEventName = keyof HubEvents;
type Listener<K extends HubEventName> = (...args: HubEvents[K]) => void;
// The tuple types of different events do not unify; `any[]` is the erased form held in the map.
// biome-ignore lint/suspicious/noExplicitAny: the erased form of every listener (see above)
type AnyListener = (...args: any[]) => void;

export class EventBus {
  // Listeners of different events have different tuple types; stored erased, typed at the edges.
  readonly #listeners = new Map<HubEventName, Set<AnyListener>>();

  constructor(private readonly onListenerError: (event: string, error: unknown) => void = () => {}) {}

  on<K extends HubEventName>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends HubEventName>(event: K, ...args: HubEvents[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        // An async listener's rejection is its error too: caught here, not left unhandled.
        const result: unknown = listener(...args);
        if (result instanceof Promise) result.catch((error: unknown) => this.onListenerError(event, error));
      } catch (error) {
        this.onListenerError(event, error);
      }
    }
  }
}
