/**
 * One run of one job, from its start to its end state: the kind's steps (jobs/), run again from the
 * first when the device drops mid-job and comes back within the job's deadline [O-14]; every failure
 * becomes the job's end with a message, and a job cut short by the hub's stop runs again at the next
 * start. [O-9]
 */
import type { Job, JobState } from '../store/ota-store.js';
import { type DropWatch, jobContext, type OtaParts } from './job-context.js';
import { DeviceDropped, JobFailure } from './job-errors.js';
import { JobClock } from './job-timing.js';
import { JOB_KINDS } from './jobs/index.js';

/** What a run needs of the scheduler around it (handed in: the runner does not import it). */
export interface RunHooks {
  /** [P-21] Whether the device listens: a job may start (or go on after a drop). */
  listens(device: string): boolean;
  /** Calls `check` at each scheduling tick (a state change, a SUBSCRIBE, a session's questions over) until the returned function is called. */
  atEachTick(check: () => void): () => void;
  /** The hub is stopping: the job stays `running` in the store and runs again at the next start. */
  stopped(): boolean;
}

/** Runs a started job to its end state in the store (unless the hub stopped or a cancel ended it first). */
export async function runJob(parts: OtaParts, hooks: RunHooks, job: Job, signal: AbortSignal): Promise<void> {
  const log = parts.log.child({ device: job.device, job: job.id });
  log.info(`OTA ${job.kind} started`);
  let state: JobState;
  let message: string;
  const clock = new JobClock();
  try {
    const steps = JOB_KINDS[job.kind];
    if (!steps) throw new JobFailure(`'${job.kind}' is not a job kind`);
    message = await resuming(parts, hooks, job, signal, clock, (attempt, watch) => steps(jobContext(parts, job, attempt, watch, clock)));
    state = 'succeeded';
  } catch (error) {
    // Aborted (cancelled, device removed): that is the job's end, whatever the step in flight made of it.
    const cause = signal.aborted ? (signal.reason as unknown) : error;
    state = cause instanceof JobFailure ? cause.state : 'failed';
    message = cause instanceof Error ? cause.message : String(cause);
  }
  if (hooks.stopped()) return log.info(`OTA ${job.kind} interrupted by the hub stopping; it runs again at the next start`);
  // [O-26] Where its time went, in its progress as it ends (a job that got to no step has none).
  await parts.store.progressSaved(job.id);
  const last = (await parts.store.job(job.id))?.progress;
  if (last) await parts.store.setProgress(job.id, { ...last, timing: clock.timing() });
  // A job cancelled meanwhile keeps its `cancelled`: the first end wins.
  if (await parts.store.finishJob(job.id, state, message)) {
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
async function resuming(
  parts: OtaParts,
  hooks: RunHooks,
  job: Job,
  signal: AbortSignal,
  clock: JobClock,
  run: (attempt: AbortSignal, watch: DropWatch) => Promise<string>,
): Promise<string> {
  const deadline = Date.now() + parts.options.jobDeadlineMs;
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
    const off = parts.bus.on('device:state', (d) => {
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
          : !watch.expected && parts.registry.get(job.device)?.state !== 'online'
            ? new DeviceDropped(watch.step)
            : undefined;
      if (!dropped) throw error;
      drops++;
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      parts.log.warn({ device: job.device, job: job.id }, `${job.device} left during ${dropped.step}: the job waits up to ${left} s for it to come back`);
      const last = (await parts.store.job(job.id))?.progress;
      await parts.store.setProgress(job.id, {
        files: last?.files ?? 0,
        filesTotal: last?.filesTotal ?? 0,
        bytes: last?.bytes ?? 0,
        bytesTotal: last?.bytesTotal ?? 0,
        step: `waiting for ${job.device} to come back (it left during ${dropped.step})`,
      });
      await clock.device('away mid-job, until it is back', comeBack(parts, hooks, job.device, deadline, dropped.step, signal));
      parts.log.info({ device: job.device, job: job.id }, `${job.device} is back: the job starts its steps again`);
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
function comeBack(parts: OtaParts, hooks: RunHooks, device: string, deadline: number, step: string, signal: AbortSignal): Promise<void> {
  const { jobDeadlineMs } = parts.options;
  return new Promise((resolve, reject) => {
    const end = () => {
      clearTimeout(timer);
      stopChecking();
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => (end(), reject(signal.reason));
    const back = () => parts.registry.get(device)?.state === 'online' && hooks.listens(device);
    // Every sign (a state change, its SUBSCRIBE, its session's questions over) ticks the scheduler, which checks.
    const check = () => back() && (end(), resolve());
    const stopChecking = hooks.atEachTick(check);
    const minutes = Math.round(jobDeadlineMs / 60_000);
    const timer = setTimeout(
      () => (
        end(),
        reject(
          new JobFailure(
            `${device} left during ${step} and did not come back within the job's deadline (${minutes >= 1 ? `${minutes} min` : `${Math.round(jobDeadlineMs / 1000)} s`} from its start, --ota-job-deadline)`,
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
