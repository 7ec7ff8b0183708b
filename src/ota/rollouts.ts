/**
 * [O-8] Fleet rollouts: a sync job per device, canary devices first; then the rest, K at a time;
 * stopped at the first failure or a cancel. A rollout waits on store changes (a job of its own ending,
 * its own cancel), never on a timer.
 */
import { FINISHED, type Job, type OtaStore } from '../store/ota-store.js';

export interface RolloutHooks {
  /** The hub is stopping: the rollout is picked up again at the next start. */
  stopped(): boolean;
  /** Resolves at the next job or rollout change in the store (or the hub's stop). */
  storeChange(): Promise<void>;
}

/** Drives a running rollout to its end state in the store (unless it is cancelled or the hub stops first). */
export async function driveRollout(store: OtaStore, hooks: RolloutHooks, id: number): Promise<void> {
  const rollout = await store.rollout(id);
  if (!rollout) return;
  const { devices, canary, concurrency, manifest } = rollout.spec;
  const latest = async () => new Map((await store.rolloutJobs(id)).map((j) => [j.device, j]));
  const finished = (j: Job | undefined) => j !== undefined && FINISHED.includes(j.state);
  const failedJob = async () => [...(await latest()).values()].find((j) => finished(j) && j.state !== 'succeeded');
  // `mqttkit ota cancel --rollout` ends it in the store: from then on, nothing new starts.
  // (or the hub stops: the rollout is picked up again at the next start)
  const stopped = async () => hooks.stopped() || (await store.rollout(id))?.state !== 'running';
  // The wait is taken before the store is read: a change while it is read is not missed.
  const waitFor = async (ids: string[]) => {
    for (;;) {
      const change = hooks.storeChange();
      if (await stopped()) return;
      const jobs = await latest();
      if (ids.every((d) => finished(jobs.get(d)))) return;
      await change;
    }
  };
  const launch = async (device: string) => {
    const job = (await latest()).get(device);
    if (!job || (finished(job) && job.state !== 'succeeded')) await store.addJob('sync', device, { manifest }, id);
  };
  const end = async (failure: Job, untouched: number, canaryPhase: boolean) => {
    const what = `${canaryPhase ? 'canary ' : ''}${failure.device}`;
    const rest = `${canaryPhase ? 'the other ' : ''}${untouched} devices were not touched`;
    if (failure.state === 'cancelled')
      await store.finishRollout(id, 'cancelled', `${what}'s job #${failure.id} was ${failure.message ?? 'cancelled'}; ${rest}`);
    else await store.finishRollout(id, 'failed', `${what} failed (${failure.message}); ${rest}`);
  };

  const canaries = devices.slice(0, canary);
  for (const device of canaries) await launch(device);
  await waitFor(canaries);
  if (await stopped()) return;
  let failure = await failedJob();
  if (failure) return end(failure, devices.length - canaries.length, true);
  const rest = devices.slice(canary);
  const inFlight = new Set<string>();
  for (const device of rest) {
    if ((await latest()).get(device)?.state === 'succeeded') continue;
    for (;;) {
      const change = hooks.storeChange();
      const jobs = await latest();
      for (const d of inFlight) if (finished(jobs.get(d))) inFlight.delete(d);
      if (inFlight.size < concurrency || (await stopped())) break;
      await change;
    }
    if ((await stopped()) || (failure = await failedJob())) break;
    await launch(device);
    inFlight.add(device);
  }
  await waitFor([...inFlight]);
  if (await stopped()) return;
  failure = await failedJob();
  const known = await latest();
  if (failure) return end(failure, rest.filter((d) => !known.has(d)).length, false);
  await store.finishRollout(id, 'succeeded', `${devices.length} devices updated`);
}
