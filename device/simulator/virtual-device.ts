/**
 * One simulated device speaking the same protocol as the MicroPython library: login with its own
 * password, retained last will `offline`, metadata, values at a rate with jitter, `/set` obeyed and
 * confirmed, sleep cycles, and the observability commands on cmnd/<id>/OTA.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { KINDS, type Kind, type KindName } from './kinds.js';

export interface VirtualDeviceOptions {
  id: string;
  kind: KindName;
  password: string;
  url: string;
  /** Seconds between readings. */
  interval: number;
  /** 0..1: each interval varies by up to this fraction either way. */
  jitter: number;
  /** Seconds a sleepy device sleeps between wake-ups. */
  sleepSeconds: number;
  random?: () => number;
}

const VERSION = '0.1.0-sim';
/** MQTT keepalive, also promised to the hub as `$keepalive` [P-20]: the simulator behaves like the library. */
const KEEPALIVE_S = 60;

export class VirtualDevice {
  readonly kind: Kind;
  readonly #state = new Map<string, number>();
  readonly #random: () => number;
  #client: MqttClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** When it last published under HomeKit/<id>/ (what the hub hears of it). */
  #lastSaid = Date.now();
  #stopped = false;
  readonly #startedAt = Date.now();
  /** `published` counts device topics (HomeKit/…), `answers` the replies to commands (stat/…). */
  readonly stats = { published: 0, answers: 0, received: 0, reconnects: 0 };

  constructor(readonly options: VirtualDeviceOptions) {
    this.kind = KINDS[options.kind];
    this.#random = options.random ?? Math.random;
  }

  get id(): string {
    return this.options.id;
  }

  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  async start(): Promise<void> {
    const { id, password, url } = this.options;
    const base = `HomeKit/${id}`;
    const client = await mqtt.connectAsync(url, {
      clientId: id,
      username: id,
      password,
      protocolVersion: 4,
      reconnectPeriod: 2000,
      connectTimeout: 15_000,
      keepalive: KEEPALIVE_S,
      will: { topic: `${base}/$state`, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.#client = client;
    client.on('reconnect', () => this.stats.reconnects++);
    client.on('error', () => {}); // a refused reconnect is retried by MQTT.js; the fleet reports state
    client.on('message', (topic, payload) => this.#onMessage(topic, payload.toString()));
    client.on('connect', () => void this.#announce());
    await client.subscribeAsync([`${base}/+/+/set`, `cmnd/${id}/OTA`], { qos: 1 });
    await this.#announce();
    this.#schedule();
    // [P-20] the heartbeat: a keepalive period without a word, so say the keepalive again
    this.#heartbeat = setInterval(() => {
      if (Date.now() - this.#lastSaid >= KEEPALIVE_S * 1000) void this.#publish(`${base}/$keepalive`, String(KEEPALIVE_S), false).catch(() => {});
    }, 1000);
    this.#heartbeat.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    const client = this.#client;
    if (!client) return;
    if (client.connected) await client.publishAsync(`HomeKit/${this.id}/$state`, 'offline', { qos: 1, retain: true }).catch(() => {});
    await client.endAsync().catch(() => {});
  }

  async #announce(): Promise<void> {
    const base = `HomeKit/${this.id}`;
    const meta: Array<[string, string]> = [
      ['$name', `Sim ${this.id}`],
      ['$manufacturer', 'mqttkit'],
      ['$model', this.kind.model],
      ['$firmware', VERSION],
      ['$state', 'online'],
    ];
    for (const [field, value] of meta) await this.#publish(`${base}/${field}`, value, true);
    await this.#publish(`${base}/$keepalive`, String(KEEPALIVE_S), false);
    await this.#report();
  }

  async #report(): Promise<void> {
    for (const r of this.kind.readings(this.#state, this.#random)) {
      await this.#publish(`HomeKit/${this.id}/${r.service}/${r.characteristic}`, r.value, this.kind.writable[`${r.service}/${r.characteristic}`] !== undefined);
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    const { interval, jitter } = this.options;
    const delay = interval * 1000 * (1 + (this.#random() * 2 - 1) * jitter);
    this.#timer = setTimeout(() => void this.#tick(), Math.max(10, delay));
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    if (this.kind.sleeps) {
      await this.#sleepCycle();
      return;
    }
    if (this.connected) await this.#report().catch(() => {});
    this.#schedule();
  }

  /** Wake, report, announce sleep, leave cleanly (no will), and come back after the sleep. */
  async #sleepCycle(): Promise<void> {
    const client = this.#client!;
    if (client.connected) {
      await this.#report().catch(() => {});
      await this.#publish(`HomeKit/${this.id}/$state`, `sleeping ${this.options.sleepSeconds}`, true);
      await client.endAsync().catch(() => {});
    }
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      client.reconnect();
      this.#schedule();
    }, this.options.sleepSeconds * 1000);
    this.#timer.unref();
  }

  async #publish(topic: string, payload: string, retain: boolean): Promise<void> {
    if (!this.#client?.connected) return;
    await this.#client.publishAsync(topic, payload, { qos: 1, retain });
    if (topic.startsWith('HomeKit/')) {
      this.stats.published++;
      this.#lastSaid = Date.now();
    }
    else this.stats.answers++;
  }

  #onMessage(topic: string, text: string): void {
    this.stats.received++;
    if (topic === `cmnd/${this.id}/OTA`) {
      // [O-12] `#<n> <command>` is answered `#<n> <answer>`, like the library does.
      const rid = /^#\d{1,9} /.exec(text.trim())?.[0] ?? '';
      void this.#publish(`stat/${this.id}/Log`, rid + this.#command(text.trim().slice(rid.length).trim()), false);
      return;
    }
    const match = /^HomeKit\/[^/]+\/([^/]+)\/([^/]+)\/set$/.exec(topic);
    const key = match ? `${match[1]}/${match[2]}` : undefined;
    const take = key ? this.kind.writable[key] : undefined;
    if (!key || !take) return;
    const value = take(text);
    if (value !== undefined) this.#state.set(key, value);
    // Confirm what the device now is (the written value, or the unchanged one if it was refused).
    void this.#publish(`HomeKit/${this.id}/${key}`, String(this.#state.get(key) ?? 0), true);
  }

  #command(text: string): string {
    switch (text.split(' ')[0]) {
      case 'stats':
        return JSON.stringify({ uptime_s: Math.round((Date.now() - this.#startedAt) / 1000), reconnects: this.stats.reconnects, published: this.stats.published, received: this.stats.received, mem_free: null });
      case 'getversion':
        return JSON.stringify({ firmware: VERSION, library: VERSION, platform: 'simulator', python: null, rid: 1 });
      case 'msg_reboot':
        return 'power on';
      case 'msg_exception':
        return 'no exception recorded';
      case 'msg_rm':
        return 'messages removed';
      default:
        return `unknown command ${text.split(' ')[0]} (known: getversion, msg_exception, msg_reboot, msg_rm, stats)`;
    }
  }
}
