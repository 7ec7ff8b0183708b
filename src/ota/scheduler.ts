/**
 * The OTA scheduler: starts each queued job (push, sync, firmware) when its device listens, one job per
 * device at a time; keeps a retained "pending" flag so sleeping devices stay awake for their jobs [O-7];
 * starts the rollouts' drivers; ends jobs whose device was removed. Jobs live in the database, so they
 * survive restarts and the CLI can queue and follow them. Event-driven, no poll: it looks at the queue
 * when the store changes, a device's state changes, or what a device listens to changes.
 * No job can take the process down: every failure becomes the job's end state with a message. [O-9]
 */
import type { FeatureScope } from '../core/feature.js';
import type { Job, JobState } from '../store/ota-store.js';
import { DeviceSessions } from './device-sessions.js';
import type { OtaParts } from './job-context.js';
import {
  type CancelOutcome,
  cancelJobInStore,
  cancelRolloutInStore,
  describeJob,
  neededUploads,
  type RolloutCancelOutcome,
  releaseUploads,
} from './job-control.js';
import { JobFailure } from './job-errors.js';
import { runJob } from './job-run.js';
import { pendingTopic } from './protocol.js';
import { driveRollout } from './rollouts.js';
import { sweepUploads } from './uploads.js';

export class OtaScheduler {
  readonly #running = new Map<string, number>(); // device -> job id
  readonly #aborts = new Map<number, AbortController>(); // running job id -> its abort
  readonly #pendingFlags = new Set<string>();
  readonly #rollouts = new Set<number>();
  readonly #sessions: DeviceSessions;
  /** Set when the hub stops: a job cut short by that stays `running` in the store and runs again at the next start. */
  #stopped = false;
  #tickQueued = false;
  /** The tick under way (ticks read the store, so they take turns: two must never start one device's jobs). */
  #ticking: Promise<void> | undefined;
  #tickAgain = false;
  /** Rollouts waiting for a job of theirs to end, or for their own cancel. */
  readonly #storeWaits: Array<() => void> = [];
  /** [O-14] Jobs waiting for their device to be back and listening: checked at each tick (a state change, a SUBSCRIBE, a session's questions over). */
  readonly #backWaits = new Set<() => void>();

