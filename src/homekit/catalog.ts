/**
 * Service and characteristic types, read once from HAP-NodeJS's generated definitions, so names on
 * the wire are exactly HAP-NodeJS's (TemperatureSensor, CurrentTemperature, ...).
 */
import { Characteristic, Service } from 'hap-nodejs';
import type { Catalog, ServiceSpec } from '../core/catalog.js';
import type { CharacteristicSpec, HapFormat } from '../core/coerce.js';
import { fail, ok, type Result } from '../core/result.js';
import { didYouMean } from '../core/suggest.js';

type ServiceClass = typeof Service & (new (displayName?: string, subtype?: string) => Service);
type CharacteristicClass = new () => Characteristic;

/** Services that describe the accessory or a controller transport rather than a device function. */
/** [P-7] */
const NOT_PUBLISHABLE: Record<string, string> = {
  AccessoryInformation: 'AccessoryInformation is filled by the hub: publish $name, $manufacturer, $model or $firmware instead',
  ProtocolInformation: 'ProtocolInformation belongs to the bridge itself',
};
const TEXTLESS_FORMATS: readonly string[] = ['tlv8', 'data'];

export class HapCatalog implements Catalog {
  readonly #services = new Map<string, ServiceSpec & { type: ServiceClass }>();
  readonly #characteristics = new Map<string, CharacteristicSpec & { type: CharacteristicClass }>();
  readonly #unsupported = new Map<string, string>();
  readonly #nameOfUuid = new Map<string, string>();

  constructor() {
    const nameOfUuid = this.#nameOfUuid;
    for (const [name, value] of Object.entries(Characteristic)) {
      if (!isDefinition(value)) continue;
      const type = value as unknown as CharacteristicClass;
      const instance = new type();
      if (!nameOfUuid.has(instance.UUID)) nameOfUuid.set(instance.UUID, name);
      this.#characteristics.set(name, { ...specOf(name, instance), type });
    }
    for (const [name, value] of Object.entries(Service)) {
      if (!isDefinition(value)) continue;
      const type = value as unknown as ServiceClass;
      const instance = new type('Probe');
      const names = (list: Characteristic[]) => list.map((c) => nameOfUuid.get(c.UUID)).filter((n): n is string => !!n);
      const spec = { name, uuid: instance.UUID, required: names(instance.characteristics), optional: names(instance.optionalCharacteristics), type };
      const blocker = NOT_PUBLISHABLE[name] ?? this.#textlessRequirement(spec);
      if (blocker) this.#unsupported.set(name, blocker);
      else this.#services.set(name, spec);
    }
  }

  service(name: string): Result<ServiceSpec & { type: ServiceClass }> {
    const spec = this.#services.get(name);
    if (spec) return ok(spec);
    const unsupported = this.#unsupported.get(name);
    if (unsupported) return fail(unsupported);
    return fail(`unknown service type '${name}'${didYouMean(name, this.#services.keys())}`);
  }

  characteristic(service: ServiceSpec, name: string): Result<CharacteristicSpec & { type: CharacteristicClass }> {
    const all = [...service.required, ...service.optional];
    // [P-6] only what the service defines
    if (!all.includes(name)) {
      const known = this.#characteristics.has(name)
        ? `${service.name} has no characteristic '${name}'`
        : `unknown characteristic '${name}' for ${service.name}`;
      return fail(`${known}${didYouMean(name, all)} (it has: ${all.filter((n) => n !== 'Name').join(', ')})`);
    }
    const spec = this.#characteristics.get(name);
    if (!spec) return fail(`unknown characteristic '${name}'`);
    return ok(spec);
  }

  /** HAP-NodeJS's name for a characteristic type, e.g. CurrentTemperature. */
  nameOf(characteristicUuid: string): string | undefined {
    return this.#nameOfUuid.get(characteristicUuid);
  }

  #textlessRequirement(spec: ServiceSpec): string | undefined {
    const textless = spec.required.filter((n) => TEXTLESS_FORMATS.includes(this.#characteristics.get(n)?.format ?? ''));
    return textless.length > 0 ? `${spec.name} needs binary controller data (${textless.join(', ')}) and cannot be driven over MQTT` : undefined;
  }
}

function isDefinition(value: unknown): boolean {
  return typeof value === 'function' && typeof (value as { UUID?: unknown }).UUID === 'string';
}

function specOf(name: string, instance: Characteristic): CharacteristicSpec {
  const p = instance.props;
  const spec: CharacteristicSpec = { name, uuid: instance.UUID, format: p.format as HapFormat, perms: [...p.perms] };
  if (p.unit !== undefined) spec.unit = p.unit;
  if (p.minValue !== undefined) spec.minValue = p.minValue;
  if (p.maxValue !== undefined) spec.maxValue = p.maxValue;
  if (p.minStep !== undefined) spec.minStep = p.minStep;
  if (p.validValues !== undefined) spec.validValues = [...p.validValues];
  if (p.validValueRanges !== undefined) spec.validValueRanges = [p.validValueRanges[0], p.validValueRanges[1]];
  if (p.maxLen !== undefined) spec.maxLen = p.maxLen;
  if (p.maxDataLen !== undefined) spec.maxDataLen = p.maxDataLen;
  return spec;
}
