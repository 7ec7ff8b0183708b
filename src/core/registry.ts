/**
 * The device registry: the hub's single source of truth about devices, their services and values.
 * Every change is validated first (a refused input changes nothing) and announced on the bus.
 */
import type { Catalog, ServiceSpec } from './catalog.js';
import { type CharacteristicSpec, coerceTyped, coerceValue, type HapValue } from './coerce.js';
import { type DeviceRecord, type DeviceState, findService, serviceLabel } from './device.js';
import { parseDeviceRecord } from './device-record.js';
import type { CharacteristicRef, EventBus } from './events.js';
import { fail, ok, type Result } from './result.js';
import { serviceConflict } from './service-conflict.js';
import { isValidDeviceId, MAX_SERVICE_INDEX, type MetaField, type ServiceAddress, truncate } from './topic.js';

/** An accessory holds at most 100 services, one of which is AccessoryInformation. */
export const MAX_SERVICES_PER_DEVICE = 99;
/** The longest `$state sleeping <seconds>` the hub accepts: 30 days. */
export const MAX_SLEEP_SECONDS = 30 * 86_400;
const META_MAX_LEN = 64;
/** [P-20] The longest keepalive a device may announce: MQTT's own limit, in seconds. */
export const MAX_KEEPALIVE_S = 65535;
/** [P-20] A device is offline after this many keepalive periods without a live message (as MQTT brokers do). */
export const KEEPALIVE_GRACE = 1.5;

export interface RegistryOptions {
  /** How long a written value is shown before it reverts when the device does not confirm it. */
  writeTimeoutMs: number;
  now?: () => number;
}

/** Whether a message came live from the device, or is a broker's replay of a retained message. */
export interface Origin {
  live: boolean;
}

export type WriteResult = Result<HapValue> & { offline?: boolean };

export interface RestoreOptions {
  /** No device is connected yet (the embedded broker starts with the hub): none is online until it speaks. */
  noneConnected?: boolean;
}

export interface RestoreOutcome {
  /** Stored records the hub cannot use: held aside, untouched, until their device is removed. */
  held: Array<{ id: string; problem: string }>;
  /** Restored devices the presence rules took offline (in memory: a record is saved when its device speaks). */
  changed: string[];
}

interface PendingWrite {
  requested: HapValue;
  /** The revert timer; none while the device sleeps: it starts when the device wakes. [P-14] */
  timer: NodeJS.Timeout | undefined;
}

export class DeviceRegistry {
  readonly #devices = new Map<string, DeviceRecord>();
  readonly #pending = new Map<string, PendingWrite>();
  /** Devices whose stored record could not be used, and why; their input is refused until removed. */
  readonly #held = new Map<string, string>();
  readonly #now: () => number;

  constructor(
    private readonly bus: EventBus,
    private readonly catalog: Catalog,
    private readonly options: RegistryOptions,
  ) {
    this.#now = options.now ?? Date.now;
  }

