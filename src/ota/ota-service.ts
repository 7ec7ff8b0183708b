/**
 * The OTA feature: runs queued jobs (push, sync, firmware) when their device is online, keeps a
 * retained "pending" flag so sleeping devices stay awake for them, drives fleet rollouts canary-first,
 * and records what devices say about themselves (version, last reboot, last exception).
 * Jobs live in the database, so they survive restarts and the CLI can queue and follow them.
 * No job can take the process down: every wait it starts is ended (answered, timed out, cancelled or
 * aborted) and every failure becomes the job's end state with a message. [O-9]
 */
import { readFileSync } from 'node:fs';
import type { ListeningSource } from '../broker/device-listening.js';
import type { HubLink } from '../broker/hub-link.js';
import type { DeviceRecord } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import type { FeatureScope } from '../core/feature.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { Logger } from '../log/logger.js';
import { FINISHED, type Job, type JobProgress, type JobState, type OtaStore } from '../store/ota-store.js';
import { type Answer, type AnswerCommand, parseAnswer } from './answers.js';
import type { DeviceChannel } from './device-channel.js';
import {
  type CancelOutcome,
  cancelJobInStore,
  cancelRolloutInStore,
  describeJob,
  neededUploads,
  type RolloutCancelOutcome,
  releaseUploads,
} from './job-control.js';
import { readManifest } from './manifest.js';
import {
  chooseHash,
  commandTopic,
  commitDifference,
  deviceError,
  FIRMWARE_TARGET,
  type HashAlgorithm,
  type OtaProtocol,
  parseReport,
  pendingTopic,
  seedTriggerMessage,
  settledProtocol,
  sha1,
  type TransferReport,
  transferHash,
  triggerMessage,
  triggerTopic,
} from './protocol.js';
import { servePull } from './pull-server.js';
import { sweepUploads } from './uploads.js';

export interface DeviceRoute {
  /** Where the device connects from: the only address the pull server serves. */
  deviceAddress: string;
  /** Where the device reaches the hub: the pull server listens there. */
  hubAddress: string;
}

export interface OtaOptions {
  transferTimeoutMs: number;
  rebootTimeoutMs: number;
  commandTimeoutMs: number;
  /** [O-14] How long after its start a job may still wait for a device that dropped mid-job (`--ota-job-deadline`). */
  jobDeadlineMs: number;
  /** The hub's address for devices when the broker cannot tell (external broker). */
  hubAddress?: string | undefined;
  /** `<data dir>/uploads`: the API's files for jobs, removed when their job ends. [O-10] */
  uploadsRoot: string;
  /** [P-21] The embedded broker's view of who listens; undefined with an external broker (then: ask and retry). */
  listening?: ListeningSource | undefined;
}

/** [P-21] One session of a device (from its live `$state online`): have its questions been asked, and are they over? */
interface Session {
  asked: boolean;
  settled: boolean;
}

class JobFailure extends Error {
  constructor(
    message: string,
    readonly state: JobState = 'failed',
  ) {
    super(message);
  }
}

/** [O-14] The device left `online` during a step that needs it connected: the job waits for it and resumes. */
class DeviceDropped extends Error {
  constructor(readonly step: string) {
    super(`the device left during ${step}`);
  }
}

/**
 * [O-14] One run of a job's steps: `step` names what it does now (for the message when the device
 * drops), `expected` is set while the device is meant to go away (a reboot), so leaving is no drop.
 */
interface DropWatch {
  step: string;
  expected: boolean;
}

/** A job's command channel to its device (#commands). */
interface Ask {
  text(command: string): Promise<string>;
  /** A command with a JSON answer, checked against its schema (answers.ts). */
  answer<C extends AnswerCommand>(command: C): Promise<Answer<C>>;
}

export class OtaService {
  readonly #running = new Map<string, number>(); // device -> job id
  readonly #aborts = new Map<number, AbortController>(); // running job id -> its abort
  readonly #pendingFlags = new Set<string>();
  readonly #rollouts = new Set<number>();
  readonly #sessions = new Map<string, Session>();
  /** Set when the hub stops: a job cut short by that stays `running` in the store and runs again at the next start. */
  #stopped = false;
  #tickQueued = false;
  /** Rollouts waiting for a job of theirs to end, or for their own cancel. */
  readonly #storeWaits: Array<() => void> = [];
  /** [O-14] Jobs waiting for their device to be back and listening: checked at each tick (a state change, a SUBSCRIBE, a session's questions over). */
  readonly #backWaits = new Set<() => void>();

  constructor(
    private readonly link: HubLink,
    private readonly channel: DeviceChannel,
    private readonly store: OtaStore,
    private readonly registry: DeviceRegistry,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly route: (deviceId: string) => DeviceRoute | undefined,
    private readonly options: OtaOptions,
  ) {}

