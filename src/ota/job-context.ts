/**
 * What a job's steps are handed: the hub's parts they may use (`OtaParts`) and one run of one job
 * (`JobContext`). A job kind gets everything through these, never by importing the scheduler.
 */
import type { ListeningSource } from '../broker/device-listening.js';
import type { HubLink } from '../broker/hub-link.js';
import type { EventBus } from '../core/events.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { Logger } from '../log/logger.js';
import type { Job, JobProgress, OtaStore } from '../store/ota-store.js';
import type { Answer, AnswerCommand } from './answers.js';
import type { DeviceChannel } from './device-channel.js';
import type { JobClock } from './job-timing.js';

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

/** The hub's parts the OTA feature works with. */
export interface OtaParts {
  readonly link: HubLink;
  readonly channel: DeviceChannel;
  readonly store: OtaStore;
  readonly registry: DeviceRegistry;
  readonly bus: EventBus;
  readonly log: Logger;
  /** Where a device connects from and reaches the hub, when the (embedded) broker knows. */
  readonly route: (deviceId: string) => DeviceRoute | undefined;
  readonly options: OtaOptions;
}

/**
 * [O-14] One run of a job's steps: `step` names what it does now (for the message when the device
 * drops), `expected` is set while the device is meant to go away (a reboot), so leaving is no drop.
 */
export interface DropWatch {
  step: string;
  expected: boolean;
}

/** A job's command channel to its device (with the command timeout and the run's abort). */
export interface Ask {
  text(command: string): Promise<string>;
  /** A command with a JSON answer, checked against its schema (answers.ts). */
  answer<C extends AnswerCommand>(command: C): Promise<Answer<C>>;
}

/** One run of one job, as its kind's steps see it. */
export interface JobContext {
  readonly parts: OtaParts;
  readonly job: Job;
  /** Aborted when the job is cancelled, its device removed, or the device drops (the run starts again). */
  readonly signal: AbortSignal;
  readonly watch: DropWatch;
  /** The device's commands: each answer's wait is the device's time on the job's clock. */
  readonly ask: Ask;
  /** [O-26] Where the job's time goes (one clock for all the runs of a job). */
  readonly clock: JobClock;
  /** Records where the job is (the API's and the CLI's progress). */
  progress(progress: JobProgress): void;
  /**
   * [O-26] A transfer's bytes as they move: `sent` bytes of the file on its way are added to the
   * progress last recorded, at most every PROGRESS_EVERY_MS (the first at once).
   */
  moved(sent: number): void;
}

/** [O-26] How often a transfer's bytes reach the job's progress (a store write each): at most 10 times a second. */
export const PROGRESS_EVERY_MS = 100;

/** The context of one run: the device's commands with the command timeout and the run's abort. */
export function jobContext(parts: OtaParts, job: Job, signal: AbortSignal, watch: DropWatch, clock: JobClock): JobContext {
  const timeout = parts.options.commandTimeoutMs;
  let base: JobProgress | undefined;
  let movedAt = Number.NEGATIVE_INFINITY;
  // Progress is shown, not needed to run: a write the store refuses is logged and the job goes on.
  const unsaved = (error: unknown) => parts.log.debug({ job: job.id, err: (error as Error).message }, "cannot save the job's progress");
  return {
    parts,
    job,
    signal,
    watch,
    clock,
    ask: {
      text: (command: string) => clock.device(`'${command}'`, parts.channel.command(job.device, command, timeout, signal)),
      answer: <C extends AnswerCommand>(command: C) => clock.device(`'${command}'`, parts.channel.answer(job.device, command, timeout, signal)),
    },
    progress: (progress) => {
      base = progress;
      movedAt = Number.NEGATIVE_INFINITY;
      parts.store.setProgress(job.id, progress).catch((error: unknown) => unsaved(error));
    },
    moved: (sent) => {
      const now = performance.now();
      if (!base || now - movedAt < PROGRESS_EVERY_MS) return;
      movedAt = now;
      parts.store.setProgress(job.id, { ...base, bytes: base.bytes + sent }).catch((error: unknown) => unsaved(error));
    },
  };
}
