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
  const rollout = store.rollout(id);
  if (!rollout) return;
  const { devices, canary, concurrency, manifest } = rollout.spec;
  const latest = () => new Map(store.rolloutJobs(id).map((j) => [j.device, j]));
  const finished = (j: Job | undefined) => j !== undefined && FINISHED.includes(j.state);
  const failedJob = () => [...latest().values()].find((j) => finished(j) && j.state !== 'succeeded');
  // `mqttkit ota cancel --rollout` ends it in the store: from then on, nothing new starts.
  // (or the hub stops: the rollout is picked up again at the next start)
  const stopped = () => hooks.stopped() || store.rollout(id)?.state !== 'running';
  const waitFor = async (ids: string[]) => {
    while (!stopped() && !ids.every((d) => finished(latest().get(d)))) await hooks.storeChange();
  };
  const launch = (device: string) => {
    const job = latest().get(device);
    if (!job || (finished(job) && job.state !== 'succeeded')) store.addJob('sync', device, { manifest }, id);
  };
  const end = (failure: Job, untouched: number, canaryPhase: boolean) => {
    const what = `${canaryPhase ? 'canary ' : ''}${failure.device}`;
    const rest = `${canaryPhase ? 'the other ' : ''}${untouched} devices were not touched`;
    if (failure.state === 'cancelled') store.finishRollout(id, 'cancelled', `${what}'s job #${failure.id} was ${failure.message ?? 'cancelled'}; ${rest}`);
    else store.finishRollout(id, 'failed', `${what} failed (${failure.message}); ${rest}`);
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
      await hooks.storeChange();
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
  store.finishRollout(id, 'succeeded', `${devices.length} devices updated`);
}
