/**
 * The Matter bridge: a matter.js server node with an Aggregator (endpoint 1) and, per device, a
 * Bridged Node endpoint carrying its name and reachability, whose children are the device's mapped
 * services (src/matter/mapping.ts). Endpoint numbers come from the caller (kept in the store, [M-5]).
 * A thin I/O shell: what a value means is decided in mapping.ts, what a write does in the registry.
 */
import './platform.js';
import { createHash } from 'node:crypto';
import { Endpoint, Environment, Logger, LogLevel, ServerNode, VendorId } from '@matter/main';
import { BridgedDeviceBasicInformationServer } from '@matter/main/behaviors/bridged-device-basic-information';
import { ColorControlServer } from '@matter/main/behaviors/color-control';
import { OccupancySensingServer } from '@matter/main/behaviors/occupancy-sensing';
import { ThermostatServer } from '@matter/main/behaviors/thermostat';
import { WindowCoveringServer } from '@matter/main/behaviors/window-covering';
import { ColorTemperatureLightDevice } from '@matter/main/devices/color-temperature-light';
import { ContactSensorDevice } from '@matter/main/devices/contact-sensor';
import { DimmableLightDevice } from '@matter/main/devices/dimmable-light';
import { DoorLockDevice } from '@matter/main/devices/door-lock';
import { HumiditySensorDevice } from '@matter/main/devices/humidity-sensor';
import { OccupancySensorDevice } from '@matter/main/devices/occupancy-sensor';
import { OnOffLightDevice } from '@matter/main/devices/on-off-light';
import { OnOffPlugInUnitDevice } from '@matter/main/devices/on-off-plug-in-unit';
import { TemperatureSensorDevice } from '@matter/main/devices/temperature-sensor';
import { ThermostatDevice } from '@matter/main/devices/thermostat';
import { WindowCoveringDevice } from '@matter/main/devices/window-covering';
import { AggregatorEndpoint } from '@matter/main/endpoints/aggregator';
import { BridgedNodeEndpoint } from '@matter/main/endpoints/bridged-node';
import { FabricManager } from '@matter/main/protocol';
import { FabricIndex, Status, StatusResponseError } from '@matter/main/types';
import type { Logger as HubLogger } from '../log/logger.js';
import type { AttributePatch, MatterShape } from './mapping.js';
import { MIREDS_MAX, MIREDS_MIN, SETPOINT_MAX, SETPOINT_MIN, SystemMode, sameShape } from './mapping.js';
import type { MatterPairing } from './pairing.js';

/** Matter's test vendor id: mqttkit is not a certified product (docs/matter.md, limits). */
const VENDOR_ID = 0xfff1;
const PRODUCT_ID = 0x8000;
/** The Matter string attributes the bridge fills are at most 32 characters (64 for version strings). */
const MAX_LABEL = 32;

export interface BridgeOptions {
  /** `<data>/matter`: matter.js's own storage. */
  storagePath: string;
  port: number;
  pairing: MatterPairing;
  name: string;
  version: string;
  log: HubLogger;
}

/** A controller changed an attribute that goes to the device; throw to refuse the change. */
export type WriteHandler = (deviceId: string, service: { service: string; index: number }, cluster: string, attribute: string, value: unknown) => void;

export interface FabricInfo {
  fabricIndex: number;
  label: string;
  vendorId: number;
}

export interface DeviceFacts {
  id: string;
  name: string;
  manufacturer?: string | undefined;
  model?: string | undefined;
  firmware?: string | undefined;
  reachable: boolean;
}

/** The attributes whose changes by a controller become writes ([M-4]). */
const WRITABLE: Array<[cluster: string, attribute: string]> = [
  ['onOff', 'onOff'],
  ['levelControl', 'currentLevel'],
  ['colorControl', 'colorTemperatureMireds'],
  ['windowCovering', 'targetPositionLiftPercent100ths'],
  ['doorLock', 'lockState'],
  ['thermostat', 'occupiedHeatingSetpoint'],
  ['thermostat', 'systemMode'],
];

interface ServiceNode {
  endpoint: Endpoint;
  shape: MatterShape;
}

interface DeviceNode {
  endpoint: Endpoint;
  services: Map<string, ServiceNode>;
  /** Services whose endpoint matter.js refused, with the shape it refused. */
  failed: Map<string, MatterShape>;
}

const clip = (text: string, max = MAX_LABEL) => [...text].slice(0, max).join('');

