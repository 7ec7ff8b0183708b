/**
 * [P-8] Services one HomeKit accessory cannot hold side by side. HAP-NodeJS keys a service by its type
 * UUID and subtype (our index, none for index 0) and refuses, in Accessory.addService, a service
 * without a subtype once another of the same type exists, and two of one type with the same subtype.
 * Refusing these at the door keeps a device's data buildable at every start.
 */
import { serviceLabel } from './device.js';
import type { ServiceAddress } from './topic.js';
import { MAX_SERVICE_INDEX } from './topic.js';

/** Why `address` cannot join `services` on one accessory, or undefined when it can. */
export function serviceConflict(
  services: readonly ServiceAddress[],
  address: ServiceAddress,
  uuidOf: (service: string) => string | undefined,
): string | undefined {
  const uuid = uuidOf(address.service);
  const sameType = services.filter((s) => uuidOf(s.service) === uuid);
  const twin = sameType.find((s) => s.index === address.index);
  if (twin) {
    // Only a different name can get here (the same name and index is the same service): an alias.
    return `${address.service} is the same HomeKit service type as ${twin.service}, which this device already publishes${
      address.index === 0 ? ' without an index' : ` at index ${address.index}`
    }: publish to ${twin.service} instead, or use another index`;
  }
  if (address.index === 0 && sameType.length > 0) {
    const used = new Set(sameType.map((s) => s.index));
    let free = 1;
    while (used.has(free) && free < MAX_SERVICE_INDEX) free++;
    return `${address.service} without an index cannot join this device's indexed ${sameType.map(serviceLabel).join(', ')} in HomeKit: give every ${address.service} an index, e.g. ${address.service}/${free}/… (two switches are Switch/1 and Switch/2)`;
  }
  return undefined;
}
