/**
 * OTA jobs through the running hub, queued as `mqttkit ota push/sync` queue them [O-1] [O-5], and a
 * sleep/wake cycle with a job waiting [O-7].
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FINISHED, type Job, type JobKind } from '../store/ota-store.js';
import type { Context } from './context.js';
import { untilOnline } from './state.js';
import { STAGED_FILE } from './transfers.js';

function localFile(ctx: Context, name: string): string {
  const path = join(ctx.workDir, name);
  writeFileSync(path, `mqttkit conformance ${name} ${randomBytes(8).toString('hex')}\n`);
  return path;
}

/** Follows a job to its end; one still unfinished after `ms` is cancelled (the hub stops it) and returned as it was. */
async function runJob(ctx: Context, kind: JobKind, spec: Record<string, unknown>, ms: number): Promise<Job> {
  const id = await ctx.jobs.queue(kind, ctx.id, spec);
  ctx.say(`job #${id}: ${kind} queued`);
  const job = await ctx.jobs.finished(id, ms);
  if (FINISHED.includes(job.state)) return job;
  await ctx.jobs.cancel(id, 'mqttkit conformance (timed out)');
  return { ...job, message: `not finished within ${ms / 1000} s (${job.state}${job.progress ? `, at ${job.progress.step}` : ''}); cancelled` };
}

const outcome = (job: Job) => (job.state === 'succeeded' ? undefined : `job #${job.id} ${job.state}: ${job.message ?? ''}`);

export async function checkJobs(ctx: Context): Promise<void> {
  const { results } = ctx;
  if (!(await untilOnline(ctx, 'OTA jobs'))) {
    results.skip('O-1.push', 'not tested: the device is not online');
    results.skip('O-5.sync', 'not tested: the device is not online');
    return;
  }
  const name = 'mqttkit-conformance-push.txt';
  const push = await runJob(ctx, 'push', { file: localFile(ctx, name), as: name, reboot: true }, ctx.timeoutMs * 2);
  results.check('O-1.push', outcome(push), push.message ?? '');

  await untilOnline(ctx, 'the sync after the push');
  const manifest = join(ctx.workDir, 'manifest.json');
  // The second file goes into a folder the device does not have yet: the device makes it [O-24].
  writeFileSync(manifest, JSON.stringify({ files: { [STAGED_FILE]: localFile(ctx, 'a.txt'), 'mqttkit-conformance/b.txt': localFile(ctx, 'b.txt') } }));
  const sync = await runJob(ctx, 'sync', { manifest }, ctx.timeoutMs * 3);
  results.check('O-5.sync', outcome(sync), sync.message ?? '');
}

/**
 * [O-7] Waits for the device to say `sleeping`, queues a job while it sleeps, and expects the job to
 * succeed when it wakes, before it says `sleeping` again (it stays awake while `pending` is 1).
 */
export async function checkSleep(ctx: Context): Promise<void> {
  const { probe, id, results } = ctx;
  const topic = `HomeKit/${id}/$state`;
  ctx.say(`waiting up to ${ctx.sleepWaitMs / 1000} s for ${id} to sleep`);
  const asleep = await probe.waitFor((m) => m.topic === topic && m.text.startsWith('sleeping'), ctx.sleepWaitMs, probe.mark);
  if (!asleep)
    return results.skip(
      'O-7',
      `not tested: the device did not publish $state sleeping within ${ctx.sleepWaitMs / 1000} s (a device that sleeps later: a longer --sleep-wait; one that never sleeps: --sleep-wait 0 skips the wait)`,
    );
  const seconds = Number(asleep.text.split(' ')[1]) || 0;
  const name = 'mqttkit-conformance-sleep.txt';
  const job = await runJob(ctx, 'push', { file: localFile(ctx, name), as: name, reboot: false }, seconds * 1000 + ctx.timeoutMs * 2);
  const woke = probe.log.find((m) => m.n > asleep.n && m.topic === topic && m.text === 'online');
  if (!woke)
    return results.fail('O-7', `the device said '${asleep.text}' and did not come back online within ${(seconds * 1000 + ctx.timeoutMs * 2) / 1000} s`);
  const slept = probe.log.find((m) => m.n > woke.n && m.topic === topic && m.text.startsWith('sleeping') && (job.finishedAt === null || m.at < job.finishedAt));
  if (slept)
    return results.fail(
      'O-7',
      `the device went to sleep again ('${slept.text}') while job #${job.id} waited for it: subscribe to cmnd/${id}/OTA/pending and stay awake while it is 1`,
    );
  results.check('O-7', outcome(job), `job #${job.id} served after the wake`);
}