  constructor(private readonly parts: OtaParts) {
    this.#sessions = new DeviceSessions(parts, {
      busy: (device) => this.#running.has(device),
      stopped: () => this.#stopped,
      settled: () => this.#tick(),
    });
  }

  /** Everything it listens to is taken through the feature's scope, and ended by the hub at stop. */
  async start(scope: FeatureScope): Promise<void> {
    const { store, registry, options, log } = this.parts;
    await store.requeueRunning();
    // Before the API takes new uploads: whatever no unfinished job needs is left over. [O-10]
    for (const folder of sweepUploads(options.uploadsRoot, await neededUploads(store, options.uploadsRoot))) {
      log.info({ folder }, 'removed an upload folder no unfinished job needs');
    }
    const listening = options.listening;
    scope.on('device:announced', (device) => this.#sessions.begin(device));
    // [P-21] A device that subscribes after saying `online` is asked (and served) then; a closed connection ends its session.
    if (listening) {
      scope.defer(
        listening.onChange((id) => {
          if (!listening.connected(id)) this.#sessions.end(id);
          const device = registry.get(id);
          if (device) this.#sessions.observe(device);
          this.#tick();
        }),
      );
    }
    scope.on('device:state', () => this.#tick());
    scope.on('device:removed', (device, reason) => {
      this.#deviceRemoved(device.id, reason).catch((error: unknown) => log.error({ device: device.id, err: error }, "cannot end the removed device's jobs"));
    });
    // Event-driven, no poll: a job queued, started or ended (API, rollout, cancel) is a change in the store.
    scope.defer(
      store.onChange(() => {
        for (const wake of this.#storeWaits.splice(0)) wake();
        this.#soon();
      }),
    );
    // Jobs queued before this start (or left queued by a restart) are looked at once now.
    this.#soon();
  }

  /** Jobs cut short by the stop stay `running` in the store and run again at the next start. */
  stop(): void {
    this.#stopped = true;
    for (const wake of this.#storeWaits.splice(0)) wake();
  }

  /**
   * Ends a queued or running job as `cancelled`: a running one stops at once (its pull server closes,
   * its waits end). Says what happened, or why nothing did. [O-9]
   */
  async cancel(id: number, by: string): Promise<CancelOutcome> {
    const outcome = await cancelJobInStore(this.parts.store, this.parts.options.uploadsRoot, id, by);
    if (outcome.outcome === 'cancelled') {
      this.#aborts.get(id)?.abort(new JobFailure(`cancelled by ${by}`, 'cancelled'));
      this.parts.log.info({ job: id, device: outcome.job?.device }, `${outcome.message} by ${by}`);
    }
    return outcome;
  }

  /** Stops a rollout (it starts no other device) and cancels its unfinished jobs. */
  async cancelRollout(id: number, by: string): Promise<RolloutCancelOutcome> {
    const outcome = await cancelRolloutInStore(this.parts.store, id, by, (jobId) => this.cancel(jobId, `${by} (rollout #${id})`));
    if (outcome.outcome === 'cancelled') this.parts.log.info({ rollout: id }, `${outcome.message} by ${by}`);
    return outcome;
  }

  /** One tick after the current change is done: store changes come from inside the store's callers (and from a tick itself). */
  #soon(): void {
    if (this.#tickQueued) return;
    this.#tickQueued = true;
    setImmediate(() => {
      this.#tickQueued = false;
      if (!this.#stopped) this.#tick();
    });
  }

  /** Resolves at the next job or rollout change in the store (or the hub's stop). */
  #storeChange(): Promise<void> {
    return new Promise((resolve) => this.#storeWaits.push(resolve));
  }

  /** A removed device's jobs cannot run: the running one stops, the queued ones fail. */
  async #deviceRemoved(device: string, reason: string): Promise<void> {
    const running = this.#running.get(device);
    if (running !== undefined) this.#aborts.get(running)?.abort(new JobFailure(`${device} was removed during the job (${reason})`));
    for (const job of await this.parts.store.jobsIn('queued'))
      if (job.device === device) await this.#end(job, 'failed', `${device} was removed (${reason}): queue the job again when the device is back`);
  }

  /** Ends a job that did not run (or whose run is over) and frees its upload folder. */
  async #end(job: Job, state: JobState, message: string): Promise<boolean> {
    const ended = await this.parts.store.finishJob(job.id, state, message);
    if (ended) this.parts.log.warn({ device: job.device, job: job.id }, `${describeJob(job)} ${state}: ${message}`);
    await this.#release(job);
    return ended;
  }

  async #release(job: Job): Promise<void> {
    if (this.#stopped) return;
    try {
      await releaseUploads(this.parts.store, this.parts.options.uploadsRoot, job);
    } catch (error) {
      this.parts.log.warn({ job: job.id, err: (error as Error).message }, "cannot remove the job's upload folder");
    }
  }

  /** Runs from timers and events: whatever goes wrong is logged, never thrown at them. */
  #tick(): void {
    for (const check of [...this.#backWaits]) check();
    if (this.#ticking) {
      this.#tickAgain = true;
      return;
    }
    this.#ticking = (async () => {
      do {
        this.#tickAgain = false;
        try {
          await this.#tickOnce();
        } catch (error) {
          this.parts.log.error({ err: error }, 'OTA job scheduling failed');
        }
      } while (this.#tickAgain && !this.#stopped);
    })().finally(() => {
      this.#ticking = undefined;
    });
  }

  /** Starts every queued job whose device is online and idle; raises or clears the pending flags. */
  async #tickOnce(): Promise<void> {
    const { store, registry, log } = this.parts;
    for (const job of await store.jobsIn('queued')) {
      if (!registry.get(job.device))
        await this.#end(job, 'failed', `there is no device ${job.device} any more (it was removed): queue the job again when the device is back`);
    }
    const queued = await store.jobsIn('queued');
    const waiting = new Set(queued.map((j) => j.device));
    for (const device of waiting) this.#setPending(device, true);
    for (const device of [...this.#pendingFlags]) if (!waiting.has(device) && !this.#running.has(device)) this.#setPending(device, false);
    for (const job of queued) {
      if (this.#running.has(job.device) || !this.#sessions.listens(job.device)) continue;
      if (!(await store.startJob(job.id))) continue;
      this.#start(job);
    }
    for (const id of await store.runningRollouts()) {
      if (!this.#rollouts.has(id)) {
        this.#rollouts.add(id);
        driveRollout(store, { stopped: () => this.#stopped, storeChange: () => this.#storeChange() }, id)
          .catch(async (error: unknown) => {
            log.error({ rollout: id, err: error }, 'rollout failed');
            await store.finishRollout(id, 'failed', `the hub could not drive it: ${(error as Error).message}`);
          })
          .catch((error: unknown) => log.error({ rollout: id, err: error }, "cannot record the rollout's failure"))
          .finally(() => this.#rollouts.delete(id));
      }
    }
  }

  /** Runs a job the store has marked running; when it ends, the device is free for the next one. */
  #start(job: Job): void {
    const abort = new AbortController();
    this.#running.set(job.device, job.id);
    this.#aborts.set(job.id, abort);
    const hooks = {
      listens: (device: string) => this.#sessions.listens(device),
      atEachTick: (check: () => void) => {
        this.#backWaits.add(check);
        return () => void this.#backWaits.delete(check);
      },
      stopped: () => this.#stopped,
    };
    runJob(this.parts, hooks, job, abort.signal)
      .finally(async () => {
        this.#running.delete(job.device);
        this.#aborts.delete(job.id);
        if (this.#stopped) return;
        await this.#release(job);
        // What the device says about itself may have changed (version, reboot reason): ask again.
        const device = this.parts.registry.get(job.device);
        this.#sessions.askAgain(job.device);
        if (device?.state === 'online') this.#sessions.observe(device);
        this.#tick();
      })
      .catch((error: unknown) => this.parts.log.error({ job: job.id, err: error }, 'OTA job bookkeeping failed'));
  }

  #setPending(device: string, pending: boolean): void {
    if (pending === this.#pendingFlags.has(device)) return;
    if (pending) this.#pendingFlags.add(device);
    else this.#pendingFlags.delete(device);
    // Retained, so a sleepy device sees it as soon as it wakes and subscribes. [O-7]
    this.parts.link.publish(pendingTopic(device), pending ? '1' : '', { qos: 1, retain: true }).catch((error: Error) => {
      this.parts.log.debug({ device, err: error.message }, 'cannot publish the OTA pending flag');
    });
  }
}
