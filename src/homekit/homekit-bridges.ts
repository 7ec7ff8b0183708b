/**
 * The HomeKit feature: one or more HAP bridges that grow an accessory per device. A bridge holds at
 * most 149 accessories; past that a new bridge opens on the next port. A device stays on the bridge
 * it was first placed on, so its AID (kept per bridge by HAP-NodeJS) never changes.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Bridge, Categories, Characteristic, CharacteristicEventTypes, type CharacteristicValue, Service, uuid } from 'hap-nodejs';
import type { HapValue } from '../core/coerce.js';
import type { DeviceRecord } from '../core/device.js';
import type { CharacteristicRef, EventBus } from '../core/events.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { Logger } from '../log/logger.js';
import { useHapFileStorage } from '../store/hap-storage.js';
import type { BridgeIdentity, StateStore } from '../store/state-store.js';
import type { HapCatalog } from './catalog.js';
import { DeviceAccessory } from './device-accessory.js';
import { homeKitName } from './display-name.js';
import { setHapListenHost } from './listen-host.js';

/** HomeKit's limit of bridged accessories per bridge. */
export const MAX_ACCESSORIES_PER_BRIDGE = 149;

export interface HomeKitOptions {
  storagePath: string;
  /** First bridge's port; bridge n listens on port + n. 0 picks free ports. */
  port: number;
  /** Listen (and advertise) on this address only; all interfaces when unset. */
  host?: string | undefined;
  pincode: string;
  bridgeName: string;
  version: string;
}

export interface BridgeStatus {
  index: number;
  name: string;
  username: string;
  port: number | undefined;
  setupURI: string | undefined;
  accessories: number;
  paired: boolean;
}

interface BridgeSlot {
  identity: BridgeIdentity;
  bridge: Bridge;
  accessories: Map<string, DeviceAccessory>;
  port?: number;
  published: boolean;
  idsPending?: boolean;
  /** [D-4] The bridge's row being written: HAP-NodeJS writes no key before it is on disk. */
  recorded: Promise<void>;
}

export class HomeKitBridges {
  readonly #slots: BridgeSlot[] = [];
  readonly #accessories = new Map<string, { slot: BridgeSlot; accessory: DeviceAccessory }>();
  readonly #unsubscribe: Array<() => void> = [];
  #members = new Map<string, number>();
  /** Bridge assignments being written, in order: ids are assigned (and saved) after them. */
  #assigning: Promise<void> = Promise.resolve();
  /** Devices HomeKit could not be given, and why; their records stay in the registry and the store. */
  readonly #problems = new Map<string, string>();
  #started = false;
  /** Called after a bridge is published (its port is known). */
  onPublished: () => void = () => {};

  constructor(
    private readonly bus: EventBus,
    private readonly registry: DeviceRegistry,
    private readonly store: StateStore,
    private readonly catalog: HapCatalog,
    private readonly log: Logger,
    private readonly options: HomeKitOptions,
  ) {}

  /** Re-creates every known device on its bridge before publishing: HomeKit drops what a published bridge lacks. */
  async start(): Promise<void> {
    useHapFileStorage(this.options.storagePath);
    setHapListenHost(this.options.host);
    this.#members = await this.store.bridgeMembers();
    for (const identity of await this.store.bridges()) this.#openSlot(identity, Promise.resolve());
    if (this.#slots.length === 0) this.#newSlot();
    for (const device of this.registry.list()) if (device.services.length > 0) this.#attach(device);
    this.#listen();
    this.#started = true;
    for (const slot of this.#slots) await this.#publish(slot);
  }

  async stop(): Promise<void> {
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#started = false;
    await Promise.all(this.#slots.map((slot) => slot.bridge.unpublish()));
  }

  bridges(): BridgeStatus[] {
    return this.#slots.map((slot) => ({
      index: slot.identity.index,
      name: slot.bridge.displayName,
      username: slot.identity.username,
      port: slot.port,
      setupURI: slot.published ? slot.bridge.setupURI() : undefined,
      accessories: slot.accessories.size,
      // HAP-NodeJS keeps pairings in its AccessoryInfo, public in JS but untyped in its API.
      paired: slot.bridge._accessoryInfo?.paired() ?? false,
    }));
  }

