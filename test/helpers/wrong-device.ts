/**
 * A device that breaks four rules on purpose, and follows every other one, so `mqttkit conformance`
 * can be shown to fail exactly the rules a device breaks:
 * - no last will [P-1];
 * - never confirms a `/set` [P-14];
 * - answers `getversion` with a text line, not JSON [O-11];
 * - reports a transfer whose hash does not match as ok [O-3] (it keeps the old file all the same).
 * It speaks the OTA side of the simulator (device/simulator/ota-side.ts) otherwise.
 */
import type { MqttClient } from 'mqtt';
import { OtaSide, splitRid } from '../../device/simulator/ota-side.js';
import { connectDevice } from './mqtt-device.js';

export const WRONG_DEVICE_BREAKS = ['P-1', 'P-14', 'O-11', 'O-3.bad-hash'] as const;

export interface WrongDevice {
  id: string;
  stop(): Promise<void>;
}

export async function startWrongDevice(url: string, id: string): Promise<WrongDevice> {
  const ota = new OtaSide();
  let client: MqttClient | undefined;
  let stopped = false;
  const say = (topic: string, text: string, retain = false) => client?.publishAsync(topic, text, { qos: 1, retain }).catch(() => {});

  const boot = async (): Promise<void> => {
    // Broken: no `will` in the CONNECT.
    const session = await connectDevice(url, id, { reconnectPeriod: 500 });
    client = session;
    session.on('error', () => {});
    session.on('message', (topic, payload) => void handle(topic, payload.toString()));
    const announce = async () => {
      for (const [field, value] of [
        ['$name', 'Wrong device'],
        ['$model', 'Conformance counter-example'],
        ['$firmware', '1.0.0'],
        ['Switch/On', '0'],
        ['$state', 'online'],
      ] as const)
        await say(`HomeKit/${id}/${field}`, value, true);
    };
    session.on('connect', () => void announce());
    await session.subscribeAsync([`HomeKit/${id}/+/+/set`, `cmnd/${id}/OTA`, `${id}/OTA`], { qos: 1 });
    await announce();
  };

  const reboot = async () => {
    const old = client;
    client = undefined;
    await old?.endAsync(true).catch(() => {});
    if (!stopped) await boot();
  };

  const handle = async (topic: string, text: string) => {
    if (topic.endsWith('/set')) return; // Broken: the write is never confirmed.
    if (topic === `${id}/OTA`) {
      const { report, reboot: resets } = await ota.transfer(text);
      // Broken: a hash mismatch is reported as ok (the file is not staged, though).
      if (report.error?.startsWith('hash mismatch')) Object.assign(report, { ok: true, error: null });
      await say(`stat/${id}/OTA`, JSON.stringify(report));
      if (resets && report.error === null && report.ok) await reboot();
      return;
    }
    const { command } = splitRid(text);
    const name = command.split(' ')[0]!;
    const answer = (value: unknown) => say(`stat/${id}/Log`, typeof value === 'string' ? value : JSON.stringify(value));
    const fromOta = ota.command(name);
    if (fromOta !== undefined) return answer(fromOta);
    switch (name) {
      case 'getversion':
        return answer('version 1.0.0'); // Broken: not a JSON object.
      case 'stats':
        return answer({ uptime_s: 1, reconnects: 0, published: 0, received: 0 });
      case 'msg_reboot':
        return answer('power on');
      case 'msg_exception':
        return answer('no exception recorded');
      case 'msg_rm':
        return answer('messages removed');
      case 'open':
        await say(`stat/${id}/OTA`, JSON.stringify({ address: '127.0.0.1' }));
        return answer('ota open at 127.0.0.1');
      case 'reboot':
        await answer('rebooting');
        return reboot();
      default:
        return answer(`unknown command ${name}`);
    }
  };

  await boot();
  return {
    id,
    stop: async () => {
      stopped = true;
      await client?.endAsync(true).catch(() => {});
    },
  };
}
