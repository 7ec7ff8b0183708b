/**
 * The steps the job kinds share: reading a job's local file, asking which protocol a device speaks
 * [O-11], the first steps of a protocol-2 job (`getversion`, `discard`) [O-13] [O-16], the commit held
 * to what was sent [O-13], and the wait for a rebooted device to be back.
 */
import { readFileSync } from 'node:fs';
import { parseAnswer } from './answers.js';
import type { Ask, JobContext, OtaParts } from './job-context.js';
import { JobFailure } from './job-errors.js';
import { chooseHash, commitDifference, deviceError, type HashAlgorithm, type OtaProtocol, settledProtocol } from './protocol.js';

/** How long a device has to answer the hub's questions about itself (`getversion`, …). */
export const PROBE_TIMEOUT_MS = 3000;

/** A job's local file (an upload, or a path given to the CLI); one it cannot read fails the job, naming it. */
export function readLocal(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new JobFailure(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/** [O-11] The OTA protocol a device speaks: settled by what the hub knows, else asked now (no answer: 1). */
export async function otaProtocol(ctx: JobContext): Promise<{ protocol: OtaProtocol; why: string }> {
  const { store, channel } = ctx.parts;
  const device = ctx.job.device;
  const settled = settledProtocol(await store.info(device));
  if (settled) return settled;
  try {
    const version = await ctx.clock.device("'getversion'", channel.answer(device, 'getversion', PROBE_TIMEOUT_MS, ctx.signal));
    const announced = version.ota === 1 || version.ota === 2 ? version.ota : undefined;
    await store.updateInfo(device, { answersCommands: true, ...(announced ? { otaProtocol: announced } : {}) });
    return announced ? { protocol: announced, why: 'announced by the device' } : { protocol: 2, why: 'the device answers commands' };
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    await store.updateInfo(device, { answersCommands: false });
    return { protocol: 1, why: `the device did not answer 'getversion' within ${PROBE_TIMEOUT_MS / 1000} s, so it announces no OTA protocol` };
  }
}

/**
 * [O-13] [O-16] The first steps of every protocol-2 push or sync: `getversion` (which hashes the device
 * checks), then `discard` (what earlier jobs staged must not go live with this one). A device whose
 * library predates `discard` answers "unknown command": the job goes on, and its commit list is checked.
 */
export async function prepare(ctx: JobContext): Promise<{ algorithm: HashAlgorithm; note: string }> {
  const { job, watch, signal, parts } = ctx;
  watch.step = "'getversion'";
  // [O-16] No usable answer (no JSON: a firmware that answers getversion its own way) means SHA-1, the
  // hash every device checks; the job goes on. A device that left is noticed by the next step.
  let algorithm: HashAlgorithm = 'sha1';
  try {
    algorithm = chooseHash((await ctx.clock.device("'getversion'", parts.channel.answer(job.device, 'getversion', PROBE_TIMEOUT_MS, signal))).hashes);
  } catch (error) {
    if (signal.aborted) throw error;
    parts.log.info({ device: job.device, job: job.id }, `${job.device} gave no JSON getversion answer: the job uses SHA-1`);
  }
  watch.step = "'discard'";
  // An mqttkit library from before `discard` answers "unknown command": nothing was discarded ([O-13] rule 4).
  const discarded = parseAnswer(job.device, 'discard', await ctx.ask.text('discard'));
  const gone = discarded.ok ? discarded.value.discarded : [];
  // a device's list: at most 10 names go into the log and the job's message
  if (gone.length > 0)
    parts.log.info({ device: job.device, job: job.id, discarded: gone.slice(0, 10), count: gone.length }, 'discarded files staged by an earlier job');
  const note = gone.length
    ? `; discarded first what an earlier job had left: ${gone
        .slice(0, 10)
        .map((p) => p.slice(0, 200))
        .join(', ')}${gone.length > 10 ? ', …' : ''}`
    : '';
  return { algorithm, note };
}

/** [O-13] `commit`, held to exactly the files the job sent. */
export async function commit(ask: Ask, sent: string[]): Promise<void> {
  const committed = await ask.answer('commit');
  if (committed.error) throw new JobFailure(deviceError(committed.error));
  const difference = commitDifference(sent, committed.committed);
  if (difference) throw new JobFailure(difference);
}

/** The device's reboot, until it is back (`since`: before the step that reboots it): the device's time on the job's clock. */
export function rebooted(ctx: JobContext, since: number, anySign = false): Promise<void> {
  return ctx.clock.device('the reboot, until it is back', backOnline(ctx.parts, ctx.job.device, since, ctx.signal, anySign));
}

/**
 * Waits for a live `$state online` after `since` (the device rebooted and reconnected); with
 * `anySign`, also for its return to `online` by any live message (seed 002's firmware says no `$state`).
 */
export function backOnline(parts: Pick<OtaParts, 'bus' | 'options'>, device: string, since: number, signal: AbortSignal, anySign = false): Promise<void> {
  const { bus, options } = parts;
  return new Promise((resolve, reject) => {
    const offs: Array<() => void> = [];
    const end = () => {
      clearTimeout(timer);
      offs.forEach((off) => off());
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => (end(), reject(signal.reason));
    const timer = setTimeout(
      () => (end(), reject(new Error(`${device} did not come back online within ${Math.round(options.rebootTimeoutMs / 1000)} s`))),
      options.rebootTimeoutMs,
    );
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    offs.push(
      bus.on('device:announced', (d) => {
        if (d.id === device && Date.now() > since) end(), resolve();
      }),
      bus.on('device:state', (d, previous) => {
        if (anySign && d.id === device && d.state === 'online' && previous !== 'online' && Date.now() > since) end(), resolve();
      }),
    );
  });
}
