/** What a person running the hub wants to see scroll by: devices coming, going, and changing state. */
import { serviceLabel } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../log/logger.js';

export function logActivity(bus: EventBus, log: Logger): () => void {
  const offs = [
    bus.on('device:added', (device) => log.info({ device: device.id }, 'new device')),
    bus.on('service:added', (device, service) => log.info({ device: device.id, service: serviceLabel(service) }, 'new service')),
    bus.on('device:state', (device, previous) => log.info({ device: device.id, from: previous, to: device.state }, `device is ${device.state}`)),
    bus.on('write:requested', (ref, value) =>
      log.debug({ device: ref.deviceId, service: serviceLabel(ref), characteristic: ref.characteristic, value }, 'write requested'),
    ),
  ];
  return () => offs.forEach((off) => off());
}
