/**
 * Keeps the store in step with the registry. New devices and services are written at once (they
 * decide HomeKit ids); value changes are batched a second and written in slices of a few dozen
 * devices, one transaction per turn of the event loop, so 500 busy devices never hold an MQTT or
 * HomeKit event behind a long write (issue 13). Everything left is written on stop.
 */
import type { DeviceRecord } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { StateStore } from './state-store.js';

/** Devices per transaction: ~30 µs each (JSON and upsert, measured under load), so a slice stays under a millisecond. */
export const DEVICES_PER_SLICE = 25;

export class RegistryPersistence {
  /** Changed devices waiting for the batch. */
  readonly #dirty = new Set<string>();
  /** Devices whose HomeKit ids depend on the write: written on the next turn, not the next batch. */
  readonly #urgent = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #next: NodeJS.Immediate | undefined;
  readonly #unsubscribe: Array<() => void> = [];

  constructor(
    private readonly bus: EventBus,
    private readonly registry: DeviceRegistry,
    private readonly store: StateStore,
    private readonly flushIntervalMs = 1000,
    /** Told after each commit (the WAL checkpointer). */
    private readonly wrote: () => void = () => {},
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
        this.#urgent.delete(device.id);
        this.store.deleteDevice(device.id);
      }),
    );
  }

  /** Writes every waiting device now, in one transaction (stop, tests). */
  flush(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#next);
    this.#timer = this.#next = undefined;
    this.#write([...this.#urgent, ...this.#dirty]);
    this.#urgent.clear();
    this.#dirty.clear();
  }

  stop(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    this.flush();
  }

  #save(id: string, immediately: boolean): void {
    if (immediately) {
      this.#dirty.delete(id);
      // A device added inside a message handler is complete only after the handler returns.
      if (this.#urgent.size === 0) setImmediate(() => this.#writeUrgent());
      this.#urgent.add(id);
    } else if (!this.#urgent.has(id)) {
      this.#dirty.add(id);
      this.#timer ??= setTimeout(() => this.#batchDue(), this.flushIntervalMs).unref();
    }
  }

  #writeUrgent(): void {
    const ids = [...this.#urgent];
    this.#urgent.clear();
    this.#write(ids);
  }

  #batchDue(): void {
    this.#timer = undefined;
    if (!this.#next) this.#writeSlice(); // else the slices under way take the new ones too
  }

  /** One slice of the batch; the next one waits for the next turn of the event loop. */
  #writeSlice(): void {
    this.#next = undefined;
    const ids: string[] = [];
    for (const id of this.#dirty) {
      ids.push(id);
      this.#dirty.delete(id);
      if (ids.length === DEVICES_PER_SLICE) break;
    }
    this.#write(ids);
    // setImmediate: after the I/O waiting now (a 0 ms timer can run in the same timers phase).
    if (this.#dirty.size > 0) this.#next = setImmediate(() => this.#writeSlice());
  }

  #write(ids: string[]): void {
    // The record as it is now, not as it was when marked: a slice written late is never stale.
    const devices = ids.map((id) => this.registry.get(id)).filter((d): d is DeviceRecord => !!d);
    if (devices.length === 0) return;
    this.store.saveDevices(devices);
    this.wrote();
  }
}
