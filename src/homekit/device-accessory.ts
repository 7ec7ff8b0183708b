/**
 * One device as one bridged HAP accessory. Ids are deterministic (UUID from the device id, subtype
 * from the service index), so HAP-NodeJS's identifier cache gives the same AID/IIDs after a restart.
 */
import { Accessory, Characteristic, type CharacteristicValue, HAPStatus, HapStatusError, Perms, Service, uuid } from 'hap-nodejs';
import type { HapValue } from '../core/coerce.js';
import { type DeviceRecord, type DeviceState, type ServiceRecord, serviceLabel } from '../core/device.js';
import type { CharacteristicRef } from '../core/events.js';
import type { ServiceAddress } from '../core/topic.js';
import type { HapCatalog } from './catalog.js';
import { homeKitFirmware, homeKitName, homeKitSerial, isNameCharacteristic } from './display-name.js';

export interface AccessoryHooks {
  /** Answers reads from the hub's state; never waits on MQTT. */
  read(ref: CharacteristicRef): { state: DeviceState; value: HapValue | undefined } | undefined;
  /** Forwards a controller's write; `offline` answers "No Response". */
  write(ref: CharacteristicRef, value: CharacteristicValue): { ok: boolean; error?: string; offline?: boolean };
}

const NO_RESPONSE = () => new HapStatusError(HAPStatus.SERVICE_COMMUNICATION_FAILURE);

export function accessoryUuid(deviceId: string): string {
  return uuid.generate(`mqttkit:${deviceId}`);
}

export class DeviceAccessory {
  readonly accessory: Accessory;
  /** The value a characteristic had before the device reported any: what a revert falls back to. */
  readonly #initial = new Map<Characteristic, CharacteristicValue | null>();

