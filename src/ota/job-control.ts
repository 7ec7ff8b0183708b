/**
 * Ending jobs from outside their run: cancelling a job or a rollout, and the upload folders that go
 * with an ended job. [O-9] The running hub calls these through OtaScheduler (which also stops the work
 * in flight); the CLI calls them on the database directly when no hub runs.
 */
import { FINISHED, type Job, type OtaStore } from '../store/ota-store.js';
import { jobUploadFolders, removeJobUploads } from './uploads.js';

export interface CancelOutcome {
  outcome: 'cancelled' | 'finished' | 'unknown';
  /** One sentence for the person who asked. */
  message: string;
  job?: Job;
}

export interface RolloutCancelOutcome {
  outcome: 'cancelled' | 'finished' | 'unknown';
  message: string;
  jobs: CancelOutcome[];
}

export const describeJob = (job: Pick<Job, 'id' | 'kind' | 'device'>) => `job #${job.id} (${job.kind} for ${job.device})`;

/** Upload folders still needed: those of unfinished jobs and of running rollouts. */
export async function neededUploads(store: OtaStore, root: string): Promise<Set<string>> {
  const specs: Array<Record<string, unknown>> = (await store.unfinishedJobs()).map((j) => j.spec);
  for (const id of await store.runningRollouts()) specs.push((await store.rollout(id))?.spec ?? {});
  return new Set(specs.flatMap((spec) => jobUploadFolders(root, spec as Record<string, unknown>)));
}

/** Removes an ended job's upload folder (if it has one and no unfinished job shares it). */
export async function releaseUploads(store: OtaStore, root: string, job: Job): Promise<string[]> {
  return removeJobUploads(root, job.spec, await neededUploads(store, root));
}

/** Ends a queued or running job as `cancelled` in the store; says so, or why not. */
export async function cancelJobInStore(store: OtaStore, root: string, id: number, by: string): Promise<CancelOutcome> {
  const job = await store.job(id);
  if (!job) return { outcome: 'unknown', message: `there is no job #${id} (see 'mqttkit ota jobs')` };
  if (!(await store.finishJob(id, 'cancelled', `cancelled by ${by}`))) {
    const ended = (await store.job(id))!;
    return {
      outcome: 'finished',
      job: ended,
      message: `${describeJob(ended)} had already ended: ${ended.state}${ended.message ? ` (${ended.message})` : ''}; nothing to cancel`,
    };
  }
  try {
    await releaseUploads(store, root, job);
  } catch {
    // Left for the sweep at the next start: the cancel itself happened.
  }
  return {
    outcome: 'cancelled',
    job: (await store.job(id))!,
    message: `${describeJob(job)} cancelled${job.state === 'running' ? ' while it ran' : ' before it started'}`,
  };
}

/** Stops a running rollout (no device is started any more) and cancels its unfinished jobs. */
export async function cancelRolloutInStore(
  store: OtaStore,
  id: number,
  by: string,
  cancelJob: (jobId: number) => Promise<CancelOutcome>,
): Promise<RolloutCancelOutcome> {
  const rollout = await store.rollout(id);
  if (!rollout) return { outcome: 'unknown', message: `there is no rollout #${id}`, jobs: [] };
  const stopped = await store.finishRollout(id, 'cancelled', `cancelled by ${by}`);
  const jobs: CancelOutcome[] = [];
  for (const j of await store.rolloutJobs(id)) if (!FINISHED.includes(j.state)) jobs.push(await cancelJob(j.id));
  if (!stopped && jobs.length === 0) {
    const ended = (await store.rollout(id))!;
    return {
      outcome: 'finished',
      message: `rollout #${id} had already ended: ${ended.state}${ended.message ? ` (${ended.message})` : ''}; nothing to cancel`,
      jobs,
    };
  }
  const untouched = rollout.spec.devices.length - (await store.rolloutJobs(id)).length;
  return { outcome: 'cancelled', message: `rollout #${id} cancelled: ${jobs.length} unfinished job(s) cancelled, ${untouched} device(s) not started`, jobs };
}