  /** Everything it listens to is taken through the feature's scope, and ended by the hub at stop. */
  start(scope: FeatureScope): void {
    this.store.requeueRunning();
    // Before the API takes new uploads: whatever no unfinished job needs is left over. [O-10]
    for (const folder of sweepUploads(this.options.uploadsRoot, neededUploads(this.store, this.options.uploadsRoot))) {
      this.log.info({ folder }, 'removed an upload folder no unfinished job needs');
    }
    const listening = this.options.listening;
    scope.on('device:announced', (device) => {
      this.#sessions.set(device.id, { asked: false, settled: false });
      this.#observe(device);
    });
    // [P-21] A device that subscribes after saying `online` is asked (and served) then; a closed connection ends its session.
    if (listening) {
      scope.defer(
        listening.onChange((id) => {
          if (!listening.connected(id)) this.#sessions.delete(id);
          const device = this.registry.get(id);
          if (device) this.#observe(device);
          this.#tick();
        }),
      );
    }
    scope.on('device:state', () => this.#tick());
    scope.on('device:removed', (device, reason) => this.#deviceRemoved(device.id, reason));
    // Event-driven, no poll: a job queued, started or ended (API, rollout, cancel) is a change in the store.
    scope.defer(
      this.store.onChange(() => {
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

  /**
   * Ends a queued or running job as `cancelled`: a running one stops at once (its pull server closes,
   * its waits end). Says what happened, or why nothing did. [O-9]
   */
  cancel(id: number, by: string): CancelOutcome {
    const outcome = cancelJobInStore(this.store, this.options.uploadsRoot, id, by);
    if (outcome.outcome === 'cancelled') {
      this.#aborts.get(id)?.abort(new JobFailure(`cancelled by ${by}`, 'cancelled'));
      this.log.info({ job: id, device: outcome.job?.device }, `${outcome.message} by ${by}`);
    }
    return outcome;
  }

  /** Stops a rollout (it starts no other device) and cancels its unfinished jobs. */
  cancelRollout(id: number, by: string): RolloutCancelOutcome {
    const outcome = cancelRolloutInStore(this.store, id, by, (jobId) => this.cancel(jobId, `${by} (rollout #${id})`));
    if (outcome.outcome === 'cancelled') this.log.info({ rollout: id }, `${outcome.message} by ${by}`);
    return outcome;
  }

  /** A removed device's jobs cannot run: the running one stops, the queued ones fail. */
  #deviceRemoved(device: string, reason: string): void {
    const running = this.#running.get(device);
    if (running !== undefined) this.#aborts.get(running)?.abort(new JobFailure(`${device} was removed during the job (${reason})`));
    for (const job of this.store.jobsIn('queued'))
      if (job.device === device) this.#end(job, 'failed', `${device} was removed (${reason}): queue the job again when the device is back`);
  }

  /** Ends a job that did not run (or whose run is over) and frees its upload folder. */
  #end(job: Job, state: JobState, message: string): boolean {
    const ended = this.store.finishJob(job.id, state, message);
    if (ended) this.log.warn({ device: job.device, job: job.id }, `${describeJob(job)} ${state}: ${message}`);
    this.#release(job);
    return ended;
  }

  #release(job: Job): void {
    if (this.#stopped) return;
    try {
      releaseUploads(this.store, this.options.uploadsRoot, job);
    } catch (error) {
      this.log.warn({ job: job.id, err: (error as Error).message }, "cannot remove the job's upload folder");
    }
  }

  /** Runs from timers and events: whatever goes wrong is logged, never thrown at them. */
  #tick(): void {
    for (const check of [...this.#backWaits]) check();
    try {
      this.#tickOnce();
    } catch (error) {
      this.log.error({ err: error }, 'OTA job scheduling failed');
    }
  }

  /** Starts every queued job whose device is online and idle; raises or clears the pending flags. */
  #tickOnce(): void {
    for (const job of this.store.jobsIn('queued')) {
      if (!this.registry.get(job.device))
        this.#end(job, 'failed', `there is no device ${job.device} any more (it was removed): queue the job again when the device is back`);
    }
    const queued = this.store.jobsIn('queued');
    const waiting = new Set(queued.map((j) => j.device));
    for (const device of waiting) this.#setPending(device, true);
    for (const device of [...this.#pendingFlags]) if (!waiting.has(device) && !this.#running.has(device)) this.#setPending(device, false);
    for (const job of queued) {
      if (this.#running.has(job.device) || !this.#listens(job.device)) continue;
      if (!this.store.startJob(job.id)) continue;
      const abort = new AbortController();
      this.#running.set(job.device, job.id);
      this.#aborts.set(job.id, abort);
      this.#run(job, abort.signal)
        .finally(() => {
          this.#running.delete(job.device);
          this.#aborts.delete(job.id);
          if (this.#stopped) return;
          this.#release(job);
          // What the device says about itself may have changed (version, reboot reason): ask again.
          const device = this.registry.get(job.device);
          const session = this.#sessions.get(job.device);
          if (session) session.asked = false;
          if (device?.state === 'online') this.#observe(device);
          this.#tick();
        })
        .catch((error: unknown) => this.log.error({ job: job.id, err: error }, 'OTA job bookkeeping failed'));
    }
    for (const id of this.store.runningRollouts()) {
      if (!this.#rollouts.has(id)) {
        this.#rollouts.add(id);
        this.#driveRollout(id)
          .catch((error: unknown) => {
            this.log.error({ rollout: id, err: error }, 'rollout failed');
            this.store.finishRollout(id, 'failed', `the hub could not drive it: ${(error as Error).message}`);
          })
          .catch((error: unknown) => this.log.error({ rollout: id, err: error }, "cannot record the rollout's failure"))
          .finally(() => this.#rollouts.delete(id));
      }
    }
  }

  #setPending(device: string, pending: boolean): void {
    if (pending === this.#pendingFlags.has(device)) return;
    if (pending) this.#pendingFlags.add(device);
    else this.#pendingFlags.delete(device);
    // Retained, so a sleepy device sees it as soon as it wakes and subscribes. [O-7]
    this.link.publish(pendingTopic(device), pending ? '1' : '', { qos: 1, retain: true }).catch((error: Error) => {
      this.log.debug({ device, err: error.message }, 'cannot publish the OTA pending flag');
    });
  }

  async #run(job: Job, signal: AbortSignal): Promise<void> {
    const log = this.log.child({ device: job.device, job: job.id });
    log.info(`OTA ${job.kind} started`);
    let state: JobState;
    let message: string;
    try {
      message = await this.#resuming(job, signal, (attempt, watch) =>
        job.kind === 'push' ? this.#push(job, attempt, watch) : job.kind === 'sync' ? this.#sync(job, attempt, watch) : this.#firmware(job, attempt, watch),
      );
      state = 'succeeded';
    } catch (error) {
      // Aborted (cancelled, device removed): that is the job's end, whatever the step in flight made of it.
      const cause = signal.aborted ? (signal.reason as unknown) : error;
      state = cause instanceof JobFailure ? cause.state : 'failed';
      message = cause instanceof Error ? cause.message : String(cause);
    }
    if (this.#stopped) return log.info(`OTA ${job.kind} interrupted by the hub stopping; it runs again at the next start`);
    // A job cancelled meanwhile keeps its `cancelled`: the first end wins.
    if (this.store.finishJob(job.id, state, message)) {
      if (state === 'succeeded') log.info(`OTA ${job.kind} succeeded: ${message}`);
      else log.warn(`OTA ${job.kind} ${state}: ${message}`);
    }
  }

  /**
   * [O-14] Runs a job's steps; when the device leaves `online` during a step that needs it (not during a
   * reboot the job asked for), the step in flight stops (its pull server closes), the job waits for the
   * device to come back, as for a sleeping device, and runs its steps again from the first (`discard`,
   * then `hashes` for a sync: what went live before the drop is not sent twice). Only a device that is
   * not back by the job's deadline (`--ota-job-deadline`, counted from the job's start) fails it.
   */
  async #resuming(job: Job, signal: AbortSignal, run: (attempt: AbortSignal, watch: DropWatch) => Promise<string>): Promise<string> {
    const deadline = Date.now() + this.options.jobDeadlineMs;
    let drops = 0;
    for (;;) {
      const attempt = new AbortController();
      const watch: DropWatch = { step: 'starting', expected: false };
      const onAbort = () => attempt.abort(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      // `offline` (its will, or its connection closed) is a drop; `sleeping` alone is not: a device that
      // announced sleep but sees `pending` stays awake for the job [O-7]. If it does sleep, the step
      // times out while it is not `online`, which counts as a drop below.
      const off = this.bus.on('device:state', (d) => {
        if (d.id === job.device && d.state === 'offline' && !watch.expected) attempt.abort(new DeviceDropped(watch.step));
      });
      try {
        const message = await run(attempt.signal, watch);
        return drops > 0 ? `${message} (resumed after the device dropped ${drops === 1 ? 'once' : `${drops} times`})` : message;
      } catch (error) {
        if (signal.aborted) throw error;
        // Dropped: told by the registry, or a step that failed while the device was gone (no will yet, asleep).
        const reason: unknown = attempt.signal.reason;
        const dropped =
          reason instanceof DeviceDropped
            ? reason
            : !watch.expected && this.registry.get(job.device)?.state !== 'online'
              ? new DeviceDropped(watch.step)
              : undefined;
        if (!dropped) throw error;
        drops++;
        const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
        this.log.warn({ device: job.device, job: job.id }, `${job.device} left during ${dropped.step}: the job waits up to ${left} s for it to come back`);
        const last = this.store.job(job.id)?.progress;
        this.#progress(job, {
          files: last?.files ?? 0,
          filesTotal: last?.filesTotal ?? 0,
          bytes: last?.bytes ?? 0,
          bytesTotal: last?.bytesTotal ?? 0,
          step: `waiting for ${job.device} to come back (it left during ${dropped.step})`,
        });
        await this.#comeBack(job.device, deadline, dropped.step, signal);
        this.log.info({ device: job.device, job: job.id }, `${job.device} is back: the job starts its steps again`);
      } finally {
        off();
        signal.removeEventListener('abort', onAbort);
      }
    }
  }

  /**
   * [O-14] Resolves when the device is back and listening again ([P-21]: a step's command sent before
   * its SUBSCRIBE would be lost); fails the job at its deadline.
   */
  #comeBack(device: string, deadline: number, step: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const end = () => {
        clearTimeout(timer);
        this.#backWaits.delete(check);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => (end(), reject(signal.reason));
      const back = () => this.registry.get(device)?.state === 'online' && this.#listens(device);
      // Every sign (a state change, its SUBSCRIBE, its session's questions over) ticks the scheduler, which checks.
      const check = () => back() && (end(), resolve());
      this.#backWaits.add(check);
      const minutes = Math.round(this.options.jobDeadlineMs / 60_000);
      const timer = setTimeout(
        () => (
          end(),
          reject(
            new JobFailure(
              `${device} left during ${step} and did not come back within the job's deadline (${minutes >= 1 ? `${minutes} min` : `${Math.round(this.options.jobDeadlineMs / 1000)} s`} from its start, --ota-job-deadline)`,
            ),
          )
        ),
        Math.max(0, deadline - Date.now()),
      );
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      if (back()) end(), resolve();
    });
  }

  /**
   * [O-13] [O-16] The first steps of every protocol-2 push or sync: `getversion` (which hashes the device
   * checks), then `discard` (what earlier jobs staged must not go live with this one). A device whose
   * library predates `discard` answers "unknown command": the job goes on, and its commit list is checked.
   */
  async #prepare(job: Job, ask: Ask, watch: DropWatch, signal: AbortSignal): Promise<{ algorithm: HashAlgorithm; note: string }> {
    watch.step = "'getversion'";
    // [O-16] No usable answer (no JSON: a firmware that answers getversion its own way) means SHA-1, the
    // hash every device checks; the job goes on. A device that left is noticed by the next step.
    let algorithm: HashAlgorithm = 'sha1';
    try {
      algorithm = chooseHash((await this.channel.answer(job.device, 'getversion', PROBE_TIMEOUT_MS, signal)).hashes);
    } catch (error) {
      if (signal.aborted) throw error;
      this.log.info({ device: job.device, job: job.id }, `${job.device} gave no JSON getversion answer: the job uses SHA-1`);
    }
    watch.step = "'discard'";
    // An mqttkit library from before `discard` answers "unknown command": nothing was discarded ([O-13] rule 4).
    const discarded = parseAnswer(job.device, 'discard', await ask.text('discard'));
    const gone = discarded.ok ? discarded.value.discarded : [];
    // a device's list: at most 10 names go into the log and the job's message
    if (gone.length > 0)
      this.log.info({ device: job.device, job: job.id, discarded: gone.slice(0, 10), count: gone.length }, 'discarded files staged by an earlier job');
    const note = gone.length
      ? `; discarded first what an earlier job had left: ${gone
          .slice(0, 10)
          .map((p) => p.slice(0, 200))
          .join(', ')}${gone.length > 10 ? ', …' : ''}`
      : '';
    return { algorithm, note };
  }

  #progress(job: Job, progress: JobProgress): void {
    this.store.setProgress(job.id, progress);
  }

  /** The device's command channel for one job: the command timeout, and the job's abort. */
  #commands(job: Job, signal: AbortSignal): Ask {
    const timeout = this.options.commandTimeoutMs;
    return {
      text: (command: string) => this.channel.command(job.device, command, timeout, signal),
      answer: <C extends AnswerCommand>(command: C) => this.channel.answer(job.device, command, timeout, signal),
    };
  }