  constructor(
    private readonly device: DeviceRecord,
    private readonly catalog: HapCatalog,
    private readonly hooks: AccessoryHooks,
  ) {
    // new Accessory() brings its one AccessoryInformation service; we only fill it, never add one.
    this.accessory = new Accessory(homeKitName(device.meta.name ?? device.id), accessoryUuid(device.id));
    this.updateInformation();
    for (const service of this.#buildOrder(device.services)) this.addService(service);
  }

  get deviceId(): string {
    return this.device.id;
  }

  updateInformation(): void {
    const meta = this.device.meta;
    const info = this.accessory.getService(Service.AccessoryInformation)!;
    info
      .updateCharacteristic(Characteristic.Manufacturer, homeKitName(meta.manufacturer ?? 'mqttkit', 'mqttkit'))
      .updateCharacteristic(Characteristic.Model, homeKitName(meta.model ?? 'MQTT device', 'MQTT device'))
      .updateCharacteristic(Characteristic.SerialNumber, homeKitSerial(this.device.id))
      .updateCharacteristic(Characteristic.FirmwareRevision, homeKitFirmware(meta.firmware ?? '') ?? '0.0.0');
    if (meta.name) info.updateCharacteristic(Characteristic.Name, homeKitName(meta.name));
    // Services named after the device follow a new `$name` now, not only after the next restart rebuilds them.
    for (const record of this.device.services) {
      const service = this.#service(record);
      if (!service) continue;
      // Names the device published itself keep their text, but one the name rule pads with the default
      // ('A' -> 'Desk lamp A') follows the new default too: what a restart would build, shown now [P-24].
      for (const [characteristicName, value] of Object.entries(record.values)) {
        const characteristic = this.#characteristic(record, service, characteristicName);
        if (!characteristic || !isNameCharacteristic(characteristic.UUID)) continue;
        const shown = this.#shown(record, characteristic, value);
        if (characteristic.value !== shown) characteristic.updateValue(shown);
      }
      if (record.values.Name !== undefined) continue; // the device named this service itself
      const name = service.characteristics.find((c) => c.UUID === Characteristic.Name.UUID);
      if (!name) continue;
      const fresh = this.#defaultName(record);
      if (this.#initial.has(name)) this.#initial.set(name, fresh);
      if (name.value !== fresh) name.updateValue(fresh);
    }
  }

  /**
   * Adds a service with its known values, all or nothing: the service is complete before it joins the
   * accessory, so a refusal by HAP-NodeJS (same UUID without a subtype, over 100 services) leaves the
   * accessory as it was. Throws that refusal to the caller.
   */
  addService(record: ServiceRecord): void {
    if (this.#service(record)) return;
    const spec = this.catalog.service(record.service);
    if (!spec.ok) return; // the registry admitted it through the same catalog; unreachable in practice
    const service = new spec.value.type(this.#defaultName(record), record.index === 0 ? undefined : String(record.index));
    const wired = [...service.characteristics];
    try {
      for (const characteristic of service.characteristics) this.#wire(record, characteristic);
      for (const [name, value] of Object.entries(record.values)) {
        const characteristic = this.#characteristic(record, service, name);
        if (characteristic) {
          wired.push(characteristic);
          characteristic.updateValue(this.#shown(record, characteristic, value));
        }
      }
      this.accessory.addService(service);
    } catch (error) {
      for (const characteristic of wired) this.#initial.delete(characteristic);
      service.removeAllListeners();
      throw error;
    }
  }

  /** Shows a value in HomeKit (notifying subscribed controllers); adds an optional characteristic on first use. */
  setValue(address: ServiceAddress, characteristicName: string, value: HapValue | undefined): void {
    const service = this.#service(address);
    if (!service) return;
    const characteristic = this.#characteristic(address, service, characteristicName);
    if (!characteristic) return;
    characteristic.updateValue(this.#shown(address, characteristic, value ?? this.#initial.get(characteristic) ?? null));
  }

  #service(address: ServiceAddress): Service | undefined {
    const spec = this.catalog.service(address.service);
    if (!spec.ok) return undefined;
    return this.accessory.services.find(
      (s) => s.UUID === spec.value.uuid && (address.index === 0 ? s.subtype === undefined : s.subtype === String(address.index)),
    );
  }

  /**
   * HAP-NodeJS refuses a service without a subtype once one of the same type with a subtype exists, but
   * not the other way round. The registry no longer admits that order [P-8]; records saved before it
   * did are built unindexed-first (ids are keyed by type and subtype, so the order changes no id).
   */
  #buildOrder(services: readonly ServiceRecord[]): ServiceRecord[] {
    const uuid = (s: ServiceRecord) => {
      const spec = this.catalog.service(s.service);
      return spec.ok ? spec.value.uuid : s.service;
    };
    const indexed = new Set(services.filter((s) => s.index !== 0).map(uuid));
    const first = services.filter((s) => s.index === 0 && indexed.has(uuid(s)));
    return [...first, ...services.filter((s) => !first.includes(s))];
  }

  /** [P-24] The name a service gets from the hub: `Desk lamp`, `relay1 Switch 2`. */
  #defaultName(address: ServiceAddress): string {
    return homeKitName(`${this.device.meta.name ?? this.device.id} ${address.index === 0 ? '' : serviceLabel(address)}`);
  }

  /** [P-11] Every name HomeKit shows passes the one name rule, whoever wrote it (device or controller). */
  #shown(address: ServiceAddress, characteristic: Characteristic, value: CharacteristicValue | null): CharacteristicValue | null {
    if (value === null || !isNameCharacteristic(characteristic.UUID)) return value;
    return homeKitName(String(value), this.#defaultName(address));
  }

  #characteristic(address: ServiceAddress, service: Service, name: string): Characteristic | undefined {
    const serviceSpec = this.catalog.service(address.service);
    if (!serviceSpec.ok) return undefined;
    const spec = this.catalog.characteristic(serviceSpec.value, name);
    if (!spec.ok) return undefined;
    const existing = service.characteristics.find((c) => c.UUID === spec.value.uuid);
    if (existing) return existing;
    // Only characteristics the catalog found in the service's definition get here: never "added anyway".
    const added = service.addCharacteristic(spec.value.type);
    this.#wire(address, added);
    return added;
  }

  #wire(address: ServiceAddress, characteristic: Characteristic): void {
    this.#initial.set(characteristic, characteristic.value);
    if (characteristic.UUID === Characteristic.Name.UUID) return;
    const name = this.catalog.nameOf(characteristic.UUID);
    if (!name) return;
    const ref: CharacteristicRef = { deviceId: this.device.id, service: address.service, index: address.index, characteristic: name };
    if (characteristic.props.perms.includes(Perms.PAIRED_READ)) {
      characteristic.onGet(() => {
        const state = this.hooks.read(ref);
        if (!state || state.state === 'offline') throw NO_RESPONSE();
        return this.#shown(address, characteristic, state.value ?? characteristic.value);
      });
    }
    if (characteristic.props.perms.includes(Perms.PAIRED_WRITE)) {
      characteristic.onSet((written) => {
        const value = this.#shown(address, characteristic, written) ?? written;
        const result = this.hooks.write(ref, value);
        // HAP-NodeJS keeps (and tells other controllers) the written value; show the clean one instead.
        if (result.ok && value !== written) setImmediate(() => characteristic.updateValue(value));
        if (result.ok) return;
        throw result.offline ? NO_RESPONSE() : new HapStatusError(HAPStatus.INVALID_VALUE_IN_REQUEST);
      });
    }
  }
}
