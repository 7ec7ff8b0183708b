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
      try {
        this.store.appendLog(device, message.topic, text);
      } catch (error) {
        // A full disk must not stop answers from reaching the jobs that wait for them.
        this.log.error({ device, err: (error as Error).message }, 'cannot keep a device log line');
      }
      for (const waiter of this.#waiters) {
        if (waiter.device === device && waiter.channel === channel && waiter.accept(text)) {
          waiter.resolve(text);
          break;
        }
      }
    });
  }

  /**
   * The next message on stat/<id>/<channel> that `accept` takes; rejects after `timeoutMs`, on
   * `cancel()`, or when `signal` aborts (with its reason). Nobody has to wait for the answer: a wait
   * whose caller gave up never becomes an unhandled rejection.
   */
  next(
    device: string,
    channel: 'Log' | 'OTA',
    timeoutMs: number,
    accept: (text: string) => boolean = () => true,
    signal?: AbortSignal,
  ): { answer: Promise<string>; cancel(): void } {
    let cancel!: () => void;
    const answer = new Promise<string>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: unknown) => (done(), reject(error));
      const onAbort = () => fail(signal!.reason);
      const waiter: Waiter = { device, channel, accept, resolve: (text) => (done(), resolve(text)) };
      const timer = setTimeout(() => fail(new Error(`${device} did not answer on stat/${device}/${channel} within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      cancel = () => fail(new Error(`the wait for ${device} on stat/${device}/${channel} was cancelled`));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
    answer.catch(() => {});
    return { answer, cancel };
  }

  /** Sends one command and resolves with the device's answer. Commands to one device run in turn. */
  command(device: string, text: string, timeoutMs = 10_000, signal?: AbortSignal): Promise<string> {
    const run = async () => {
      signal?.throwIfAborted();
      const waiting = this.next(device, 'Log', timeoutMs, undefined, signal);
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
    // Forget the queue once it is idle, so devices that come and go do not pile up here.
    const forget = () => {
      if (this.#queues.get(device) === result) this.#queues.delete(device);
    };
    result.then(forget, forget);
    return result;
  }

  /** A command whose answer is a JSON object. */
  async commandJson<T extends object>(device: string, text: string, timeoutMs = 10_000, signal?: AbortSignal): Promise<T> {
    const answer = await this.command(device, text, timeoutMs, signal);
    let value: unknown;
    try {
      value = JSON.parse(answer);
    } catch {
      throw new Error(`${device} answered '${text}' with '${answer.slice(0, 200)}', not JSON`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${device} answered '${text}' with '${answer.slice(0, 200)}', not a JSON object`);
    return value as T;
  }
}
