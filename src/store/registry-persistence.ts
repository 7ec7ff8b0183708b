/**
 * Keeps the store in step with the registry. New devices and services are written at once (they
 * decide HomeKit ids); value changes are batched a second and written in slices of a few dozen
 * devices, one transaction per turn of the event loop, so 500 busy devices never hold an MQTT or
 * HomeKit event behind a long write (issue 13). Everything left is written on stop.
 *
 * Writes run one after another (a newer record never lands before an older one). A write that fails
 * (a PostgreSQL server gone) is logged and its devices wait for the next batch: nothing ends the hub.
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
  /** The writes under way, in order. */
  #writing: Promise<void> = Promise.resolve();
  #failing = false;
  readonly #unsubscribe: Array<() => void> = [];

  constructor(
    private readonly bus: EventBus,
    private readonly registry: DeviceRegistry,
    private readonly store: StateStore,
    private readonly flushIntervalMs = 1000,
    /** Told after each commit (the WAL checkpointer). */
    private readonly wrote: () => void = () => {},
    /** Told when a write fails (its devices are kept for the next batch) and when writes work again. */
    private readonly onError: (message: string) => void = () => {},
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
        void this.#enqueue(() => this.store.deleteDevice(device.id), `removing device ${device.id}`);
      }),
    );
  }

  /** Writes every waiting device now, in one transaction, after the writes under way (stop, tests). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    clearImmediate(this.#next);
    this.#timer = this.#next = undefined;
    void this.#write([...this.#urgent, ...this.#dirty]);
    this.#urgent.clear();
    this.#dirty.clear();
    await this.#writing;
  }

  async stop(): Promise<void> {
    for (const off of this.#unsubscribe.splice(0)) off();
    await this.flush();
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
    void this.#write(ids);
  }

  #batchDue(): void {
    this.#timer = undefined;
    if (!this.#next) this.#writeSlice(); // else the slices under way take the new ones too
  }

  /** One slice of the batch; the next one waits for it and for the next turn of the event loop. */
  #writeSlice(): void {
    this.#next = undefined;
    const ids: string[] = [];
    for (const id of this.#dirty) {
      ids.push(id);
      this.#dirty.delete(id);
      if (ids.length === DEVICES_PER_SLICE) break;
    }
    const written = this.#write(ids);
    // setImmediate: after the I/O waiting now (a 0 ms timer can run in the same timers phase).
    if (this.#dirty.size > 0) {
      this.#next = setImmediate(() => {}); // marks the slices as under way until the next one is due
      void written.then(() => {
        clearImmediate(this.#next);
        this.#next = setImmediate(() => this.#writeSlice());
      });
    }
  }

  #write(ids: string[]): Promise<void> {
    if (ids.length === 0) return this.#writing;
    return this.#enqueue(async () => {
      // The record as it is now, not as it was when marked: a slice written late is never stale.
      const devices = ids.map((id) => this.registry.get(id)).filter((d): d is DeviceRecord => !!d);
      if (devices.length === 0) return;
      try {
        await this.store.saveDevices(devices);
      } catch (error) {
        // Kept for the next batch (a newer change of the same device joins them there).
        for (const id of ids) this.#dirty.add(id);
        this.#timer ??= setTimeout(() => this.#batchDue(), Math.max(this.flushIntervalMs, 1000)).unref();
        throw error;
      }
      this.wrote();
    }, `saving ${ids.length} device(s)`);
  }

  #enqueue(work: () => Promise<void>, what: string): Promise<void> {
    this.#writing = this.#writing.then(work).then(
      () => {
        if (this.#failing) this.onError('the store takes writes again: the devices kept meanwhile are saved');
        this.#failing = false;
      },
      (error: unknown) => {
        // One message per outage, not one a second.
        if (!this.#failing) this.onError(`${what} failed (${error instanceof Error ? error.message : String(error)}); kept, tried again with the next batch`);
        this.#failing = true;
      },
    );
    return this.#writing;
  }
}
