/** What the API shows of a device: its record, with each characteristic's format and limits for controls. */
import type { DeviceRecord } from '../core/device.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { AccountStore } from '../store/account-store.js';
import type { DeviceInfo, OtaStore } from '../store/ota-store.js';

type ViewDeps = { registry: DeviceRegistry; ota: OtaStore; accounts: AccountStore };

export async function deviceView(device: DeviceRecord, deps: ViewDeps) {
  const info = await deps.ota.info(device.id);
  const account = info.address === undefined ? await deps.accounts.get(device.id) : undefined;
  return shapeDevice(device, info, account?.lastAddress ?? null, deps);
}

/** Every device's view with two statements in all, however many devices (no query per device on PostgreSQL). */
export async function deviceViews(devices: readonly DeviceRecord[], deps: ViewDeps) {
  const [infos, addresses] = await Promise.all([deps.ota.infos(), deps.accounts.lastAddresses()]);
  return devices.map((device) => shapeDevice(device, infos.get(device.id) ?? {}, addresses.get(device.id) ?? null, deps));
}

function shapeDevice(device: DeviceRecord, info: DeviceInfo, lastAddress: string | null, deps: ViewDeps) {
  return {
    id: device.id,
    name: info.name ?? device.meta.name ?? device.id,
    notes: info.notes ?? '',
    meta: device.meta,
    state: device.state,
    lastSeen: device.lastSeen,
    wakeAt: device.wakeAt ?? null,
    address: info.address ?? lastAddress,
    firmware: info.firmware ?? null,
    app: device.meta.firmware ?? info.app ?? null, // [P-22] the version HomeKit shows
    lastReboot: info.lastReboot ?? null,
    lastException: info.lastException ?? null,
    // True once it answered `getversion`, false when asked and never answered, null before it was asked: OTA needs an answer.
    answersCommands: info.answersCommands ?? null,
    services: device.services.map((service) => {
      const spec = deps.registry.resolve(service, Object.keys(service.values)[0] ?? '');
      const names = new Set([...Object.keys(service.values), ...(spec.ok ? spec.value.service.required.filter((n) => n !== 'Name') : [])]);
      return {
        service: service.service,
        index: service.index,
        characteristics: [...names].map((name) => {
          const c = deps.registry.resolve(service, name);
          const s = c.ok ? c.value.characteristic : undefined;
          return {
            name,
            value: service.values[name] ?? null,
            format: s?.format ?? 'string',
            writable: s?.perms.includes('pw') ?? false,
            unit: s?.unit ?? null,
            minValue: s?.minValue ?? null,
            maxValue: s?.maxValue ?? null,
            minStep: s?.minStep ?? null,
            validValues: s?.validValues ?? null,
          };
        }),
      };
    }),
  };
}
