/**
 * One simulated device speaking the same protocol as the MicroPython library: login with its own
 * password, retained last will `offline`, metadata, values at a rate with jitter, `/set` obeyed and
 * confirmed, sleep cycles, the observability commands on cmnd/<id>/OTA, a boot line on stat/<id>/Log,
 * and the OTA side (ota-side.ts: files, staging, A/B firmware that is confirmed or rolled back): it
 * passes `mqttkit conformance`.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { KINDS, type Kind, type KindName } from './kinds.js';
import { OTA_FACTS, OtaSide, splitRid } from './ota-side.js';

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
  /** MQTT keepalive in seconds, also promised as `$keepalive` [P-20]; 0 turns both off (as in the library). Default 60. */
  keepalive?: number;
}

const VERSION = '0.1.0-sim';
/** MQTT keepalive, also promised to the hub as `$keepalive` [P-20]: the simulator behaves like the library. */
const KEEPALIVE_S = 60;
/** [O-7] How long a device about to sleep stays awake for a pending OTA job (the library's `pending_wait`). */
const PENDING_WAIT_S = 120;

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
  readonly stats = { published: 0, answers: 0, received: 0, reconnects: 0, reboots: 0 };
  /** Its files, staging and OTA commands (docs/ota.md). */
  readonly ota = new OtaSide();
  /** [O-7] `cmnd/<id>/OTA/pending` is 1: the hub has a job for it, so it stays awake. */
  #pending = false;
  /** [O-20] Its own record of the last reset it made (`msg_reboot`); the chip's cause when none. */
  #rebootReason = 'power on';
  /** What the bootloader did at the last boot: its first log line after the boot (once, not at every reconnect). */
  #bootNote: string | undefined;

  constructor(readonly options: VirtualDeviceOptions) {
    this.kind = KINDS[options.kind];
    this.#random = options.random ?? Math.random;
    this.#bootNote = this.ota.partitions.boot();
  }

  get id(): string {
    return this.options.id;
  }

  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  get #keepalive(): number {
    return this.options.keepalive ?? KEEPALIVE_S;
  }

  async start(): Promise<void> {
    await this.#connect();
    this.#schedule();
    const keepalive = this.#keepalive;
    if (keepalive === 0) return;
    // [P-20] the heartbeat: a keepalive period without a word, so say the keepalive again
    this.#heartbeat = setInterval(() => {
      if (Date.now() - this.#lastSaid >= keepalive * 1000) void this.#publish(`HomeKit/${this.id}/$keepalive`, String(keepalive), false).catch(() => {});
    }, 1000);
    this.#heartbeat.unref();
  }

  /** One boot's MQTT session: last will, subscriptions (listening before it says online [P-21]), metadata, online. */
  async #connect(): Promise<void> {
    const { id, password, url } = this.options;
    const base = `HomeKit/${id}`;
    const client = await mqtt.connectAsync(url, {
      clientId: id,
      username: id,
      password,
      protocolVersion: 4,
      reconnectPeriod: 2000,
      connectTimeout: 15_000,
      keepalive: this.#keepalive,
      will: { topic: `${base}/$state`, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.#client = client;
    this.#pending = false;
    client.on('reconnect', () => this.stats.reconnects++);
    client.on('error', () => {}); // a refused reconnect is retried by MQTT.js; the fleet reports state
    client.on('message', (topic, payload) => this.#onMessage(topic, payload.toString()));
    // MQTT.js subscribes again before it says `connect`, so a reconnected device listens before it is online too
    client.on('connect', () => void this.#announce().catch(() => {}));
    await client.subscribeAsync([`${base}/+/+/set`, `${base}/+/+/+/set`, `cmnd/${id}/OTA`, `cmnd/${id}/OTA/pending`, `${id}/OTA`], { qos: 1 });
    await this.#announce();
  }

  /**
   * A reset: the connection drops without a goodbye (the broker sends the will), the bootloader picks a
   * firmware slot [O-6], and the device boots again.
   */
  async #reboot(reason: string): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.stats.reboots++;
    this.#rebootReason = reason;
    this.#bootNote = this.ota.partitions.boot();
    await client?.endAsync(true).catch(() => {});
    await new Promise((r) => setTimeout(r, 100)); // a board takes a moment to boot
    if (this.#stopped) return;
    await this.#connect().catch(() => {
      if (!this.#stopped) setTimeout(() => void this.#reboot(reason), 2000).unref();
    });
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
      ['$name', displayName(this.id)],
      ['$manufacturer', 'mqttkit'],
      ['$model', this.kind.model],
      ['$firmware', VERSION],
      ['$state', 'online'],
    ];
    for (const [field, value] of meta) await this.#publish(`${base}/${field}`, value, true);
    if (this.#keepalive > 0) await this.#publish(`${base}/$keepalive`, String(this.#keepalive), false);
    // a log line (never `#<digits> `, [O-12]): what `mqttkit logs` shows of a boot
    const note = this.#bootNote;
    this.#bootNote = undefined;
    if (note !== undefined) await this.#publish(`stat/${this.id}/Log`, `boot (${this.#rebootReason}): ${note}`, false);
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

  /**
   * Wake, report, serve a pending OTA job first [O-7] (up to PENDING_WAIT_S), announce sleep, leave
   * cleanly (no will), and come back after the sleep.
   */
  async #sleepCycle(): Promise<void> {
    const client = this.#client;
    if (client?.connected) {
      await this.#report().catch(() => {});
      const until = Date.now() + PENDING_WAIT_S * 1000;
      while (this.#pending && Date.now() < until && !this.#stopped) await new Promise((r) => setTimeout(r, 200));
    }
    // a reboot during the job may have replaced the session
    const current = this.#client;
    if (current?.connected) {
      await this.#publish(`HomeKit/${this.id}/$state`, `sleeping ${this.options.sleepSeconds}`, true);
      this.#client = undefined;
      await current.endAsync().catch(() => {});
    }
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      // deep sleep ends in a reset: the chip's cause, and the bootloader runs [O-20]
      this.#rebootReason = 'wake from deep sleep';
      this.#bootNote = this.ota.partitions.boot();
      void this.#connect().then(
        () => this.#schedule(),
        () => this.#schedule(),
      );
    }, this.options.sleepSeconds * 1000);
    this.#timer.unref();
  }

  async #publish(topic: string, payload: string, retain: boolean): Promise<void> {
    if (!this.#client?.connected) return;
    await this.#client.publishAsync(topic, payload, { qos: 1, retain });
    if (topic.startsWith('HomeKit/')) {
      this.stats.published++;
      this.#lastSaid = Date.now();
    } else this.stats.answers++;
  }

  #onMessage(topic: string, text: string): void {
    this.stats.received++;
    const id = this.id;
    if (topic === `cmnd/${id}/OTA/pending`) {
      this.#pending = text.trim() === '1';
      return;
    }
    if (topic === `${id}/OTA`) {
      void this.#transfer(text);
      return;
    }
    if (topic === `cmnd/${id}/OTA`) {
      void this.#answer(text).catch(() => {});
      return;
    }
    if (text === '') return; // [P-14] the hub clearing its retained /set
    const match = /^HomeKit\/[^/]+\/([^/]+)\/([^/]+)\/set$/.exec(topic);
    const key = match ? `${match[1]}/${match[2]}` : undefined;
    const take = key ? this.kind.writable[key] : undefined;
    if (!key || !take) return;
    const value = take(text);
    if (value !== undefined) this.#state.set(key, value);
    // Confirm what the device now is (the written value, or the unchanged one if it was refused).
    void this.#publish(`HomeKit/${id}/${key}`, String(this.#state.get(key) ?? 0), true).catch(() => {});
  }

  /** [O-1] [O-3] Pull, check, stage; report; reset when the trigger says so. */
  async #transfer(text: string): Promise<void> {
    const { report, reboot } = await this.ota.transfer(text);
    await this.#publish(`stat/${this.id}/OTA`, JSON.stringify(report), false).catch(() => {});
    if (report.ok && reboot) await this.#reboot(`update of ${report.file}`);
  }

  /** Answers a command on stat/<id>/Log, with its request id when it came with one [O-12]. */
  async #answer(text: string): Promise<void> {
    const { rid, command } = splitRid(text);
    const name = command.split(' ')[0]!;
    const say = (answer: unknown) =>
      this.#publish(`stat/${this.id}/Log`, `${rid === undefined ? '' : `#${rid} `}${typeof answer === 'string' ? answer : JSON.stringify(answer)}`, false);
    if (name === 'reboot') {
      await say('rebooting');
      await this.#reboot('reboot command');
      return;
    }
    if (name === 'open') {
      // [O-4] the address this device reaches the broker from
      const socket = (this.#client as unknown as { stream?: { localAddress?: string } } | undefined)?.stream;
      const address = (socket?.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
      await this.#publish(`stat/${this.id}/OTA`, JSON.stringify({ address }), false);
      await say(`ota open at ${address}`);
      return;
    }
    await say(this.ota.command(name) ?? this.#command(name));
  }

  #command(name: string): string {
    switch (name) {
      case 'stats':
        return JSON.stringify({
          uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
          reconnects: this.stats.reconnects,
          published: this.stats.published,
          received: this.stats.received,
          dropped: 0,
          queued: 0,
          mem_free: null,
        });
      case 'getversion':
        // [P-22] `firmware` is the running image's, `app` the application's ($firmware); [O-6] the running slot
        return JSON.stringify({
          firmware: this.ota.partitions.version,
          app: VERSION,
          library: VERSION,
          platform: 'simulator',
          python: null,
          partition: this.ota.partitions.running,
          ...OTA_FACTS,
        });
      case 'msg_reboot':
        return this.#rebootReason;
      case 'msg_exception':
        return 'no exception recorded';
      case 'msg_rm':
        this.#rebootReason = this.stats.reboots > 0 ? 'soft reset' : 'power on'; // the record is gone: the chip's cause
        return 'messages removed';
      default:
        return `unknown command ${name} (known: commit, discard, getversion, hashes, keepversion, msg_exception, msg_reboot, msg_rm, open, partitions, reboot, stats)`;
    }
  }
}

/** A name people read, not the id again (issue 14): `sim-temperature-2` is "Temperature 2". */
export function displayName(id: string): string {
  const words = id.replace(/^sim-/, '').replace(/[-_]+/g, ' ').trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : id;
}