  async #push(job: Job, signal: AbortSignal, watch: DropWatch): Promise<string> {
    const spec = job.spec as { file: string; as: string; reboot: boolean };
    const ask = this.#commands(job, signal);
    const bytes = readLocal(spec.file);
    const { protocol, why } = await this.#protocol(job.device, signal);
    if (protocol === 1) {
      if (!spec.reboot)
        throw new JobFailure(
          `${job.device} speaks OTA protocol 1 (${why}): its 4-field trigger always puts the file in place and reboots, so --no-reboot cannot be honoured; push without it, or 'mqttkit device set ${job.device} ota-protocol 2' if it runs the mqttkit device library`,
        );
      this.#progress(job, {
        files: 0,
        filesTotal: 1,
        bytes: 0,
        bytesTotal: bytes.length,
        step: `sending ${spec.as} (OTA protocol 1: the device reboots itself)`,
      });
      watch.expected = true; // [O-11] it reboots on its own, and says nothing: not watched for drops
      await this.#seedTransfer(job, spec.as, bytes, signal);
      this.#progress(job, { files: 1, filesTotal: 1, bytes: bytes.length, bytesTotal: bytes.length, step: 'done' });
      return `${spec.as} (${bytes.length} bytes) sent with the 4-field trigger (OTA protocol 1, ${why}): the device fetched it, rebooted and is back`;
    }
    const { algorithm, note } = await this.#prepare(job, ask, watch, signal);
    this.#progress(job, { files: 0, filesTotal: 1, bytes: 0, bytesTotal: bytes.length, step: `sending ${spec.as}` });
    watch.step = `the transfer of ${spec.as}`;
    const since = Date.now();
    const report = await this.#transfer(job, spec.as, bytes, spec.reboot, signal, algorithm);
    if (!report.ok && report.step === 'commit') {
      // [O-15] verified and staged, but the commit after it failed: the device kept its old files and did not reboot
      throw new JobFailure(
        `${spec.as}: transferred and verified, but the device's commit failed, so it kept its old files and did not reboot: ${report.error ?? 'no reason given'}`,
      );
    }
    if (!report.ok) throw new JobFailure(`${spec.as}: ${report.error ?? 'transfer failed'}`);
    this.#progress(job, { files: 1, filesTotal: 1, bytes: bytes.length, bytesTotal: bytes.length, step: 'done' });
    if (!spec.reboot) {
      watch.step = "'commit'";
      await this.#commit(ask, [spec.as]);
      return `${spec.as} (${bytes.length} bytes) transferred and committed${note}`;
    }
    // [O-13] a device that says what its reboot=1 commit made live is held to it (older ones say nothing)
    const difference = report.committed === undefined ? undefined : commitDifference([spec.as], report.committed);
    watch.expected = true; // it commits and reboots now
    if (difference) throw new JobFailure(`${spec.as}: ${difference}`);
    await this.#backOnline(job.device, since, signal);
    return `${spec.as} (${bytes.length} bytes) transferred; the device rebooted and is back${note}`;
  }

  /** [O-13] `commit`, held to exactly the files the job sent. */
  async #commit(ask: Ask, sent: string[]): Promise<void> {
    const committed = await ask.answer('commit');
    if (committed.error) throw new JobFailure(deviceError(committed.error));
    const difference = commitDifference(sent, committed.committed);
    if (difference) throw new JobFailure(difference);
  }

  async #sync(job: Job, signal: AbortSignal, watch: DropWatch): Promise<string> {
    const spec = job.spec as { manifest: string };
    const ask = this.#commands(job, signal);
    const entries = readManifest(spec.manifest).map((e) => ({ ...e, bytes: readLocal(e.local) }));
    const { protocol, why } = await this.#protocol(job.device, signal);
    if (protocol === 1) {
      watch.expected = true; // [O-11] it reboots after each file on its own
      return this.#seedSync(job, entries, why, signal);
    }
    const { algorithm, note } = await this.#prepare(job, ask, watch, signal);
    watch.step = "'hashes'";
    const wanted = new Map(entries.map((e) => [e.path, sha1(e.bytes)]));
    this.#progress(job, { files: 0, filesTotal: entries.length, bytes: 0, bytesTotal: 0, step: 'asking for hashes' });
    const before = await ask.answer('hashes');
    const changed = entries.filter((e) => before[e.path] !== wanted.get(e.path));
    if (changed.length === 0) return `up to date (${entries.length} files)${note}`;
    const bytesTotal = changed.reduce((n, e) => n + e.bytes.length, 0);
    let bytesDone = 0;
    for (const [i, entry] of changed.entries()) {
      this.#progress(job, { files: i, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: `sending ${entry.path}` });
      watch.step = `the transfer of ${entry.path}`;
      const report = await this.#transfer(job, entry.path, entry.bytes, false, signal, algorithm);
      if (!report.ok) throw new JobFailure(`${entry.path}: ${report.error ?? 'transfer failed'} (nothing was committed)`);
      bytesDone += entry.bytes.length;
    }
    this.#progress(job, { files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'committing' });
    watch.step = "'commit'";
    await this.#commit(
      ask,
      changed.map((e) => e.path),
    );
    this.#progress(job, { files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'rebooting' });
    const since = Date.now();
    watch.expected = true;
    await ask.text('reboot');
    await this.#backOnline(job.device, since, signal);
    watch.expected = false;
    watch.step = "'hashes' after the reboot";
    this.#progress(job, { files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'verifying' });
    const after = await ask.answer('hashes');
    const wrong = entries.filter((e) => after[e.path] !== wanted.get(e.path)).map((e) => e.path);
    if (wrong.length > 0) throw new JobFailure(`after the update these files differ from the manifest: ${wrong.join(', ')}`);
    return `${changed.length} of ${entries.length} files sent (${bytesDone} bytes), committed, rebooted, verified${note}`;
  }

  async #firmware(job: Job, signal: AbortSignal, watch: DropWatch): Promise<string> {
    const spec = job.spec as { image: string };
    const ask = this.#commands(job, signal);
    const image = readLocal(spec.image);
    const { protocol, why } = await this.#protocol(job.device, signal);
    if (protocol === 1)
      throw new JobFailure(
        `${job.device} speaks OTA protocol 1 (${why}): firmware updates need protocol 2 (the mqttkit device library: partitions, keepversion); nothing was sent`,
      );
    watch.step = "'partitions'";
    const partitions = await ask.answer('partitions');
    if (partitions.count < 2) throw new JobFailure(`${job.device} has a single firmware partition: it cannot be updated over the air`);
    watch.step = "'getversion'";
    const old = await ask.answer('getversion');
    const before = old.firmware ?? undefined;
    this.#progress(job, { files: 0, filesTotal: 1, bytes: 0, bytesTotal: image.length, step: 'sending the image' });
    watch.step = 'the transfer of the firmware image';
    const report = await this.#transfer(job, FIRMWARE_TARGET, image, false, signal, chooseHash(old.hashes));
    if (!report.ok) throw new JobFailure(`firmware: ${report.error ?? 'transfer failed'}`);
    this.#progress(job, { files: 1, filesTotal: 1, bytes: image.length, bytesTotal: image.length, step: 'rebooting into the new firmware' });
    const since = Date.now();
    watch.expected = true; // from here, a device that does not come back is judged by [O-6] (rolled back)
    await ask.text('reboot');
    // [O-6] keepversion only for a device that came back, answers, and runs the new firmware.
    let now: Answer<'getversion'>;
    try {
      await this.#backOnline(job.device, since, signal);
      now = await ask.answer('getversion');
    } catch (error) {
      throw new JobFailure(`rolled back: ${(error as Error).message}; keepversion not sent`, 'rolled-back');
    }
    const after = now.firmware ?? undefined;
    const verdict = firmwareVerdict({
      before,
      after,
      runningBefore: label(old.partition),
      written: report.partition ?? undefined,
      running: label(now.partition),
    });
    if (!verdict.confirmed) throw new JobFailure(`rolled back: ${verdict.reason}; keepversion not sent`, 'rolled-back');
    await ask.text('keepversion');
    this.store.updateInfo(job.device, {
      ...(after === undefined ? {} : { firmware: after }),
      ...(label(now.partition) ? { partition: label(now.partition) } : {}),
    });
    return `firmware ${before} -> ${after}, confirmed (keepversion sent): ${verdict.reason}`;
  }

  /** [O-11] The OTA protocol a device speaks: settled by what the hub knows, else asked now (no answer: 1). */
  async #protocol(device: string, signal: AbortSignal): Promise<{ protocol: OtaProtocol; why: string }> {
    const settled = settledProtocol(this.store.info(device));
    if (settled) return settled;
    try {
      const version = await this.channel.answer(device, 'getversion', PROBE_TIMEOUT_MS, signal);
      const announced = version.ota === 1 || version.ota === 2 ? version.ota : undefined;
      this.store.updateInfo(device, { answersCommands: true, ...(announced ? { otaProtocol: announced } : {}) });
      return announced ? { protocol: announced, why: 'announced by the device' } : { protocol: 2, why: 'the device answers commands' };
    } catch (error) {
      if (signal.aborted) throw error;
      this.store.updateInfo(device, { answersCommands: false });
      return { protocol: 1, why: `the device did not answer 'getversion' within ${PROBE_TIMEOUT_MS / 1000} s, so it announces no OTA protocol` };
    }
  }

  /**
   * [O-11] A sync to a protocol-1 device: it cannot say its hashes, stage or commit, so every file of
   * the manifest goes with its own 4-field transfer, and the device reboots after each one.
   */
  async #seedSync(job: Job, entries: Array<{ path: string; bytes: Buffer }>, why: string, signal: AbortSignal): Promise<string> {
    const bytesTotal = entries.reduce((n, e) => n + e.bytes.length, 0);
    let bytesDone = 0;
    for (const [i, entry] of entries.entries()) {
      this.#progress(job, {
        files: i,
        filesTotal: entries.length,
        bytes: bytesDone,
        bytesTotal,
        step: `sending ${entry.path} (OTA protocol 1: one transfer and one reboot per file, ${i + 1} of ${entries.length})`,
      });
      try {
        await this.#seedTransfer(job, entry.path, entry.bytes, signal);
      } catch (error) {
        if (signal.aborted || !(error instanceof JobFailure)) throw error;
        throw new JobFailure(`${error.message}; ${i} of ${entries.length} files were put in place before it (protocol 1 has no commit)`);
      }
      bytesDone += entry.bytes.length;
    }
    this.#progress(job, { files: entries.length, filesTotal: entries.length, bytes: bytesDone, bytesTotal, step: 'done' });
    return `${entries.length} files sent one by one with the 4-field trigger (OTA protocol 1, ${why}), each followed by a reboot (${bytesDone} bytes); not verified: a protocol-1 device cannot report hashes`;
  }

  /**
   * [O-11] One seed-002 transfer: serve the bytes, send `host|port|file|sha1`; the device checks the hash,
   * puts the file in place and reboots. It reports nothing, so the proof is: it fetched the file and came back.
   */
  async #seedTransfer(job: Job, target: string, bytes: Buffer, signal: AbortSignal): Promise<void> {
    const route = await this.#routeTo(job.device, signal);
    signal.throwIfAborted();
    const server = await this.#serve(job, route, bytes);
    // A cancel closes the server at once (its `served` settles false). [O-9]
    const onAbort = () => server.close();
    signal.addEventListener('abort', onAbort, { once: true });
    // Watching from the trigger on: a quick device may be back before the bytes are counted as served;
    // the reboot timeout itself counts from the end of the transfer.
    const since = Date.now();
    let backEarly = false;
    const offs = [
      this.bus.on('device:announced', (d) => void (d.id === job.device && (backEarly = true))),
      this.bus.on('device:state', (d, previous) => void (d.id === job.device && d.state === 'online' && previous !== 'online' && (backEarly = true))),
    ];
    let error: string | null = null;
    try {
      signal.throwIfAborted();
      await this.link.publish(triggerTopic(job.device), seedTriggerMessage(route.hubAddress, server.port, target, sha1(bytes)), { qos: 1, retain: false });
      if (!(await server.served)) error = `the device did not fetch ${target} within ${Math.round(this.options.transferTimeoutMs / 1000)} s`;
    } catch (cause) {
      error = (cause as Error).message;
    } finally {
      signal.removeEventListener('abort', onAbort);
      server.close();
      // Synchronous hand-over from the early watch to the wait below: no event can fall between them.
      offs.forEach((off) => off());
      this.store.recordTransfer({
        jobId: job.id,
        device: job.device,
        file: target,
        bytes: bytes.length,
        ok: error === null && !signal.aborted,
        error,
        at: Date.now(),
      });
    }
    signal.throwIfAborted();
    if (error !== null) throw new JobFailure(`${target}: ${error}`);
    try {
      if (!backEarly) await this.#backOnline(job.device, since, signal, true);
    } catch (cause) {
      if (signal.aborted) throw cause;
      throw new JobFailure(`${target}: the device fetched it but ${(cause as Error).message} (a protocol-1 device reboots only when the hash matched)`);
    }
  }

  /** One pull transfer [O-1]: serve the bytes, trigger the device, wait for its report. */
  async #transfer(job: Job, target: string, bytes: Buffer, reboot: boolean, signal: AbortSignal, algorithm: HashAlgorithm = 'sha1'): Promise<TransferReport> {
    const route = await this.#routeTo(job.device, signal);
    signal.throwIfAborted();
    const hash = transferHash(bytes, algorithm); // [O-16]
    const server = await this.#serve(job, route, bytes);
    const waiting = this.channel.next(
      job.device,
      'OTA',
      this.options.transferTimeoutMs,
      (text) => {
        const report = parseReport(text);
        return report.ok && report.value.file === target;
      },
      signal,
    );
    let report: TransferReport;
    try {
      signal.throwIfAborted(); // cancelled while the server opened: trigger nothing
      await this.link.publish(triggerTopic(job.device), triggerMessage(route.hubAddress, server.port, target, hash, reboot), { qos: 1, retain: false });
      const parsed = parseReport(await waiting.answer);
      report = parsed.ok ? parsed.value : { file: target, ok: false, hash: null, error: parsed.error };
      // [O-16] the report's hash is in the trigger's form; a good report must name what was sent
      if (report.ok && typeof report.hash === 'string' && report.hash !== hash)
        report = { ...report, ok: false, error: `the device reports ${report.hash} for a file the hub sent as ${hash}` };
    } catch (error) {
      // [O-14] a drop is the job's to handle (it waits and resumes), not a failed transfer report
      if (signal.aborted && signal.reason instanceof DeviceDropped) {
        this.store.recordTransfer({
          jobId: job.id,
          device: job.device,
          file: target,
          bytes: bytes.length,
          ok: false,
          error: `interrupted: ${signal.reason.message}`,
          at: Date.now(),
        });
        throw signal.reason;
      }
      report = { file: target, ok: false, hash: null, error: (error as Error).message };
    } finally {
      waiting.cancel();
      server.close();
    }
    this.store.recordTransfer({ jobId: job.id, device: job.device, file: target, bytes: bytes.length, ok: report.ok, error: report.error, at: Date.now() });
    return report;
  }

  /** [O-1] The one-shot pull server of a transfer: it serves `bytes` once, to the device's address only. */
  #serve(job: Job, route: DeviceRoute, bytes: Buffer): ReturnType<typeof servePull> {
    return servePull({
      bytes,
      host: route.hubAddress,
      allowedAddress: route.deviceAddress,
      timeoutMs: this.options.transferTimeoutMs,
      log: this.log,
      deviceId: job.device,
    });
  }

  async #routeTo(device: string, signal: AbortSignal): Promise<DeviceRoute> {
    const known = this.route(device);
    if (known) return known;
    // An external broker does not tell us the device's address: the device does, after `open`. [O-4]
    // Both waits are awaited together and ended together, whichever fails first. [O-9]
    const timeout = this.options.commandTimeoutMs;
    const waiting = this.channel.next(device, 'OTA', timeout, (text) => text.includes('"address"'), signal);
    let text: string;
    try {
      [, text] = await Promise.all([this.channel.command(device, 'open', timeout, signal), waiting.answer]);
    } catch (error) {
      if (signal.aborted) throw error;
      throw new JobFailure(
        `cannot reach ${device}: it is marked online but did not answer 'open' within ${Math.round(timeout / 1000)} s (is it still connected, and does it run the mqttkit device library?): ${(error as Error).message}`,
      );
    } finally {
      waiting.cancel();
    }
    const opened = parseAnswer(device, 'open', text);
    if (!opened.ok) throw new JobFailure(`cannot route a transfer to ${device}: the device did not say its address: ${opened.error}`);
    if (!this.options.hubAddress) throw new JobFailure(`cannot route a transfer to ${device}: set --ota-host to the hub's address`);
    return { deviceAddress: opened.value.address, hubAddress: this.options.hubAddress };
  }

  /**
   * Waits for a live `$state online` after `since` (the device rebooted and reconnected); with
   * `anySign`, also for its return to `online` by any live message (seed 002's firmware says no `$state`).
   */
  #backOnline(device: string, since: number, signal: AbortSignal, anySign = false): Promise<void> {
    return new Promise((resolve, reject) => {
      const offs: Array<() => void> = [];
      const end = () => {
        clearTimeout(timer);
        offs.forEach((off) => off());
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => (end(), reject(signal.reason));
      const timer = setTimeout(
        () => (end(), reject(new Error(`${device} did not come back online within ${Math.round(this.options.rebootTimeoutMs / 1000)} s`))),
        this.options.rebootTimeoutMs,
      );
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      offs.push(
        this.bus.on('device:announced', (d) => {
          if (d.id === device && Date.now() > since) end(), resolve();
        }),
        this.bus.on('device:state', (d, previous) => {
          if (anySign && d.id === device && d.state === 'online' && previous !== 'online' && Date.now() > since) end(), resolve();
        }),
      );
    });
  }

  /** Canary devices first; then the rest, K at a time; stop at the first failure or a cancel. [O-8] */
  async #driveRollout(id: number): Promise<void> {
    const rollout = this.store.rollout(id);
    if (!rollout) return;
    const { devices, canary, concurrency, manifest } = rollout.spec;
    const latest = () => new Map(this.store.rolloutJobs(id).map((j) => [j.device, j]));
    const finished = (j: Job | undefined) => j !== undefined && FINISHED.includes(j.state);
    const failedJob = () => [...latest().values()].find((j) => finished(j) && j.state !== 'succeeded');
    // `mqttkit ota cancel --rollout` ends it in the store: from then on, nothing new starts.
    // (or the hub stops: the rollout is picked up again at the next start)
    const stopped = () => this.#stopped || this.store.rollout(id)?.state !== 'running';
    const waitFor = async (ids: string[]) => {
      while (!stopped() && !ids.every((d) => finished(latest().get(d)))) await this.#storeChange();
    };
    const launch = (device: string) => {
      const job = latest().get(device);
      if (!job || (finished(job) && job.state !== 'succeeded')) this.store.addJob('sync', device, { manifest }, id);
    };
    const end = (failure: Job, untouched: number, canaryPhase: boolean) => {
      const what = `${canaryPhase ? 'canary ' : ''}${failure.device}`;
      const rest = `${canaryPhase ? 'the other ' : ''}${untouched} devices were not touched`;
      if (failure.state === 'cancelled')
        this.store.finishRollout(id, 'cancelled', `${what}'s job #${failure.id} was ${failure.message ?? 'cancelled'}; ${rest}`);
      else this.store.finishRollout(id, 'failed', `${what} failed (${failure.message}); ${rest}`);
    };

    const canaries = devices.slice(0, canary);
    canaries.forEach(launch);
    await waitFor(canaries);
    if (stopped()) return;
    let failure = failedJob();
    if (failure) return end(failure, devices.length - canaries.length, true);
    const rest = devices.slice(canary);
    const inFlight = new Set<string>();
    for (const device of rest) {
      if (latest().get(device)?.state === 'succeeded') continue;
      while (inFlight.size >= concurrency && !stopped()) {
        await this.#storeChange();
        for (const d of inFlight) if (finished(latest().get(d))) inFlight.delete(d);
      }
      if (stopped() || (failure = failedJob())) break;
      launch(device);
      inFlight.add(device);
    }
    await waitFor([...inFlight]);
    if (stopped()) return;
    failure = failedJob();
    if (failure) return end(failure, rest.filter((d) => !latest().has(d)).length, false);
    this.store.finishRollout(id, 'succeeded', `${devices.length} devices updated`);
  }

  /**
   * [P-21] Whether a job may start: the device is listening. Embedded broker: its current connection
   * subscribed to cmnd/<id>/OTA or <id>/OTA, and it is `online`, or `sleeping` with its connection
   * still open ([O-7]: it said `sleeping` first and then saw `pending`). External broker: it is
   * `online` and the questions of its session are over (answered, or given up after the retries).
   */
  #listens(id: string): boolean {
    const state = this.registry.get(id)?.state;
    const listening = this.options.listening;
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
  #observe(device: DeviceRecord): void {
    const route = this.route(device.id);
    // Written only when it changed: this runs on every change of what a device listens to.
    if (route && this.store.info(device.id).address !== route.deviceAddress) this.store.updateInfo(device.id, { address: route.deviceAddress });
    const session = this.#sessions.get(device.id);
    const listening = this.options.listening;
    if (!session || session.asked || this.#running.has(device.id) || device.state !== 'online') return;
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
            if (attempt >= tries || this.#stopped || this.#sessions.get(device.id) !== session) throw error;
            await sleep(PROBE_RETRY_MS * 2 ** (attempt - 1));
            if (this.#sessions.get(device.id) !== session || this.registry.get(device.id)?.state !== 'online') throw error;
          }
        }
      } catch {
        if (this.store.info(device.id).answersCommands === undefined) this.store.updateInfo(device.id, { answersCommands: false });
      } finally {
        session.settled = true;
        this.#tick();
      }
    })().catch((error: unknown) => this.log.warn({ device: device.id, err: (error as Error).message }, 'cannot record what the device says about itself'));
  }

  /** One round of questions; the session's first `getversion` goes without a request id ([O-12]: the hub cannot know yet). */
  async #ask(id: string): Promise<void> {
    const version = await this.channel.answer(id, 'getversion', PROBE_TIMEOUT_MS, undefined, true);
    this.store.updateInfo(id, {
      answersCommands: true,
      ...(typeof version.ota === 'number' ? { otaProtocol: version.ota } : {}),
      ...(label(version.partition) ? { partition: label(version.partition) } : {}),
    });
    const lastReboot = await this.channel.command(id, 'msg_reboot', PROBE_TIMEOUT_MS);
    const lastException = await this.channel.command(id, 'msg_exception', PROBE_TIMEOUT_MS);
    this.store.updateInfo(id, { firmware: version.firmware ?? undefined, app: version.app ?? undefined, lastReboot, lastException });
  }
}

