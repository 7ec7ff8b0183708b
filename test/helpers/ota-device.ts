/**
 * Scripted OTA devices in TypeScript, for what the CPython device library cannot play: firmware as
 * seed 002 wrote it (4-field trigger, no commands, no `$state`), and an ESP32 whose A/B partitions
 * and bootloader the test controls. Both pull the file from the hub's pull server over TCP, as a
 * board does, and "reboot" by dropping their MQTT connection and connecting again (clean session).
 */
import { connect } from 'node:net';
import type { MqttClient } from 'mqtt';
import { download, sha1 } from '../../device/simulator/ota-side.js';
import { connectDevice } from './mqtt-device.js';

export interface ScriptedDevice {
  id: string;
  /** Every trigger received on <id>/OTA, as sent. */
  triggers: string[];
  /** Every command received on cmnd/<id>/OTA. */
  commands: string[];
  /** Files put in place (path → bytes). */
  files: Map<string, Buffer>;
  reboots: number;
  /** ESP32 only: the partition it runs from, and how many times `keepversion` was received. */
  running: string;
  kept: number;
  stop(): Promise<void>;
}

interface Options {
  /** `seed`: seed 002's firmware (4 fields only, never answers commands, never says `$state`). `esp32`: the mqttkit protocol 2 with A/B partitions. */
  kind: 'seed' | 'esp32';
  firmware?: string;
  /** ESP32: whether a new image starts (true) or the bootloader falls back to the old partition (false). */
  boots?: boolean;
  /**
   * ESP32: the first `times` file transfers break off after their first bytes and the device drops off
   * the network (its TCP connection to the broker dies, no DISCONNECT); it comes back after `awayMs`
   * (never, if undefined) and knows nothing of the transfer any more, like a board after a brown-out.
   */
  drops?: { times: number; awayMs?: number };
  /** ESP32: answers that replace the scripted ones, by command (a string is sent as it is, else as JSON). */
  answers?: Record<string, unknown>;
}

/** Reads the first bytes the pull server sends, then breaks the connection off. */
function breakOff(host: string, port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('data', () => (socket.destroy(), resolve()));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}

export async function startScriptedDevice(url: string, id: string, options: Options): Promise<ScriptedDevice> {
  let client: MqttClient;
  let stopped = false;
  let nextBoot: string | undefined;
  let drops = options.drops?.times ?? 0;
  const device: ScriptedDevice = {
    id,
    triggers: [],
    commands: [],
    files: new Map(),
    reboots: 0,
    running: 'ota_0',
    kept: 0,
    stop: async () => {
      stopped = true;
      await client.endAsync(true);
    },
  };
  const spare = () => (device.running === 'ota_0' ? 'ota_1' : 'ota_0');

  const say = (topic: string, text: string) => client.publishAsync(topic, text, { qos: 1 }).catch(() => {});

  const boot = async () => {
    client = await connectDevice(url, id);
    client.on('error', () => {});
    client.on('message', (topic, payload) => void handle(topic, payload.toString()));
    await client.subscribeAsync(options.kind === 'seed' ? [`${id}/OTA`] : [`${id}/OTA`, `cmnd/${id}/OTA`], { qos: 1 });
    // Seed 002's firmware only publishes its readings; the mqttkit library says `$state online` first.
    if (options.kind === 'esp32') await say(`HomeKit/${id}/$state`, 'online');
    await say(`HomeKit/${id}/Switch/On`, '0');
  };

  const reboot = async () => {
    device.reboots++;
    await client.endAsync(true);
    if (nextBoot !== undefined) {
      if (options.boots !== false) device.running = nextBoot;
      nextBoot = undefined;
    }
    if (!stopped) await boot();
  };

  const handle = async (topic: string, text: string) => {
    if (topic === `${id}/OTA`) {
      device.triggers.push(text);
      const fields = text.split('|');
      // Seed 002: host|port|filename|sha1; anything else is not understood (its split fails).
      if (options.kind === 'seed' && fields.length !== 4) return;
      const [host, port, file, hash] = fields as [string, string, string, string];
      if (options.kind === 'esp32' && drops > 0 && file !== '$firmware') {
        drops--;
        await breakOff(host, Number(port));
        client.stream.destroy(); // gone from the network: the broker sees the connection die
        const away = options.drops?.awayMs;
        if (away !== undefined) setTimeout(() => void (stopped || boot().catch(() => {})), away);
        return;
      }
      const bytes = await download(host, Number(port)).catch(() => undefined);
      const ok = bytes !== undefined && sha1(bytes) === hash;
      if (options.kind === 'esp32' && fields.length === 5) {
        if (ok && file === '$firmware') nextBoot = spare();
        else if (ok) device.files.set(file, bytes);
        await say(
          `stat/${id}/OTA`,
          JSON.stringify({
            file,
            ok,
            hash: bytes ? sha1(bytes) : null,
            error: ok ? null : 'hash mismatch',
            ...(file === '$firmware' ? { partition: spare() } : {}),
          }),
        );
        if (ok && fields[4] === '1') await reboot();
        return;
      }
      // The 4-field trigger, as seed 002 does it: verify, rename into place, reboot (no report).
      if (ok) {
        device.files.set(file, bytes);
        await reboot();
      }
      return;
    }
    device.commands.push(text);
    const answer = (value: unknown) => say(`stat/${id}/Log`, typeof value === 'string' ? value : JSON.stringify(value));
    if (options.answers && Object.hasOwn(options.answers, text)) return answer(options.answers[text]);
    switch (text) {
      case 'getversion':
        return answer({ firmware: options.firmware ?? '1.27.0', app: '1.0.0', ota: 2, partition: device.running });
      case 'partitions':
        return answer({ count: 2, running: device.running });
      case 'reboot':
        await answer('rebooting');
        return reboot();
      case 'discard':
        return answer({ discarded: [] });
      case 'keepversion':
        device.kept++;
        return answer(`firmware kept on ${device.running}`);
      case 'msg_reboot':
        return answer('power on');
      case 'msg_exception':
        return answer('no exception recorded');
      default:
        return answer(`unknown command ${text}`);
    }
  };

  await boot();
  return device;
}
