/**
 * What the benchmarks measure against: a paired hap-controller that waits for event notifications,
 * and the floor, a bare HAP-NodeJS accessory in this process (no MQTT, no hub) driven directly.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpClient, PairMethods } from 'hap-controller';
import { Accessory, Bridge, Categories, Characteristic, HAPStorage, Service, uuid } from 'hap-nodejs';
import { setHapListenHost } from '../src/homekit/listen-host.js';
import { now } from './stats.js';

const PIN = '031-45-154';

export class Controller {
  readonly #waiters = new Map<string, Array<(at: number, value: unknown) => void>>();

  private constructor(readonly client: HttpClient) {
    client.on('event', (event: { characteristics: Array<{ aid: number; iid: number; value: unknown }> }) => {
      const at = now();
      for (const c of event.characteristics) {
        const list = this.#waiters.get(`${c.aid}.${c.iid}`);
        const waiter = list?.shift();
        if (waiter) waiter(at, c.value);
      }
    });
  }

  static async pair(port: number): Promise<Controller> {
    const pairing = new HttpClient(`bench-${port}`, '127.0.0.1', port);
    await pairing.pairSetup(PIN, PairMethods.PairSetup);
    const data = pairing.getLongTermData()!;
    await pairing.close();
    // A persistent connection, so a write does not pay for pair-verify each time (as a Home hub keeps one).
    return new Controller(new HttpClient(`bench-${port}`, '127.0.0.1', port, data, { usePersistentConnections: true }));
  }

  /** Resolves with the arrival time of the next event for `id` ("aid.iid"). */
  nextEvent(id: string, timeoutMs = 5000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no event for ${id} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.#waiters.get(id) ?? [];
      list.push((at) => {
        clearTimeout(timer);
        resolve(at);
      });
      this.#waiters.set(id, list);
    });
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {});
  }
}

/** "aid.iid" of a characteristic type under a service type, optionally on the accessory with this serial. */
export function findId(db: Awaited<ReturnType<HttpClient['getAccessories']>>, service: string, characteristic: string, serial?: string): string {
  const S = Service as unknown as Record<string, { UUID: string }>;
  const C = Characteristic as unknown as Record<string, { UUID: string }>;
  for (const a of db.accessories) {
    if (serial && !a.services.some((s) => s.characteristics.some((c) => c.type === Characteristic.SerialNumber.UUID && c.value === serial))) continue;
    for (const s of a.services) {
      if (s.type !== S[service]!.UUID) continue;
      const c = s.characteristics.find((x) => x.type === C[characteristic]!.UUID);
      if (c) return `${a.aid}.${c.iid}`;
    }
  }
  throw new Error(`no ${service}.${characteristic}${serial ? ` on ${serial}` : ''}`);
}

export interface BareAccessory {
  port: number;
  motion: Characteristic;
  temperature: Characteristic;
  /** Times (performance.now()) at which onSet of Switch.On ran. */
  onSetTimes: number[];
  stop(): Promise<void>;
}

/** The floor: HAP-NodeJS alone, the same characteristics, values set directly. */
export async function bareAccessory(): Promise<BareAccessory> {
  HAPStorage.setCustomStoragePath(mkdtempSync(join(tmpdir(), 'mqttkit-bench-hap-')));
  setHapListenHost('127.0.0.1');
  const bridge = new Bridge('Bench floor', uuid.generate('mqttkit:bench:floor'));
  const accessory = new Accessory('Floor device', uuid.generate('mqttkit:bench:floor:device'));
  const motion = accessory.addService(Service.MotionSensor, 'Motion').getCharacteristic(Characteristic.MotionDetected);
  const temperature = accessory.addService(Service.TemperatureSensor, 'Temperature').getCharacteristic(Characteristic.CurrentTemperature);
  const onSetTimes: number[] = [];
  accessory
    .addService(Service.Switch, 'Switch')
    .getCharacteristic(Characteristic.On)
    .onSet(() => {
      onSetTimes.push(now());
    });
  bridge.addBridgedAccessory(accessory);
  const listening = new Promise<number>((resolve) => bridge.once('listening', (port: number) => resolve(port)));
  const username = 'AA:BB:CC:00:11:22';
  await bridge.publish({ username, pincode: PIN, port: 0, category: Categories.BRIDGE, bind: '127.0.0.1', addIdentifyingMaterial: false });
  const port = await listening;
  return { port, motion, temperature, onSetTimes, stop: () => bridge.destroy() };
}