  #listen(): void {
    const on = this.#unsubscribe;
    on.push(
      this.bus.on('service:added', (device, service) => {
        const entry = this.#accessories.get(device.id);
        if (!entry) return this.#attach(device);
        try {
          entry.accessory.addService(service);
        } catch (error) {
          // The accessory stays as it was; the service shows after the next start if HAP can hold it then.
          this.log.error(
            { device: device.id, service: service.service, index: service.index, err: message(error) },
            'HomeKit could not add the service; the accessory keeps its other services',
          );
        }
      }),
      this.bus.on('value', (ref, value) => this.#accessories.get(ref.deviceId)?.accessory.setValue(ref, ref.characteristic, value)),
      this.bus.on('device:meta', (device) => this.#accessories.get(device.id)?.accessory.updateInformation()),
      this.bus.on('write:reverted', (ref, confirmed, requested) => {
        this.log.warn(
          { device: ref.deviceId, characteristic: `${ref.service}${ref.index ? `/${ref.index}` : ''}/${ref.characteristic}` },
          `device did not confirm ${ref.characteristic} = ${String(requested)}; showing its last value again`,
        );
        this.#accessories.get(ref.deviceId)?.accessory.setValue(ref, ref.characteristic, confirmed);
      }),
      this.bus.on('device:removed', (device) => this.#detach(device.id)),
    );
  }

  /**
   * Puts a device's accessory on its bridge (the saved one, else the first with room). One device's
   * data must never stop the hub: an accessory that cannot be built (HAP-NodeJS refuses its services,
   * or its stored record holds values it cannot take) is left out, named in the log, and its record
   * kept untouched for a later version or for the user to remove.
   */
  #attach(device: DeviceRecord): void {
    let accessory: DeviceAccessory;
    try {
      accessory = new DeviceAccessory(device, this.catalog, {
        read: (ref) => this.registry.read(ref),
        write: (ref: CharacteristicRef, value: CharacteristicValue) => this.registry.requestWrite(ref, value as HapValue),
      });
    } catch (error) {
      this.#leaveOut(device.id, message(error));
      return;
    }
    let slot = this.#slotFor(device.id);
    if (!slot) {
      slot = this.#slots.find((s) => s.accessories.size < MAX_ACCESSORIES_PER_BRIDGE) ?? this.#newSlot();
      const index = slot.identity.index;
      this.#assigning = this.#assigning
        .then(() => this.store.assignBridge(device.id, index))
        .catch((error: unknown) =>
          this.log.error({ device: device.id, err: message(error) }, "could not save the device's bridge; it is saved at its next start"),
        );
      this.#members.set(device.id, index);
    }
    try {
      slot.bridge.addBridgedAccessory(accessory.accessory);
    } catch (error) {
      this.#leaveOut(device.id, message(error));
      return;
    }
    this.#problems.delete(device.id);
    slot.accessories.set(device.id, accessory);
    this.#accessories.set(device.id, { slot, accessory });
    if (this.#started && !slot.published)
      void this.#publish(slot).catch((error: Error) => this.log.error({ err: error }, 'could not publish a new HomeKit bridge'));
    else if (slot.published) this.#assignIds(slot);
  }

  #leaveOut(deviceId: string, reason: string): void {
    if (this.#problems.get(deviceId) !== reason) {
      this.log.error(
        { device: deviceId, err: reason },
        `device ${deviceId} left out of HomeKit: its accessory cannot be built (${reason}); its data is kept: fix or remove the device (mqttkit device remove ${deviceId})`,
      );
    }
    this.#problems.set(deviceId, reason);
  }

  #detach(deviceId: string): void {
    const entry = this.#accessories.get(deviceId);
    const home = entry?.slot ?? this.#slotFor(deviceId);
    this.#members.delete(deviceId);
    this.#problems.delete(deviceId);
    if (entry) {
      this.#accessories.delete(deviceId);
      entry.slot.accessories.delete(deviceId);
      entry.slot.bridge.removeBridgedAccessory(entry.accessory.accessory);
    }
    if (home?.published) this.#assignIds(home); // its ids go now (unless a left-out device keeps them)
  }

  /**
   * Fixes (and saves) the new device's ids now rather than at the next controller request, so a crash
   * cannot lose them. Automatic purging is off (at publish it would drop ids of devices not yet
   * re-created); purging here drops only removed devices, as all known ones are attached. While a
   * device of this bridge is left out (its accessory could not be built), nothing is purged, so it
   * keeps its AID and IIDs for when it can be shown again.
   */
  #assignIds(slot: BridgeSlot): void {
    if (slot.idsPending) return;
    slot.idsPending = true;
    // After the device's bridge is on disk (which decides its AID at the next start), then on a turn of its own.
    void this.#assigning.then(() =>
      setImmediate(() => {
        slot.idsPending = false;
        const leftOut = [...this.#problems.keys(), ...this.registry.held().map((h) => h.id)];
        const keeping = leftOut.some((id) => this.#members.get(id) === slot.identity.index);
        if (!keeping) purgeKeepingAidCounter(slot.bridge);
        // Assigns (and saves) ids without expiring any; public in HAP-NodeJS's typings, though undocumented.
        else if (slot.bridge._identifierCache) slot.bridge._assignIDs(slot.bridge._identifierCache);
      }),
    );
  }

