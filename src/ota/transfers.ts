/**
 * [O-1] The two ways bytes reach a device, both pulled by it from a one-shot server of the hub: the
 * 5-field transfer (protocol 2: the device verifies, stages and reports) and seed 002's 4-field one
 * (protocol 1: it verifies, puts the file in place and reboots, reporting nothing) [O-11]. Every wait
 * either starts is ended, whichever way the transfer goes. [O-9]
 */
import { parseAnswer } from './answers.js';
import type { DeviceRoute, JobContext } from './job-context.js';
import { DeviceDropped, JobFailure } from './job-errors.js';
import { type HashAlgorithm, parseReport, seedTriggerMessage, sha1, type TransferReport, transferHash, triggerMessage, triggerTopic } from './protocol.js';
import { servePull } from './pull-server.js';
import { rebooted } from './steps.js';

/** One pull transfer [O-1]: serve the bytes, trigger the device, wait for its report. */
export async function transfer(ctx: JobContext, target: string, bytes: Buffer, reboot: boolean, algorithm: HashAlgorithm = 'sha1'): Promise<TransferReport> {
  const { job, signal, parts } = ctx;
  const { channel, link, store, options } = parts;
  const route = await routeTo(ctx);
  signal.throwIfAborted();
  const hash = transferHash(bytes, algorithm); // [O-16]
  const server = await serve(ctx, route, bytes);
  const waiting = channel.next(
    job.device,
    'OTA',
    options.transferTimeoutMs,
    (text) => {
      const report = parseReport(text);
      return report.ok && report.value.file === target;
    },
    signal,
  );
  let report: TransferReport;
  let triggeredAt: number | undefined;
  try {
    signal.throwIfAborted(); // cancelled while the server opened: trigger nothing
    // Taken as the trigger is handed over: with QoS 1 the publish resolves on the broker's PUBACK, and a
    // quick device has asked for the file (even had its first byte) by then.
    triggeredAt = performance.now();
    await link.publish(triggerTopic(job.device), triggerMessage(route.hubAddress, server.port, target, hash, reboot), { qos: 1, retain: false });
    const answer = await waiting.answer;
    ctx.clock.transfer(triggeredAt, server.marks); // [O-26]
    triggeredAt = undefined;
    const parsed = parseReport(answer);
    report = parsed.ok ? parsed.value : { file: target, ok: false, hash: null, error: parsed.error };
    // [O-16] the report's hash is in the trigger's form; a good report must name what was sent
    if (report.ok && typeof report.hash === 'string' && report.hash !== hash)
      report = { ...report, ok: false, error: `the device reports ${report.hash} for a file the hub sent as ${hash}` };
  } catch (error) {
    // [O-14] a drop is the job's to handle (it waits and resumes), not a failed transfer report
    if (signal.aborted && signal.reason instanceof DeviceDropped) {
      await store.recordTransfer({
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
    if (triggeredAt !== undefined) ctx.clock.transfer(triggeredAt, server.marks); // no report: timed out, dropped or cancelled
    waiting.cancel();
    server.close();
  }
  await store.recordTransfer({ jobId: job.id, device: job.device, file: target, bytes: bytes.length, ok: report.ok, error: report.error, at: Date.now() });
  return report;
}

/**
 * [O-11] One seed-002 transfer: serve the bytes, send `host|port|file|sha1`; the device checks the hash,
 * puts the file in place and reboots. It reports nothing, so the proof is: it fetched the file and came back.
 */
export async function seedTransfer(ctx: JobContext, target: string, bytes: Buffer): Promise<void> {
  const { job, signal, parts } = ctx;
  const { bus, link, store, options } = parts;
  const route = await routeTo(ctx);
  signal.throwIfAborted();
  const server = await serve(ctx, route, bytes);
  // A cancel closes the server at once (its `served` settles false). [O-9]
  const onAbort = () => server.close();
  signal.addEventListener('abort', onAbort, { once: true });
  // Watching from the trigger on: a quick device may be back before the bytes are counted as served;
  // the reboot timeout itself counts from the end of the transfer.
  const since = Date.now();
  let backEarly = false;
  const offs = [
    bus.on('device:announced', (d) => void (d.id === job.device && (backEarly = true))),
    bus.on('device:state', (d, previous) => void (d.id === job.device && d.state === 'online' && previous !== 'online' && (backEarly = true))),
  ];
  let error: string | null = null;
  let triggeredAt: number | undefined;
  try {
    signal.throwIfAborted();
    triggeredAt = performance.now(); // as the trigger is handed over (see transfer)
    await link.publish(triggerTopic(job.device), seedTriggerMessage(route.hubAddress, server.port, target, sha1(bytes)), { qos: 1, retain: false });
    if (!(await server.served)) error = `the device did not fetch ${target} within ${Math.round(options.transferTimeoutMs / 1000)} s`;
  } catch (cause) {
    error = (cause as Error).message;
  } finally {
    if (triggeredAt !== undefined) ctx.clock.transfer(triggeredAt, server.marks); // [O-26]
    signal.removeEventListener('abort', onAbort);
    server.close();
    // Synchronous hand-over from the early watch to the wait below: no event can fall between them.
    offs.forEach((off) => off());
    // Not awaited: nothing may stand between the hand-over and the wait (the record is a log).
    store
      .recordTransfer({
        jobId: job.id,
        device: job.device,
        file: target,
        bytes: bytes.length,
        ok: error === null && !signal.aborted,
        error,
        at: Date.now(),
      })
      .catch((cause: unknown) => parts.log.warn({ job: job.id, err: (cause as Error).message }, 'cannot record the transfer'));
  }
  signal.throwIfAborted();
  if (error !== null) throw new JobFailure(`${target}: ${error}`);
  try {
    if (!backEarly) await rebooted(ctx, since, true);
  } catch (cause) {
    if (signal.aborted) throw cause;
    throw new JobFailure(`${target}: the device fetched it but ${(cause as Error).message} (a protocol-1 device reboots only when the hash matched)`);
  }
}

/** [O-1] The one-shot pull server of a transfer: it serves `bytes` once, to the device's address only. */
function serve(ctx: JobContext, route: DeviceRoute, bytes: Buffer): ReturnType<typeof servePull> {
  return servePull({
    bytes,
    host: route.hubAddress,
    allowedAddress: route.deviceAddress,
    timeoutMs: ctx.parts.options.transferTimeoutMs,
    log: ctx.parts.log,
    deviceId: ctx.job.device,
    onBytes: (sent) => ctx.moved(sent), // [O-26]
  });
}

/** Where the device connects from and reaches the hub: the broker knows, or the device says after `open`. [O-4] */
async function routeTo(ctx: JobContext): Promise<DeviceRoute> {
  const { channel, options, route } = ctx.parts;
  const { signal } = ctx;
  const device = ctx.job.device;
  const known = route(device);
  if (known) return known;
  // An external broker does not tell us the device's address: the device does, after `open`. [O-4]
  // Both waits are awaited together and ended together, whichever fails first. [O-9]
  const timeout = options.commandTimeoutMs;
  const waiting = channel.next(device, 'OTA', timeout, (text) => text.includes('"address"'), signal);
  let text: string;
  try {
    [, text] = await ctx.clock.device("'open'", Promise.all([channel.command(device, 'open', timeout, signal), waiting.answer]));
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
  if (!options.hubAddress) throw new JobFailure(`cannot route a transfer to ${device}: set --ota-host to the hub's address`);
  return { deviceAddress: opened.value.address, hubAddress: options.hubAddress };
}