/** Route matter.js's log into ours: its warnings are our debug lines, its errors our warnings. Nothing below WARN (its NOTICE lines carry the passcode). */
function routeLog(log: HubLogger): void {
  Logger.level = LogLevel.WARN;
  Logger.format = 'plain';
  const destination = Logger.destinations.default;
  if (destination)
    destination.write = (text, message) => {
      if (message.level >= LogLevel.ERROR) log.warn({ part: 'matter.js' }, text);
      else log.debug({ part: 'matter.js' }, text);
    };
}

export class MatterBridge {
  readonly #devices = new Map<string, DeviceNode>();
  /** One device's endpoints change one at a time (adds, rebuilds, removals are async in matter.js). */
  readonly #queues = new Map<string, Promise<void>>();

  private constructor(
    private readonly server: ServerNode,
    private readonly aggregator: Endpoint,
    private readonly log: HubLogger,
    private readonly onWrite: WriteHandler,
  ) {}

  static async start(options: BridgeOptions, onWrite: WriteHandler): Promise<MatterBridge> {
    routeLog(options.log);
    Environment.default.vars.set('storage.path', options.storagePath);
    // [M-7] kept in the pairing file, so a restored or moved hub is the same bridge to every ecosystem
    const uniqueId = options.pairing.uniqueId ?? createHash('sha256').update(options.storagePath).digest('hex').slice(0, 32);
    const server = await ServerNode.create({
      id: 'mqttkit',
      network: { port: options.port },
      commissioning: { passcode: options.pairing.passcode, discriminator: options.pairing.discriminator },
      productDescription: { name: clip(options.name), deviceType: AggregatorEndpoint.deviceType },
      basicInformation: {
        vendorName: 'mqttkit',
        vendorId: VendorId(VENDOR_ID),
        productName: 'mqttkit hub',
        productLabel: 'MQTT bridge',
        productId: PRODUCT_ID,
        nodeLabel: clip(options.name),
        serialNumber: `mqttkit-${uniqueId.slice(0, 16)}`,
        uniqueId,
        softwareVersion: 1,
        softwareVersionString: clip(options.version, 64),
        hardwareVersion: 1,
        hardwareVersionString: '1',
      },
    });
    const aggregator = new Endpoint(AggregatorEndpoint, { id: 'aggregator', number: 1 });
    await server.add(aggregator);
    const bridge = new MatterBridge(server, aggregator, options.log, onWrite);
    return bridge;
  }

  /** Goes online (after the known devices are added, so a controller never sees a half-built bridge). */
  async goOnline(): Promise<void> {
    await this.server.start();
  }

  get port(): number | undefined {
    // matter.js binds the port it is given; with 0 the OS picks one, read back from the network state.
    const port = this.server.state.network.operationalPort;
    return typeof port === 'number' && port > 0 ? port : undefined;
  }

  pairingCodes(): { manual: string; qr: string } {
    const codes = this.server.state.commissioning.pairingCodes;
    return { manual: codes.manualPairingCode, qr: codes.qrPairingCode };
  }

  get commissioned(): boolean {
    return this.server.state.commissioning.commissioned;
  }

  fabrics(): FabricInfo[] {
    return this.server.state.operationalCredentials.fabrics.map((f) => ({ fabricIndex: f.fabricIndex, label: f.label, vendorId: f.vendorId }));
  }

  /** Removes a controller's fabric (as its own RemoveFabric would); false: no such fabric. */
  async removeFabric(fabricIndex: number): Promise<boolean> {
    if (!this.fabrics().some((f) => f.fabricIndex === fabricIndex)) return false;
    // The RemoveFabric command is for the fabric's own controller; locally the fabric leaves as it would then.
    const fabric = this.server.env.get(FabricManager).maybeFor(FabricIndex(fabricIndex));
    if (!fabric) return false;
    const last = this.fabrics().length === 1;
    // Without a fabric left, matter.js resets the node to commissionable (its fabric data erased, our
    // endpoints kept) and brings it online again: answer once it is back, so the next status is whole.
    const back = last ? this.#onlineAgain(15_000) : Promise.resolve();
    await fabric.leave();
    await back;
    return true;
  }

