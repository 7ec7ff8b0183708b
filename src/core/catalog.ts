/**
 * What the registry needs to know about service and characteristic types. The HomeKit feature
 * supplies the implementation from HAP-NodeJS's definitions; core stays free of HAP-NodeJS.
 */
import type { CharacteristicSpec } from './coerce.js';
import type { Result } from './result.js';

export interface ServiceSpec {
  /** HAP-NodeJS's name, e.g. TemperatureSensor. */
  name: string;
  uuid: string;
  required: readonly string[];
  optional: readonly string[];
}

export interface Catalog {
  /** Looks a service type up by name; the error suggests the closest valid name. */
  service(name: string): Result<ServiceSpec>;
  /** Looks up a characteristic the service defines; others are refused, never "added anyway". */
  characteristic(service: ServiceSpec, name: string): Result<CharacteristicSpec>;
}
