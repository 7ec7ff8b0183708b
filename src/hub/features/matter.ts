/**
 * `--matter` (docs/matter.md): every device as a bridged node of a Matter Aggregator, kept in step with
 * the registry (devices and services added and removed live, values, names, reachability), and a
 * controller's writes handed to the registry as HomeKit's are: the same `/set`, confirm and revert.
 * matter.js is loaded only when the feature starts.
 */
import type { HapValue } from '../../core/coerce.js';
import type { DeviceRecord, ServiceRecord } from '../../core/device.js';
import type { CharacteristicRef } from '../../core/events.js';
import { homeKitName } from '../../homekit/display-name.js';
import type { MatterBridge } from '../../matter/bridge.js';
import { deviceKey, ENDPOINTS_SETTING, EndpointNumbers, parseTable, serviceKey } from '../../matter/endpoint-numbers.js';
import { fromMatter, type MatterShape, shapeOf, toMatter } from '../../matter/mapping.js';
import { checkMatterStorage, loadPairing, prepareMatterDir, tighten } from '../../matter/state-files.js';
import type { MatterControl, MatterStatus } from '../../matter/status.js';
import type { Feature, FeatureScope } from '../feature.js';
import { VERSION } from '../version.js';
import type { HubContext } from './context.js';

export class MatterFeature implements Feature, MatterControl {
  readonly name = 'matter';
  #bridge: MatterBridge | undefined;
  #numbers: EndpointNumbers | undefined;
  #scope: FeatureScope | undefined;
  /** Registry changes are applied one after another, in order: endpoint numbers are assigned once per key. */
  #queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: HubContext,
    private readonly port: number,
  ) {}

  async start(scope: FeatureScope): Promise<void> {
    this.#scope = scope;
    const { options, store } = this.ctx;
    // [M-7] The bridge's files: owner-only, and refused by name when damaged.
    const dir = prepareMatterDir(options.dataDir);
    checkMatterStorage(dir);
    const pairing = loadPairing(dir);
    const table = parseTable(await store.getSetting(ENDPOINTS_SETTING));
    if (!table.ok) {
      throw new Error(
        `the stored Matter endpoint numbers (setting ${ENDPOINTS_SETTING}) are damaged (${table.error}): refused rather than renumbered, which would scramble every controller's rooms; restore the store from a backup`,
      );
    }
    this.#numbers = new EndpointNumbers(table.value, (text) => store.setSetting(ENDPOINTS_SETTING, text));
    await import('../../matter/platform.js');
    const { MatterBridge } = await import('../../matter/bridge.js');
    const bridge = await MatterBridge.start(
      { storagePath: dir, port: this.port, pairing, name: options.bridgeName, version: VERSION, log: scope.log },
      (deviceId, service, cluster, attribute, value) => this.#write(deviceId, service, cluster, attribute, value),
    ).catch((error: unknown) => {
      throw portHint(error, this.port);
    });
    this.#bridge = bridge;
    scope.defer(async () => {
      this.#bridge = undefined;
      await bridge.stop();
      tighten(dir);
    });
    // Every known device before going online: a controller never sees a half-built bridge.
    for (const device of this.ctx.registry.list()) await this.#sync(device);
    await bridge.goOnline().catch((error: unknown) => {
      throw portHint(error, this.port);
    });
    tighten(dir);

    const sync = (device: DeviceRecord) => this.#then(() => this.#sync(device));
    scope.on('device:added', sync);
    scope.on('device:meta', sync);
    scope.on('device:state', sync);
    scope.on('service:added', sync);
    scope.on('value', (ref, value, _changed, first) => {
      const device = this.ctx.registry.get(ref.deviceId);
      // A characteristic seen for the first time can change the endpoint's shape (a light gains Brightness).
      this.#then(async () => {
        if (first && device) await this.#sync(device);
        await this.#update(ref, value);
      });
    });
    // The device did not confirm a write in time: Matter shows its last confirmed value again, as HomeKit does.
    scope.on('write:reverted', (ref, confirmed) => {
      if (confirmed !== undefined) this.#then(() => this.#update(ref, confirmed));
    });
    scope.on('device:removed', (device) => this.#then(() => this.#remove(device.id)));
    scope.defer(() => this.#queue);
  }

  /** Queues work on the bridge; a failure is logged (the hub and the other devices carry on). */
  #then(work: () => Promise<void>): void {
    this.#queue = this.#queue.then(work).catch((error: unknown) => {
      this.#scope?.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'Matter bridge not updated');
    });
  }

  /** Resolves when every registry change so far is applied to the bridge. */
  settled(): Promise<void> {
    return this.#queue;
  }

  status(): MatterStatus {
    const bridge = this.#bridge;
    if (!bridge) throw new Error('the Matter bridge is not running');
    if (!bridge.usable)
      throw Object.assign(new Error('the Matter bridge is restarting (its last controller was removed): try again in a moment'), { statusCode: 503 });
    const codes = bridge.pairingCodes();
    return {
      port: bridge.port ?? (this.port === 0 ? undefined : this.port),
      manualCode: codes.manual,
      qrPayload: codes.qr,
      commissioned: bridge.commissioned,
      fabrics: bridge.fabrics(),
      devices: this.ctx.registry.list().filter((d) => d.services.some((s) => shapeOf(s.service, []) !== undefined)).length,
    };
  }

  async removeFabric(fabricIndex: number): Promise<boolean> {
    const bridge = this.#bridge;
    if (!bridge) return false;
    const removed = await bridge.removeFabric(fabricIndex);
    if (removed) this.#scope?.log.info({ fabricIndex }, `Matter fabric ${fabricIndex} removed from the dashboard`);
    return removed;
  }

  /** The device's bridged node and its mapped services, created or brought up to date (idempotent). */
  async #sync(device: DeviceRecord): Promise<void> {
    const bridge = this.#bridge;
    const numbers = this.#numbers;
    if (!bridge || !numbers || !this.ctx.registry.get(device.id)) return;
    const mapped = device.services
      .map((service) => ({ service, shape: shapeOf(service.service, Object.keys(service.values)) }))
      .filter((s): s is { service: ServiceRecord; shape: MatterShape } => s.shape !== undefined);
    if (mapped.length === 0) return; // nothing a Matter controller could use: not shown
    const number = await numbers.numberFor(deviceKey(device.id));
    if (number === undefined) return this.#full(device.id);
    await bridge.upsertDevice(
      {
        id: device.id,
        name: homeKitName(device.meta.name ?? device.id),
        manufacturer: device.meta.manufacturer,
        model: device.meta.model,
        firmware: device.meta.firmware,
        // [M-4] A device that is offline is not reachable; a sleeping one is (its writes wait for it).
        reachable: device.state !== 'offline',
      },
      number,
    );
    for (const { service, shape } of mapped) {
      const serviceNumber = await numbers.numberFor(serviceKey(device.id, service.service, service.index));
      if (serviceNumber === undefined) return this.#full(device.id);
      await bridge.upsertService(device.id, service, shape, serviceNumber, this.#patches(device.id, service));
    }
  }

  /** The service's current values as attributes; values that do not fit Matter are left out ([M-3]). */
  #patches(deviceId: string, service: ServiceRecord): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const characteristic of Object.keys(service.values)) {
      const value = this.ctx.registry.read({ deviceId, service: service.service, index: service.index, characteristic })?.value;
      if (value === undefined) continue;
      const patch = toMatter(service.service, characteristic, value);
      if (!patch?.ok) continue;
      for (const [cluster, attributes] of Object.entries(patch.value)) out[cluster] = { ...(out[cluster] ?? {}), ...attributes };
    }
    return out;
  }

  async #update(ref: CharacteristicRef, value: HapValue): Promise<void> {
    const patch = toMatter(ref.service, ref.characteristic, value);
    if (!patch) return;
    if (!patch.ok) {
      // [M-3] Invalid for Matter: never exposed; the attribute keeps its last valid value.
      this.#scope?.log.debug({ device: ref.deviceId, characteristic: ref.characteristic }, `not shown in Matter: ${patch.error}`);
      return;
    }
    await this.#bridge?.update(ref.deviceId, ref, patch.value);
  }

  async #remove(deviceId: string): Promise<void> {
    await this.#bridge?.removeDevice(deviceId);
    await this.#numbers?.release(deviceId);
  }

  #full(deviceId: string): void {
    this.#scope?.log.warn({ device: deviceId }, `device ${deviceId} not shown in Matter: every endpoint number is used`);
  }

  /** [M-4] A controller's write → the registry's write (the `/set` HomeKit writes make); a refusal fails the controller's command. */
  #write(deviceId: string, service: { service: string; index: number }, cluster: string, attribute: string, value: unknown): void {
    const mapped = fromMatter(service.service, cluster, attribute, value);
    if (!mapped) return;
    if (!mapped.ok) throw new Error(mapped.error);
    const result = this.ctx.registry.requestWrite(
      { deviceId, service: service.service, index: service.index, characteristic: mapped.value.characteristic },
      mapped.value.value,
    );
    if (!result.ok) throw new Error(result.error);
  }
}

/** matter.js's "port is already in use" names the port, not the option that moves it. */
function portHint(error: unknown, port: number): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (!/already in use/i.test(message)) return error instanceof Error ? error : new Error(message);
  return new Error(`${message}: another program (or another hub) has UDP port ${port}; give the Matter bridge another with --matter-port`, { cause: error });
}
