/**
 * The checker's view of one device over MQTT: an admin session that records every message on the
 * device's topics (with retain flag and time), sends commands, and waits for what the contract says
 * must come. Waits always end: answered, or timed out with `undefined`.
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface Seen {
  topic: string;
  text: string;
  retained: boolean;
  at: number;
  /** Position in the log: later messages have higher numbers. */
  n: number;
  /** The payload's size in bytes, and whether it was valid UTF-8 ([P-3]). */
  bytes: number;
  utf8: boolean;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const isUtf8 = (payload: Buffer): boolean => {
  try {
    strictUtf8.decode(payload);
    return true;
  } catch {
    return false;
  }
};

export class Probe {
  readonly log: Seen[] = [];
  readonly #waiters = new Set<() => void>();
  #rid = 900_000_000 + Math.floor(Math.random() * 90_000_000);

  private constructor(
    readonly client: MqttClient,
    readonly id: string,
  ) {}

  static async open(url: string, username: string, password: string, id: string): Promise<Probe> {
    const client = await mqtt.connectAsync(url, { clientId: username, username, password, protocolVersion: 4, reconnectPeriod: 1000, connectTimeout: 10_000 });
    client.on('error', () => {}); // a refused reconnect shows as unanswered waits, never as a crash
    const probe = new Probe(client, id);
    client.on('message', (topic, payload, packet) => {
      probe.log.push({
        topic,
        text: payload.toString('utf8'),
        retained: packet.retain,
        at: Date.now(),
        n: probe.log.length,
        bytes: payload.length,
        utf8: isUtf8(payload),
      });
      for (const wake of [...probe.#waiters]) wake();
    });
    await client.subscribeAsync([`HomeKit/${id}/#`, `stat/${id}/#`, `cmnd/${id}/OTA/#`, `${id}/OTA`], { qos: 1 });
    return probe;
  }

  get mark(): number {
    return this.log.length;
  }

  /** The first message from `from` on that matches, or undefined after `ms`. */
  async waitFor(match: (m: Seen) => boolean, ms: number, from = 0): Promise<Seen | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.log.slice(from).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  /** Every message on `topic` from `from` on. */
  on(topic: string, from = 0): Seen[] {
    return this.log.slice(from).filter((m) => m.topic === topic);
  }

  /** The latest `$state` seen (retained or live), if any. */
  state(): string | undefined {
    return this.on(`HomeKit/${this.id}/$state`).at(-1)?.text;
  }

  /**
   * What the broker holds retained on `topic` now, as a new subscriber gets it (undefined: nothing):
   * a subscription of its own, dropped again at once.
   */
  async retainedNow(topic: string, ms = 2000): Promise<Seen | undefined> {
    const from = this.mark;
    await this.client.subscribeAsync(topic, { qos: 1 });
    try {
      return await this.waitFor((m) => m.topic === topic && m.retained, ms, from);
    } finally {
      await this.client.unsubscribeAsync(topic).catch(() => {});
    }
  }

  async publish(topic: string, text: string, retain = false): Promise<void> {
    await this.client.publishAsync(topic, text, { qos: 1, retain });
  }

  /**
   * Sends a command on cmnd/<id>/OTA and takes the next Log line that fits `fits` as its answer
   * (undefined: none within `ms`). With `rid`, sends `#<n> <command>` and takes only `#<n> …` [O-12].
   */
  async command(
    text: string,
    ms: number,
    options: { rid?: boolean; fits?: (answer: string) => boolean } = {},
  ): Promise<{ answer: string; rid?: number } | undefined> {
    const log = `stat/${this.id}/Log`;
    const from = this.mark;
    if (options.rid) {
      const n = ++this.#rid;
      await this.publish(`cmnd/${this.id}/OTA`, `#${n} ${text}`);
      const seen = await this.waitFor((m) => m.topic === log && m.text.startsWith(`#${n} `), ms, from);
      return seen ? { answer: seen.text.slice(`#${n} `.length), rid: n } : undefined;
    }
    await this.publish(`cmnd/${this.id}/OTA`, text);
    const fits = options.fits ?? (() => true);
    const seen = await this.waitFor((m) => m.topic === log && fits(m.text), ms, from);
    return seen ? { answer: seen.text } : undefined;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => {});
  }
}

/** A JSON object, or undefined for anything else (text, arrays, null). */
export function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export const isJsonObject = (text: string) => jsonObject(text) !== undefined;
