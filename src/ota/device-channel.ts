/**
 * The hub's command channel to devices: a command on cmnd/<id>/OTA and its answer on stat/<id>/Log
 * (one command in flight per device); transfer reports on stat/<id>/OTA; every device log line kept in
 * the store for `mqttkit logs`. [O-12] A device may log on stat/<id>/Log at any time, so an answer is
 * found by its request id (`#<n> `) when the device echoes ids, else by its shape (request-id.ts).
 */
import type { HubLink } from '../broker/hub-link.js';
import type { Logger } from '../log/logger.js';
import type { OtaStore } from '../store/ota-store.js';
import { type Answer, type AnswerCommand, parseAnswer } from './answers.js';
import { commandTopic } from './protocol.js';
import { answerTo, commandName, echoesRid, fitsAnswer, nextRid, withRid } from './request-id.js';

interface Waiter {
  device: string;
  channel: 'Log' | 'OTA';
  accept: (text: string) => boolean;
  resolve: (text: string) => void;
}

/** A device log line as kept in the store, with the device it came from. */
export interface DeviceLogLine {
  device: string;
  id: number;
  topic: string;
  text: string;
  at: number;
}

const STAT = /^stat\/([A-Za-z0-9_-]{1,64})\/(Log|OTA)$/;

export class DeviceChannel {
  readonly #waiters = new Set<Waiter>();
  readonly #queues = new Map<string, Promise<unknown>>();
  /** [O-12] The last request id sent to each device (increasing per device). */
  readonly #rids = new Map<string, number>();
  /** Who follows log lines as they are kept (the dashboard's live stream). */
  readonly #lineListeners = new Set<(line: DeviceLogLine) => void>();

  /** Device log lines being kept, in order. */
  #keeping: Promise<void> = Promise.resolve();

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
      // Kept in the order they came, while the waiters below hear the line at once.
      this.#keeping = this.#keeping
        .then(async () => {
          const kept = await this.store.appendLog(device, message.topic, text);
          this.#tell({ device, ...kept });
        })
        .catch((error: unknown) => {
          // A full disk must not stop answers from reaching the jobs that wait for them.
          this.log.error({ device, err: (error as Error).message }, 'cannot keep a device log line');
        });
      for (const waiter of this.#waiters) {
        if (waiter.device === device && waiter.channel === channel && waiter.accept(text)) {
          waiter.resolve(text);
          break;
        }
      }
    });
  }

  /** Calls `listener` with each log line once it is kept; returns the function that stops it. */
  onLine(listener: (line: DeviceLogLine) => void): () => void {
    this.#lineListeners.add(listener);
    return () => this.#lineListeners.delete(listener);
  }

  /** A listener's error is its own: it never stops the line reaching waiters or other listeners. */
  #tell(line: DeviceLogLine): void {
    for (const listener of this.#lineListeners) {
      try {
        listener(line);
      } catch (error) {
        this.log.error({ device: line.device, err: (error as Error).message }, 'a device log listener failed');
      }
    }
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
      const timer = setTimeout(
        () => fail(new Error(`${device} did not answer on stat/${device}/${channel} within ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
      cancel = () => fail(new Error(`the wait for ${device} on stat/${device}/${channel} was cancelled`));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
    answer.catch(() => {});
    return { answer, cancel };
  }

  /**
   * Sends one command and resolves with the device's answer. Commands to one device run in turn.
   * [O-12] To a device known to echo request ids (its `getversion` said `"rid": 1`) the command goes as
   * `#<n> <command>` and only the line `#<n> …` answers it; otherwise (and with `plain`, for the first
   * `getversion` of a session) it goes as it is and the next Log line of the answer's shape answers it.
   */
  command(device: string, text: string, timeoutMs = 10_000, signal?: AbortSignal, plain = false): Promise<string> {
    const run = async () => {
      signal?.throwIfAborted();
      const rid = !plain && (await this.store.info(device)).echoesRid === true ? nextRid(this.#rids.get(device) ?? 0) : undefined;
      if (rid !== undefined) this.#rids.set(device, rid);
      const accept = rid === undefined ? (line: string) => fitsAnswer(text, line) : (line: string) => answerTo(rid, line) !== undefined;
      const waiting = this.next(device, 'Log', timeoutMs, accept, signal);
      const sent = rid === undefined ? text : withRid(rid, text);
      try {
        await this.link.publish(commandTopic(device), sent, { qos: 1, retain: false });
      } catch (error) {
        waiting.cancel();
        throw error;
      }
      this.log.debug({ device, command: sent }, 'command sent');
      const line = await waiting.answer;
      const answer = rid === undefined ? line : (answerTo(rid, line) ?? line);
      if (commandName(text) === 'getversion') await this.#learn(device, answer);
      return answer;
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

  /** [O-12] Whether the device echoes request ids, from what its `getversion` answer says. */
  async #learn(device: string, answer: string): Promise<void> {
    const version = parseAnswer(device, 'getversion', answer);
    if (!version.ok) return;
    const echoes = echoesRid(version.value);
    if ((await this.store.info(device)).echoesRid !== echoes) await this.store.updateInfo(device, { echoesRid: echoes });
  }

  /**
   * A command whose answer is a JSON object (docs/ota.md §3), checked against its schema (answers.ts):
   * a device's answer is untrusted input, so a wrong one fails naming the command and the field.
   */
  async answer<C extends AnswerCommand>(device: string, command: C, timeoutMs = 10_000, signal?: AbortSignal, plain = false): Promise<Answer<C>> {
    const text = await this.command(device, command, timeoutMs, signal, plain);
    const parsed = parseAnswer(device, command, text);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  }
}