  #slotFor(deviceId: string): BridgeSlot | undefined {
    const index = this.#members.get(deviceId);
    if (index === undefined) return undefined;
    return this.#slots.find((s) => s.identity.index === index);
  }

  #newSlot(): BridgeSlot {
    const index = this.#slots.length === 0 ? 0 : Math.max(...this.#slots.map((s) => s.identity.index)) + 1;
    const identity = { index, username: randomUsername() };
    return this.#openSlot(identity, this.store.addBridge(identity));
  }

  #openSlot(identity: BridgeIdentity, recorded: Promise<void>): BridgeSlot {
    recorded.catch(() => {}); // awaited (and its failure reported) by #publish
    const name = homeKitName(identity.index === 0 ? this.options.bridgeName : `${this.options.bridgeName} ${identity.index + 1}`, 'mqttkit');
    const bridge = new Bridge(name, uuid.generate(`mqttkit:bridge:${identity.username}`));
    bridge.disableUnusedIDPurge();
    const info = bridge.getService(Service.AccessoryInformation)!;
    // mDNS settles a name conflict (two bridges called "mqttkit" on one network) by renaming one
    // "mqttkit (2)", and HAP-NodeJS writes that into the bridge's Name: clean it like every other name.
    info.getCharacteristic(Characteristic.Name).on(CharacteristicEventTypes.CHANGE, ({ newValue }) => {
      const clean = homeKitName(String(newValue), 'mqttkit');
      if (clean !== newValue) info.updateCharacteristic(Characteristic.Name, clean);
    });
    info
      .updateCharacteristic(Characteristic.Manufacturer, 'mqttkit')
      .updateCharacteristic(Characteristic.Model, 'mqttkit bridge')
      .updateCharacteristic(Characteristic.SerialNumber, identity.username)
      .updateCharacteristic(Characteristic.FirmwareRevision, this.options.version);
    const slot: BridgeSlot = { identity, bridge, accessories: new Map(), published: false, recorded };
    this.#slots.push(slot);
    return slot;
  }

  async #publish(slot: BridgeSlot): Promise<void> {
    slot.published = true;
    await slot.recorded;
    const requested = this.options.port === 0 ? 0 : this.options.port + slot.identity.index;
    if (requested !== 0) await assertPortFree(requested, this.options.host);
    const listening = new Promise<number>((resolve) => slot.bridge.once('listening', (port: number) => resolve(port)));
    await slot.bridge.publish({
      username: slot.identity.username,
      pincode: this.options.pincode,
      port: requested,
      category: Categories.BRIDGE,
      addIdentifyingMaterial: false,
      ...(this.options.host ? { bind: this.options.host } : {}),
    });
    slot.port = await listening;
    this.log.info({ bridge: slot.bridge.displayName, port: slot.port, accessories: slot.accessories.size }, 'HomeKit bridge published');
    this.onPublished();
  }
}

/** An error's message, bounded: it may quote device input. */
function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length <= 300 ? text : `${text.slice(0, 300)}…`;
}

/**
 * HAP-NodeJS's purge keeps only the ids used by the accessories present; with none left (the last
 * device removed) that drops the "next AID" counter too, and the next new device would get the removed
 * one's aid, so a controller that missed the removal takes it for the old one (rooms, names and
 * automations are stored by aid). An aid is never handed out twice: the counter survives the purge [P-25].
 */
function purgeKeepingAidCounter(bridge: Bridge): void {
  const cache = bridge._identifierCache;
  const next = cache?.getCache(NEXT_AID);
  bridge.purgeUnusedIDs();
  if (cache && next !== undefined && cache.getCache(NEXT_AID) === undefined) {
    cache.setCache(NEXT_AID, next);
    cache.save();
  }
}
const NEXT_AID = '|nextAID';

/** HAP-NodeJS has no error handler on its listening socket; a busy port would crash the hub. */
function assertPortFree(port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `HAP port ${port} is in use: stop the program using it or choose another with --hap-port`
            : `cannot listen on HAP port ${port}: ${error.message}`,
        ),
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** A HAP username looks like a MAC address; a random one per bridge, kept for the bridge's life. */
function randomUsername(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0]! & 0xfe) | 0x02; // locally administered, unicast
  return [...bytes].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}
