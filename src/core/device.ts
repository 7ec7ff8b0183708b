/** The hub's model of a device: plain data, saved as is by the store. */
import type { HapValue } from './coerce.js';
import type { MetaField, ServiceAddress } from './topic.js';

export type DeviceState = 'online' | 'offline' | 'sleeping';

export interface ServiceRecord extends ServiceAddress {
  /** Last values the device reported, by characteristic name. */
  values: Record<string, HapValue>;
}

export interface DeviceRecord {
  id: string;
  meta: Partial<Record<MetaField, string>>;
  state: DeviceState;
  /** Epoch ms of the last live message (retained replays do not count). */
  lastSeen: number;
  /** Epoch ms a sleeping device said it would wake up. */
  wakeAt?: number;
  /** [P-20] Seconds within which the device promised its next live message; unset: no promise. */
  keepalive?: number;
  createdAt: number;
  services: ServiceRecord[];
}

export function findService(device: DeviceRecord, address: ServiceAddress): ServiceRecord | undefined {
  return device.services.find((s) => s.service === address.service && s.index === address.index);
}

/** Human label of a service address: `Switch` or `Switch 2`. */
export function serviceLabel(address: ServiceAddress): string {
  return address.index === 0 ? address.service : `${address.service} ${address.index}`;
}