  #onlineAgain(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.server.lifecycle.online.off(done);
        resolve();
      };
      const timer = setTimeout(done, ms).unref();
      this.server.lifecycle.online.on(done);
    });
  }

  /** Whether the node can be read now (not in the middle of the reset after its last fabric left). */
  get usable(): boolean {
    return this.server.construction.status === 'active' && this.server.lifecycle.isOnline;
  }

  /** Runs one device's endpoint changes in order; a failure is logged, not thrown (the hub keeps running). */
  #serial(deviceId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.#queues.get(deviceId) ?? Promise.resolve();
    const next = previous.then(work).catch((error: unknown) => {
      this.log.warn({ device: deviceId, err: error instanceof Error ? error.message : String(error) }, `Matter: device ${deviceId} not updated`);
    });
    this.#queues.set(deviceId, next);
    void next.finally(() => {
      if (this.#queues.get(deviceId) === next) this.#queues.delete(deviceId);
    });
    return next;
  }

  /** Adds the device's bridged node if it has none yet, and sets its name and reachability. */
  upsertDevice(facts: DeviceFacts, number: number): Promise<void> {
    return this.#serial(facts.id, async () => {
      const info = {
        nodeLabel: clip(facts.name),
        reachable: facts.reachable,
        ...(facts.manufacturer ? { vendorName: clip(facts.manufacturer) } : {}),
        ...(facts.model ? { productName: clip(facts.model) } : {}),
        ...(facts.firmware ? { softwareVersionString: clip(facts.firmware, 64) } : {}),
      };
      const existing = this.#devices.get(facts.id);
      if (existing) {
        // Endpoints are held untyped (one map for every device type): the patch is typed by the mapping instead.
        const patch: AttributePatch = { bridgedDeviceBasicInformation: info };
        await existing.endpoint.set(patch);
        return;
      }
      const endpoint = new Endpoint(BridgedNodeEndpoint.with(BridgedDeviceBasicInformationServer), {
        id: `n${number}`,
        number,
        bridgedDeviceBasicInformation: {
          ...info,
          serialNumber: clip(facts.id),
          uniqueId: createHash('sha256').update(`mqttkit:${facts.id}`).digest('hex').slice(0, 32),
        },
      });
      await this.aggregator.add(endpoint);
      this.#devices.set(facts.id, { endpoint, services: new Map(), failed: new Map() });
    });
  }

  /** Adds (or, when its shape changed, rebuilds with the same number) a service's endpoint, with its current values. */
  upsertService(deviceId: string, service: { service: string; index: number }, shape: MatterShape, number: number, values: AttributePatch): Promise<void> {
    return this.#serial(deviceId, async () => {
      const device = this.#devices.get(deviceId);
      if (!device) return;
      const key = `${service.service}/${service.index}`;
      const existing = device.services.get(key);
      if (existing) {
        if (sameShape(existing.shape, shape)) return;
        await existing.endpoint.delete();
        device.services.delete(key);
      }
      const failedAs = device.failed.get(key);
      if (failedAs && sameShape(failedAs, shape)) return; // said once; tried again when the service changes shape
      const endpoint = new Endpoint(endpointType(shape), { id: `n${number}`, number, ...merge(initialState(shape), values) });
      try {
        await device.endpoint.add(endpoint);
      } catch (error) {
        device.failed.set(key, shape);
        await endpoint.delete().catch(() => {});
        throw new Error(`${service.service} ${service.index}: ${error instanceof Error ? error.message : String(error)}`);
      }
      device.failed.delete(key);
      device.services.set(key, { endpoint, shape });
      this.#watchWrites(deviceId, service, endpoint);
    });
  }

  /** A value from the device (or a reverted write): the attributes as the mapping gives them. */
  update(deviceId: string, service: { service: string; index: number }, patch: AttributePatch): Promise<void> {
    return this.#serial(deviceId, async () => {
      const node = this.#devices.get(deviceId)?.services.get(`${service.service}/${service.index}`);
      if (node) await node.endpoint.set(patch);
    });
  }

  removeDevice(deviceId: string): Promise<void> {
    return this.#serial(deviceId, async () => {
      const device = this.#devices.get(deviceId);
      if (!device) return;
      this.#devices.delete(deviceId);
      await device.endpoint.delete();
    });
  }

  has(deviceId: string): boolean {
    return this.#devices.has(deviceId);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#queues.values()]);
    await this.server.close();
  }

  /**
   * A controller's change of a writable attribute is handed to the hub before it is committed
   * (`$Changing`): a refused write (offline device, invalid value) fails the controller's command,
   * and the attribute keeps its value. Our own updates (no fabric in the context) are not writes.
   */
  #watchWrites(deviceId: string, service: { service: string; index: number }, endpoint: Endpoint): void {
    // matter.js types events per endpoint type; the events are looked up by name here, hence the cast.
    const events = endpoint.events as unknown as Record<
      string,
      Record<string, { on(f: (value: unknown, old: unknown, context?: { fabric?: unknown }) => void): void } | undefined> | undefined
    >;
    for (const [cluster, attribute] of WRITABLE) {
      const observable = events[cluster]?.[`${attribute}$Changing`];
      observable?.on((value, _old, context) => {
        if (context?.fabric === undefined) return;
        try {
          this.onWrite(deviceId, service, cluster, attribute, value);
        } catch (error) {
          throw new StatusResponseError(error instanceof Error ? error.message : String(error), Status.Failure);
        }
      });
    }
  }
}

