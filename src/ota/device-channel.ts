/**
 * The hub's command channel to devices: a command on cmnd/<id>/OTA and its answer, the next message on
 * stat/<id>/Log (one command in flight per device, so answers cannot be confused); transfer reports on
 * stat/<id>/OTA; every device log line kept in the store for `mqttkit logs`.
 */
import type { HubLink } from '../broker/hub-link.js';
import type { Logger } from '../log/logger.js';
import type { OtaStore } from '../store/ota-store.js';
import { commandTopic } from './protocol.js';

interface Waiter {
  device: string;
  channel: 'Log' | 'OTA';
  accept: (text: string) => boolean;
  resolve: (text: string) => void;
}

const STAT = /^stat\/([A-Za-z0-9_-]{1,64})\/(Log|OTA)$/;

export class DeviceChannel {
  readonly #waiters = new Set<Waiter>();
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly link: HubLink,
    private readonly store: OtaStore,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.link.subscribe('stat/+/+', (message) => {
      const match = STAT.exec(message.topic);
      if (!match || !message.live) return;
      const [, device, channel] = match as unknown as [string, string, 'Log' | 'OTA'];
      const text = message.payload.toString('utf8').slice(0, 64 * 1024);
      this.store.appendLog(device, message.topic, text);
      for (const waiter of this.#waiters) {
        if (waiter.device === device && waiter.channel === channel && waiter.accept(text)) {
          this.#waiters.delete(waiter);
          waiter.resolve(text);
          break;
        }
      }
    });
  }

  /** The next message on stat/<id>/<channel> that `accept` takes, or an error after `timeoutMs`. */
  next(device: string, channel: 'Log' | 'OTA', timeoutMs: number, accept: (text: string) => boolean = () => true): { answer: Promise<string>; cancel(): void } {
    let waiter!: Waiter;
    let timer: NodeJS.Timeout;
    const answer = new Promise<string>((resolve, reject) => {
      timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`${device} did not answer on stat/${device}/${channel} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      waiter = { device, channel, accept, resolve: (text) => (clearTimeout(timer), resolve(text)) };
      this.#waiters.add(waiter);
    });
    return { answer, cancel: () => (clearTimeout(timer), this.#waiters.delete(waiter)) };
  }

  /** Sends one command and resolves with the device's answer. Commands to one device run in turn. */
  command(device: string, text: string, timeoutMs = 10_000): Promise<string> {
    const run = async () => {
      const waiting = this.next(device, 'Log', timeoutMs);
      try {
        await this.link.publish(commandTopic(device), text, { qos: 1, retain: false });
      } catch (error) {
        waiting.cancel();
        throw error;
      }
      this.log.debug({ device, command: text }, 'command sent');
      return waiting.answer;
    };
    const previous = this.#queues.get(device) ?? Promise.resolve();
    const result = previous.catch(() => {}).then(run);
    this.#queues.set(device, result);
    return result;
  }

  /** A command whose answer is JSON. */
  async commandJson<T>(device: string, text: string, timeoutMs = 10_000): Promise<T> {
    const answer = await this.command(device, text, timeoutMs);
    try {
      return JSON.parse(answer) as T;
    } catch {
      throw new Error(`${device} answered ${text} with '${answer.slice(0, 200)}', not JSON`);
    }
  }
}
