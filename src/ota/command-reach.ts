/**
 * [P-23] A command (`mqttkit cmd`, `POST /api/devices/:id/command`) is sent only to a device that can
 * hear it now: commands are not queued, so one to a sleeping or offline device is refused at once,
 * saying when the device is expected and what is queued instead (HomeKit writes [P-14], OTA jobs [O-7]).
 */
import type { DeviceRecord } from '../core/device.js';

export function commandRefusal(device: DeviceRecord | undefined, now = Date.now()): string | undefined {
  if (!device || device.state === 'online') return undefined;
  if (device.state === 'sleeping') {
    const wake = device.wakeAt !== undefined && device.wakeAt > now ? `; it said it wakes in about ${Math.ceil((device.wakeAt - now) / 1000)} s` : '';
    return `${device.id} is sleeping${wake}: commands are not queued for a sleeping device (HomeKit writes and OTA jobs are); send the command when it is online`;
  }
  return `${device.id} is offline: commands are not queued; send the command when it is online`;
}