function readLocal(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new JobFailure(`cannot read ${file}: ${(error as Error).message}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a device has to answer the hub's questions about itself (`getversion`, …). */
const PROBE_TIMEOUT_MS = 3000;
/** [P-21] External broker: how often the questions are asked in one session, and the first pause between tries (doubled each time). */
const PROBE_TRIES = 4;
const PROBE_RETRY_MS = 1000;

/** A partition label from a device's JSON, if it is one. */
/** [O-21] Labels are opaque: compared for equality, never parsed. */
const label = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value.slice(0, 64) : undefined);

/**
 * [O-6] Did the device come back on the new firmware? By partition when the device says which one it
 * runs: the one the image was written to (or, without the written label, another than before). Only a
 * device that says no partition is judged by its version string, which a rebuild on the same release
 * does not change.
 */
export function firmwareVerdict(facts: {
  before?: string | undefined;
  after?: string | undefined;
  runningBefore?: string | undefined;
  written?: string | undefined;
  running?: string | undefined;
}): { confirmed: boolean; reason: string } {
  const { before, after, runningBefore, written, running } = facts;
  if (running && written) {
    return running === written
      ? { confirmed: true, reason: `it runs from partition ${running}, where the image was written` }
      : {
          confirmed: false,
          reason: `the image was written to partition ${written} but the device runs from ${running}: it came back on the old version ${after}`,
        };
  }
  if (running && runningBefore) {
    return running !== runningBefore
      ? { confirmed: true, reason: `it runs from partition ${running}, no longer from ${runningBefore}` }
      : { confirmed: false, reason: `the device still runs from partition ${running}: it came back on the old version ${after}` };
  }
  return after === before
    ? { confirmed: false, reason: `the device reports no partition, and it came back on the old version ${before}` }
    : { confirmed: true, reason: `the device reports no partition; judged by its version string` };
}
