/**
 * Keeps the store in step with the registry. New devices and services are written at once (they
 * decide HomeKit ids); value changes are batched into one transaction a second, and flushed on stop.
 */
import type { DeviceRecord } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { StateStore } from './state-store.js';

export class RegistryPersistence {
  readonly #dirty = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  readonly #unsubscribe: Array<() => void> = [];

  constructor(
    private readonly bus: EventBus,
    private readonly registry: DeviceRegistry,
    private readonly store: StateStore,
    private readonly flushIntervalMs = 1000,
  ) {}

  start(): void {
    const now = (device: DeviceRecord) => this.#save(device.id, true);
    const later = (device: DeviceRecord) => this.#save(device.id, false);
    this.#unsubscribe.push(
      this.bus.on('device:added', now),
      this.bus.on('service:added', now),
      this.bus.on('device:meta', later),
      this.bus.on('device:state', later),
      // A first value may add an optional characteristic to HomeKit (with an iid controllers keep using):
      // saved at once like a new service, so a crash cannot drop it (found by the kill -9 property test).
      this.bus.on('value', (ref, _value, _changed, first) => this.#save(ref.deviceId, first)),
      this.bus.on('device:removed', (device) => {
        this.#dirty.delete(device.id);
        this.store.deleteDevice(device.id);
      }),
    );
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const devices = [...this.#dirty].map((id) => this.registry.get(id)).filter((d): d is DeviceRecord => !!d);
    this.#dirty.clear();
    if (devices.length > 0) this.store.saveDevices(devices);
  }

  stop(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    this.flush();
  }

  #save(id: string, immediately: boolean): void {
    this.#dirty.add(id);
    // A device added inside a message handler is complete only after the handler returns.
    if (immediately) setImmediate(() => this.flush());
    else this.#timer ??= setTimeout(() => this.flush(), this.flushIntervalMs).unref();
  }
}
