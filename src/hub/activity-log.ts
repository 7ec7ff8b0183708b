/** What a person running the hub wants to see scroll by: devices coming, going, and changing state. */
import { serviceLabel } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../log/logger.js';
import { PerKeyBudget } from '../log/per-key-budget.js';

export function logActivity(bus: EventBus, log: Logger): () => void {
  const stateLines = new PerKeyBudget(10, 60_000);
  const offs = [
    bus.on('device:added', (device) => log.info({ device: device.id }, 'new device')),
    bus.on('service:added', (device, service) => log.info({ device: device.id, service: serviceLabel(service) }, 'new service')),
    bus.on('device:state', (device, previous) => {
      const answer = stateLines.take(device.id);
      if (answer === 'skip') return;
      const more = answer === 'log-last' ? ' (it changes state too often: its next changes this minute are not logged)' : '';
      log.info({ device: device.id, from: previous, to: device.state }, `device is ${device.state}${more}`);
    }),
    bus.on('write:requested', (ref, value) =>
      log.debug({ device: ref.deviceId, service: serviceLabel(ref), characteristic: ref.characteristic, value }, 'write requested'),
    ),
  ];
  return () => offs.forEach((off) => off());
}