function merge(base: AttributePatch, patch: AttributePatch): AttributePatch {
  const out: AttributePatch = { ...base };
  for (const [cluster, attributes] of Object.entries(patch)) out[cluster] = { ...(out[cluster] ?? {}), ...attributes };
  return out;
}

/** The device type of a shape, with the features its attributes need. */
function endpointType(shape: MatterShape) {
  switch (shape.kind) {
    case 'temperature':
      return TemperatureSensorDevice;
    case 'humidity':
      return HumiditySensorDevice;
    case 'contact':
      return ContactSensorDevice;
    case 'occupancy':
      return OccupancySensorDevice.with(OccupancySensingServer.with('PassiveInfrared'));
    case 'light':
      if (shape.colorTemperature) return ColorTemperatureLightDevice.with(ColorControlServer.with('ColorTemperature'));
      return shape.dimmable ? DimmableLightDevice : OnOffLightDevice;
    case 'plug':
      return OnOffPlugInUnitDevice;
    case 'cover':
      return WindowCoveringDevice.with(WindowCoveringServer.with('Lift', 'PositionAwareLift'));
    case 'lock':
      return DoorLockDevice;
    case 'thermostat':
      return ThermostatDevice.with(ThermostatServer.with('Heating'));
  }
}

/** Attribute values an endpoint starts with before the device has said anything (null: unknown). */
function initialState(shape: MatterShape): AttributePatch {
  switch (shape.kind) {
    case 'temperature':
      return { temperatureMeasurement: { measuredValue: null, minMeasuredValue: null, maxMeasuredValue: null } };
    case 'humidity':
      return { relativeHumidityMeasurement: { measuredValue: null, minMeasuredValue: null, maxMeasuredValue: null } };
    case 'contact':
      return { booleanState: { stateValue: false } };
    case 'occupancy':
      return { occupancySensing: { occupancy: { occupied: false }, occupancySensorType: 0, occupancySensorTypeBitmap: { pir: true } } };
    case 'light':
      return {
        onOff: { onOff: false },
        ...(shape.dimmable ? { levelControl: { currentLevel: 254, minLevel: 1, maxLevel: 254 } } : {}),
        ...(shape.colorTemperature
          ? {
              colorControl: {
                colorTemperatureMireds: MIREDS_MIN,
                colorTempPhysicalMinMireds: MIREDS_MIN,
                colorTempPhysicalMaxMireds: MIREDS_MAX,
                coupleColorTempToLevelMinMireds: MIREDS_MIN,
                startUpColorTemperatureMireds: null,
                colorMode: 2, // ColorTemperatureMireds
                enhancedColorMode: 2,
              },
            }
          : {}),
      };
    case 'plug':
      return { onOff: { onOff: false } };
    case 'cover':
      return { windowCovering: { currentPositionLiftPercent100ths: null, targetPositionLiftPercent100ths: null } };
    case 'lock':
      // A deadbolt in normal mode; the code-entry limits are validated even without PIN codes (matter.js: 1–255).
      return { doorLock: { lockState: null, lockType: 2, actuatorEnabled: true, operatingMode: 0, wrongCodeEntryLimit: 5, userCodeTemporaryDisableTime: 10 } };
    case 'thermostat':
      return {
        thermostat: {
          localTemperature: null,
          occupiedHeatingSetpoint: 2000,
          absMinHeatSetpointLimit: SETPOINT_MIN,
          absMaxHeatSetpointLimit: SETPOINT_MAX,
          minHeatSetpointLimit: SETPOINT_MIN,
          maxHeatSetpointLimit: SETPOINT_MAX,
          controlSequenceOfOperation: 2,
          systemMode: SystemMode.Heat,
        },
      };
  }
}
