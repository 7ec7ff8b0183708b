/**
 * [P-21] What the OTA feature knows of each device's current session: whether it listens (so a job
 * may start), and what the device says about itself (`getversion`, `msg_reboot`, `msg_exception`),
 * asked once per session when it listens.
 */
import type { DeviceRecord } from '../core/device.js';
import type { OtaParts } from './job-context.js';
import { commandTopic, partitionLabel, triggerTopic } from './protocol.js';
import { PROBE_TIMEOUT_MS } from './steps.js';

/** One session of a device (from its live `$state online`): have its questions been asked, and are they over? */
interface Session {
  asked: boolean;
  settled: boolean;
}

/** [P-21] External broker: how often the questions are asked in one session, and the first pause between tries (doubled each time). */
const PROBE_TRIES = 4;
const PROBE_RETRY_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DeviceSessions {
  readonly #sessions = new Map<string, Session>();

  constructor(
    private readonly parts: Pick<OtaParts, 'channel' | 'store' | 'registry' | 'route' | 'options' | 'log'>,
    private readonly hooks: {
      /** A job runs for the device now: its questions wait for the job's end. */
      busy(device: string): boolean;
      stopped(): boolean;
      /** A session's questions are over: a job may start now (external broker). */
      settled(): void;
    },
  ) {}

  /** A live `$state online`: a new session, whose questions are not asked yet. */
  begin(device: DeviceRecord): void {
    this.#sessions.set(device.id, { asked: false, settled: false });
    this.observe(device);
  }

  /** Its connection closed: the session is over. */
  end(id: string): void {
    this.#sessions.delete(id);
  }

  /** What the device says about itself may have changed (a job ended: version, reboot reason): ask again. */
  askAgain(id: string): void {
    const session = this.#sessions.get(id);
    if (session) session.asked = false;
  }

  /**
   * [P-21] Whether a job may start: the device is listening. Embedded broker: its current connection
   * subscribed to cmnd/<id>/OTA or <id>/OTA, and it is `online`, or `sleeping` with its connection
   * still open ([O-7]: it said `sleeping` first and then saw `pending`). External broker: it is
   * `online` and the questions of its session are over (answered, or given up after the retries).
   */
  listens(id: string): boolean {
    const state = this.parts.registry.get(id)?.state;
    const listening = this.parts.options.listening;
    if (listening) {
      const awake = state === 'online' || (state === 'sleeping' && listening.connected(id));
      return awake && (listening.hears(id, commandTopic(id)) || listening.hears(id, triggerTopic(id)));
    }
    const session = this.#sessions.get(id);
    return state === 'online' && (session === undefined || session.settled);
  }

  /**
   * Learns what a device says about itself (`getversion`, `msg_reboot`, `msg_exception`), once per
   * session and only when it listens [P-21]: with the embedded broker once its connection subscribed
   * to cmnd/<id>/OTA (whatever came first, that or `online`); with an external broker it is asked
   * and asked again (backoff) until it answers or PROBE_TRIES are spent. A device that did not answer
   * is asked again in its next session.
   */
  observe(device: DeviceRecord): void {
    const { store, registry, route, options, log } = this.parts;
    const known = route(device.id);
    // Written only when it changed: this runs on every change of what a device listens to.
    if (known) {
      const address = known.deviceAddress;
      void (async () => {
        if ((await store.info(device.id)).address !== address) await store.updateInfo(device.id, { address });
      })().catch((error: unknown) => log.warn({ device: device.id, err: (error as Error).message }, "cannot record the device's address"));
    }
    const session = this.#sessions.get(device.id);
    const listening = options.listening;
    if (!session || session.asked || this.hooks.busy(device.id) || device.state !== 'online') return;
    if (listening && !listening.hears(device.id, commandTopic(device.id))) return;
    session.asked = true;
    const tries = listening ? 1 : PROBE_TRIES;
    void (async () => {
      try {
        for (let attempt = 1; ; attempt++) {
          try {
            await this.#ask(device.id);
            return;
          } catch (error) {
            // A new session, the device gone, or the tries spent: this round is over.
            if (attempt >= tries || this.hooks.stopped() || this.#sessions.get(device.id) !== session) throw error;
            await sleep(PROBE_RETRY_MS * 2 ** (attempt - 1));
            if (this.#sessions.get(device.id) !== session || registry.get(device.id)?.state !== 'online') throw error;
          }
        }
      } catch {
        if ((await store.info(device.id)).answersCommands === undefined) await store.updateInfo(device.id, { answersCommands: false });
      } finally {
        session.settled = true;
        this.hooks.settled();
      }
    })().catch((error: unknown) => log.warn({ device: device.id, err: (error as Error).message }, 'cannot record what the device says about itself'));
  }

  /** One round of questions; the session's first `getversion` goes without a request id ([O-12]: the hub cannot know yet). */
  async #ask(id: string): Promise<void> {
    const { channel, store } = this.parts;
    const version = await channel.answer(id, 'getversion', PROBE_TIMEOUT_MS, undefined, true);
    await store.updateInfo(id, {
      answersCommands: true,
      ...(typeof version.ota === 'number' ? { otaProtocol: version.ota } : {}),
      ...(partitionLabel(version.partition) ? { partition: partitionLabel(version.partition) } : {}),
    });
    const lastReboot = await channel.command(id, 'msg_reboot', PROBE_TIMEOUT_MS);
    const lastException = await channel.command(id, 'msg_exception', PROBE_TIMEOUT_MS);
    await store.updateInfo(id, { firmware: version.firmware ?? undefined, app: version.app ?? undefined, lastReboot, lastException });
  }
}
