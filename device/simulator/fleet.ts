/**
 * A fleet of virtual devices: ids `<prefix>-<kind>-<n>`, kinds dealt round-robin, passwords derived
 * from a secret so a restarted simulator logs in as the same devices, connections opened a few at a
 * time (the hub registers each one with a slow hash).
 */
import { createHmac } from 'node:crypto';
import { KIND_NAMES, type KindName } from './kinds.js';
import { VirtualDevice } from './virtual-device.js';

export interface FleetOptions {
  url: string;
  devices: number;
  kinds: readonly KindName[];
  prefix: string;
  secret: string;
  interval: number;
  jitter: number;
  sleepSeconds: number;
  /** MQTT keepalive and `$keepalive` in seconds; 0 turns both off (default 60). */
  keepalive?: number;
  /** Connections opened at once. */
  concurrency?: number;
  onProgress?: (connected: number, total: number) => void;
}

export function devicePassword(secret: string, id: string): string {
  return createHmac('sha256', secret).update(id).digest('base64url').slice(0, 24);
}

export class Fleet {
  readonly devices: VirtualDevice[];

  constructor(private readonly options: FleetOptions) {
    const kinds = options.kinds.length > 0 ? options.kinds : KIND_NAMES;
    this.devices = Array.from({ length: options.devices }, (_, i) => {
      const kind = kinds[i % kinds.length]!;
      const id = `${options.prefix}-${kind}-${String(i + 1).padStart(String(options.devices).length, '0')}`;
      return new VirtualDevice({
        id,
        kind,
        url: options.url,
        password: devicePassword(options.secret, id),
        interval: options.interval,
        jitter: options.jitter,
        sleepSeconds: options.sleepSeconds,
        ...(options.keepalive !== undefined ? { keepalive: options.keepalive } : {}),
      });
    });
  }

  /** Connects every device; resolves with the ones that could not connect (and why). */
  async start(): Promise<Array<{ id: string; error: string }>> {
    const failures: Array<{ id: string; error: string }> = [];
    let next = 0;
    let connected = 0;
    const worker = async () => {
      while (next < this.devices.length) {
        const device = this.devices[next++]!;
        try {
          await device.start();
          this.options.onProgress?.(++connected, this.devices.length);
        } catch (error) {
          failures.push({ id: device.id, error: (error as Error).message });
        }
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency ?? 8 }, worker));
    return failures;
  }

  async stop(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.stop()));
  }
}