  /**
   * Loads saved devices at start-up, before any feature listens; announces nothing. A record that is
   * not a device record is held aside (see hold). Presence is not restored on trust: [P-19] with the
   * embedded broker no device is connected yet, and [P-20] a device past its keepalive is not online.
   */
  restore(records: Iterable<unknown>, options: RestoreOptions = {}): RestoreOutcome {
    const outcome: RestoreOutcome = { held: [], changed: [] };
    for (const record of records) {
      const parsed = parseDeviceRecord(record);
      if (!parsed.ok) {
        const id = idOf(record);
        outcome.held.push({ id, problem: parsed.error });
        this.hold(id, parsed.error);
        continue;
      }
      const device = parsed.value;
      this.#devices.set(device.id, device);
      if (device.state === 'online' && (options.noneConnected || this.#overdue(device))) {
        device.state = 'offline';
        outcome.changed.push(device.id);
      }
    }
    return outcome;
  }

  /**
   * Holds a device's stored record aside without reading it (it could not be parsed, or is not a device
   * record): its data stays as it is, and its messages are refused until the device is removed.
   */
  hold(id: string, problem: string): void {
    if (isValidDeviceId(id) && !this.#devices.has(id)) this.#held.set(id, problem);
  }

  /** Devices held aside, and why. */
  held(): Array<{ id: string; problem: string }> {
    return [...this.#held].map(([id, problem]) => ({ id, problem }));
  }

  get(id: string): DeviceRecord | undefined {
    return this.#devices.get(id);
  }

  list(): DeviceRecord[] {
    return [...this.#devices.values()];
  }

  get size(): number {
    return this.#devices.size;
  }

  /** Resolves a service and characteristic name against the catalog, refusing what HAP would not take. */
  resolve(address: ServiceAddress, characteristic: string): Result<{ service: ServiceSpec; characteristic: CharacteristicSpec }> {
    const service = this.catalog.service(address.service);
    if (!service.ok) return service;
    const spec = this.catalog.characteristic(service.value, characteristic);
    if (!spec.ok) return spec;
    return ok({ service: service.value, characteristic: spec.value });
  }

  /** A device reported a characteristic value (`HomeKit/<id>/<Service>[/<i>]/<Char> <text>`). */
  reportValue(deviceId: string, address: ServiceAddress, characteristic: string, text: string, origin: Origin): Result<HapValue> {
    const held = this.#heldProblem(deviceId);
    if (held) return held;
    const resolved = this.resolve(address, characteristic);
    if (!resolved.ok) return resolved;
    const { characteristic: spec } = resolved.value;
    if (!spec.perms.includes('pr') && !spec.perms.includes('ev')) {
      return fail(`${spec.name} is write-only in HomeKit; a device cannot report it`);
    }
    const coerced = coerceValue(spec, text); // [P-9] [P-10]
    if (!coerced.ok) return coerced;

    let device = this.#devices.get(deviceId);
    const existing = device && findService(device, address);
    if (device && !existing && device.services.length >= MAX_SERVICES_PER_DEVICE) {
      return fail(`device ${deviceId} already has ${MAX_SERVICES_PER_DEVICE} services, the most one HomeKit accessory can hold`);
    }
    if (address.index > MAX_SERVICE_INDEX) return fail(`service index ${address.index} is above ${MAX_SERVICE_INDEX}`);
    if (device && !existing) {
      const conflict = serviceConflict(device.services, address, (name) => {
        const spec = this.catalog.service(name);
        return spec.ok ? spec.value.uuid : undefined;
      });
      if (conflict) return fail(conflict); // [P-8]
    }

    device ??= this.#create(deviceId); // [P-5] the first valid value creates the device (and its accessory)
    this.#touch(device, origin);
    let service = existing;
    if (!service) {
      service = { service: address.service, index: address.index, values: {} };
      device.services.push(service);
      this.bus.emit('service:added', device, service);
    }
    const value = coerced.value;
    const first = !Object.hasOwn(service.values, spec.name);
    const changed = service.values[spec.name] !== value;
    service.values[spec.name] = value;
    const ref: CharacteristicRef = { deviceId, service: address.service, index: address.index, characteristic: spec.name };
    this.#settlePending(ref);
    this.bus.emit('value', ref, value, changed, first);
    return ok(value);
  }

  /** `HomeKit/<id>/$name` and friends: text that fills AccessoryInformation. */
  reportMeta(deviceId: string, field: MetaField, text: string, origin: Origin): Result<string> {
    const held = this.#heldProblem(deviceId);
    if (held) return held;
    const value = text.trim();
    if (value.length === 0) return fail(`$${field} is empty`);
    if ([...value].length > META_MAX_LEN) return fail(`$${field} is at most ${META_MAX_LEN} characters`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(value)) return fail(`$${field} must not contain control characters`);
    const device = this.#devices.get(deviceId) ?? this.#create(deviceId);
    this.#touch(device, origin);
    if (device.meta[field] !== value) {
      device.meta[field] = value;
      this.bus.emit('device:meta', device);
    }
    return ok(value);
  }

  /**
   * `$state`: `online`, `offline`, `sleeping [seconds until wake]`, `removed`; an empty payload
   * (a cleared retained state) also removes the device.
   */
  reportState(deviceId: string, text: string, origin: Origin): Result<string> {
    const [word = '', argument, ...extra] = text.trim().split(/\s+/);
    const state = word.toLowerCase();
    if (state === 'removed' || state === '') {
      this.remove(deviceId, state === '' ? 'its retained $state was cleared' : 'it said $state removed');
      return ok('removed');
    }
    const held = this.#heldProblem(deviceId);
    if (held) return held;
    if (state !== 'online' && state !== 'offline' && state !== 'sleeping') {
      return fail(`'${word}' is not a device state: use online, offline, sleeping [seconds] or removed`);
    }
    if (extra.length > 0 || (argument !== undefined && state !== 'sleeping')) {
      return fail(`$state ${state} takes ${state === 'sleeping' ? 'at most one argument (seconds until wake)' : 'no argument'}`);
    }
    let wakeAt: number | undefined;
    if (argument !== undefined) {
      const seconds = Number(argument);
      if (!/^\d+(\.\d+)?$/.test(argument) || !Number.isFinite(seconds)) {
        return fail(`'${truncate(argument, 20)}' is not a sleep duration: give whole seconds until the device wakes`);
      }
      // [P-12] A wake time decades away would keep a dead device from ever expiring.
      if (seconds > MAX_SLEEP_SECONDS)
        return fail(`a sleep of ${truncate(argument, 20)} s is longer than the longest the hub waits for (${MAX_SLEEP_SECONDS} s, 30 days)`);
      wakeAt = this.#now() + seconds * 1000;
    }
    const device = this.#devices.get(deviceId) ?? this.#create(deviceId);
    // [P-20] A broker's replay of a retained `online` is old news once the device's keepalive has passed.
    if (!origin.live && state === 'online' && this.#overdue(device)) return ok(state);
    if (origin.live) device.lastSeen = this.#now();
    this.#setState(device, state, wakeAt);
    if (origin.live && state === 'online') {
      // A new session starts: it announces its own keepalive (or none) after this. [P-20]
      if (device.keepalive !== undefined) this.#setKeepalive(device, undefined);
      this.bus.emit('device:announced', device);
    }
    return ok(state);
  }

  /**
   * [P-20] `$keepalive <seconds>`: the device promises a live message at least every so many seconds
   * (it republishes `$keepalive` when it has nothing else to say); `0` withdraws the promise.
   */
  reportKeepalive(deviceId: string, text: string, origin: Origin): Result<string> {
    const held = this.#heldProblem(deviceId);
    if (held) return held;
    const value = text.trim();
    const seconds = Number(value);
    if (!/^\d{1,5}$/.test(value) || seconds > MAX_KEEPALIVE_S) {
      return fail(`'${truncate(value)}' is not a keepalive: give whole seconds 1-${MAX_KEEPALIVE_S} (your MQTT keepalive), or 0 to withdraw it`);
    }
    const device = this.#devices.get(deviceId) ?? this.#create(deviceId);
    this.#touch(device, origin);
    this.#setKeepalive(device, seconds === 0 ? undefined : seconds);
    return ok(value);
  }

  /**
   * [P-19] The device's own MQTT connection closed (clean DISCONNECT included): it is offline, unless it
   * said it is sleeping. Only the embedded broker can tell.
   */
  connectionClosed(deviceId: string): void {
    const device = this.#devices.get(deviceId);
    if (device?.state === 'online') this.#setState(device, 'offline', undefined);
  }

  /** [P-20] Takes offline every online device silent for longer than its keepalive allows; returns their ids. */
  checkPresence(): string[] {
    const overdue = this.list().filter((d) => d.state === 'online' && this.#overdue(d));
    for (const device of overdue) this.#setState(device, 'offline', undefined);
    return overdue.map((d) => d.id);
  }

  /** Forgets a device; features take it out of HomeKit and clear its retained topics (what stays: [P-25]). */
  remove(deviceId: string, reason: string): boolean {
    const device = this.#devices.get(deviceId) ?? this.#release(deviceId);
    if (!device) return false;
    this.#devices.delete(deviceId);
    for (const [key, pending] of this.#pending) {
      if (key.startsWith(`${deviceId}/`)) {
        clearTimeout(pending.timer);
        this.#pending.delete(key);
      }
    }
    this.bus.emit('device:removed', device, reason);
    return true;
  }

  /**
   * [P-13] Removes devices silent for longer than `ttlMs`; a sleeping device counts from its wake time.
   * `downtime(from, to)` is how long the hub itself was not running in that span: not the device's silence.
   */
  sweep(ttlMs: number, downtime: (from: number, to: number) => number = () => 0): string[] {
    const now = this.#now();
    const expired = this.list().filter((d) => now - lastSign(d) - downtime(lastSign(d), now) > ttlMs);
    for (const device of expired) this.remove(device.id, `silent since ${new Date(lastSign(device)).toISOString()}`);
    return expired.map((d) => d.id);
  }

  /**
   * A controller asks for a new value. It is validated like device input, announced for the MQTT
   * side to publish as `/set`, and shown until the device confirms or the timeout reverts it.
   */
  requestWrite(ref: CharacteristicRef, value: unknown): WriteResult {
    const device = this.#devices.get(ref.deviceId);
    if (!device) return fail(`no device ${ref.deviceId}`);
    // [P-14] writes to an offline device fail with No Response; nothing is published
    if (device.state === 'offline') return { ...fail(`device ${ref.deviceId} is offline`), offline: true };
    if (!findService(device, ref)) return fail(`device ${ref.deviceId} has no service ${serviceLabel(ref)}`);
    const resolved = this.resolve(ref, ref.characteristic);
    if (!resolved.ok) return resolved;
    const { characteristic: spec } = resolved.value;
    if (!spec.perms.includes('pw')) return fail(`${spec.name} is read-only`);
    const coerced = coerceTyped(spec, value);
    if (!coerced.ok) return coerced;

    const key = refKey(ref);
    const previous = this.#pending.get(key);
    if (previous) clearTimeout(previous.timer);
    // [P-14] A sleeping device gets the write when it wakes (a retained /set): the confirmation
    // timeout counts from its wake, and until then HomeKit shows the written value.
    const timer = device.state === 'sleeping' ? undefined : this.#revertTimer(ref);
    this.#pending.set(key, { requested: coerced.value, timer });
    this.bus.emit('write:requested', { ...ref }, coerced.value);
    return coerced;
  }

  #revertTimer(ref: CharacteristicRef): NodeJS.Timeout {
    const timer = setTimeout(() => this.#revert(ref), this.options.writeTimeoutMs);
    timer.unref();
    return timer;
  }

  /** What a controller reads: the written value while it awaits confirmation, else the reported one. */
  read(ref: CharacteristicRef): { state: DeviceState; value: HapValue | undefined } | undefined {
    const device = this.#devices.get(ref.deviceId);
    if (!device) return undefined;
    const pending = this.#pending.get(refKey(ref));
    const value = pending ? pending.requested : findService(device, ref)?.values[ref.characteristic];
    return { state: device.state, value };
  }

  /** Stops the write timers; used on shutdown. */
  close(): void {
    for (const pending of this.#pending.values()) clearTimeout(pending.timer);
    this.#pending.clear();
  }

  #heldProblem(deviceId: string): Result<never> | undefined {
    const problem = this.#held.get(deviceId);
    if (problem === undefined) return undefined;
    return fail(
      `the hub has a stored record of ${deviceId} that it cannot use (${problem}); it is kept untouched and the device is left out: remove the device (dashboard, or 'mqttkit device remove ${deviceId}') to start it afresh`,
    );
  }

  /** A held device being removed: a stand-in record, so every feature forgets it as usual. */
  #release(deviceId: string): DeviceRecord | undefined {
    if (!this.#held.delete(deviceId)) return undefined;
    return { id: deviceId, meta: {}, state: 'offline', lastSeen: 0, createdAt: 0, services: [] };
  }

  #overdue(device: DeviceRecord): boolean {
    return device.keepalive !== undefined && this.#now() - device.lastSeen > device.keepalive * 1000 * KEEPALIVE_GRACE;
  }

  #setKeepalive(device: DeviceRecord, seconds: number | undefined): void {
    if (device.keepalive === seconds) return;
    if (seconds === undefined) delete device.keepalive;
    else device.keepalive = seconds;
    this.bus.emit('device:meta', device); // saved with the device; shown nowhere in HomeKit
  }

  #create(id: string): DeviceRecord {
    const now = this.#now();
    const device: DeviceRecord = { id, meta: {}, state: 'online', lastSeen: now, createdAt: now, services: [] };
    this.#devices.set(id, device);
    this.bus.emit('device:added', device);
    return device;
  }

  /** A live message proves the device is awake and connected. */
  #touch(device: DeviceRecord, origin: Origin): void {
    if (!origin.live) return;
    device.lastSeen = this.#now();
    if (device.state !== 'online') this.#setState(device, 'online', undefined);
  }

  #setState(device: DeviceRecord, state: DeviceState, wakeAt: number | undefined): void {
    const previous = device.state;
    device.state = state;
    if (wakeAt === undefined) delete device.wakeAt;
    else device.wakeAt = wakeAt;
    if (previous === 'sleeping' && state !== 'sleeping') this.#startWaitingWrites(device.id);
    if (previous !== state) this.bus.emit('device:state', device, previous);
  }

  /** [P-14] The device woke (or is no longer asleep): writes that waited for it get their confirmation timeout now. */
  #startWaitingWrites(deviceId: string): void {
    for (const [key, pending] of this.#pending) {
      if (pending.timer === undefined && key.startsWith(`${deviceId}/`)) {
        const [service = '', index = '0', characteristic = ''] = key.slice(deviceId.length + 1).split('/');
        pending.timer = this.#revertTimer({ deviceId, service, index: Number(index), characteristic });
      }
    }
  }

  #settlePending(ref: CharacteristicRef): void {
    const key = refKey(ref);
    const pending = this.#pending.get(key);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#pending.delete(key);
  }

  #revert(ref: CharacteristicRef): void {
    const key = refKey(ref);
    const pending = this.#pending.get(key);
    if (!pending) return;
    this.#pending.delete(key);
    const device = this.#devices.get(ref.deviceId);
    const confirmed = device && findService(device, ref)?.values[ref.characteristic];
    this.bus.emit('write:reverted', ref, confirmed, pending.requested);
  }
}

/** The id a stored record names, for the log, whatever the record's shape. */
function idOf(record: unknown): string {
  const id = typeof record === 'object' && record !== null ? (record as { id?: unknown }).id : undefined;
  return typeof id === 'string' ? id.slice(0, 64) : '(no id)';
}

function refKey(ref: CharacteristicRef): string {
  return `${ref.deviceId}/${ref.service}/${ref.index}/${ref.characteristic}`;
}

function lastSign(device: DeviceRecord): number {
  return device.state === 'sleeping' && device.wakeAt !== undefined ? Math.max(device.lastSeen, device.wakeAt) : device.lastSeen;
}
