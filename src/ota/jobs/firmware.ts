/**
 * `mqttkit ota firmware`: an image into the spare partition (protocol 2 only), a reboot into it, and
 * `keepversion` only for a device that came back on the new firmware [O-6]; else the job ends
 * `rolled-back` and the device's bootloader goes back to the old one.
 */
import type { Answer } from '../answers.js';
import type { JobContext } from '../job-context.js';
import { JobFailure } from '../job-errors.js';
import { chooseHash, FIRMWARE_TARGET, partitionLabel } from '../protocol.js';
import { otaProtocol, readLocal, rebooted } from '../steps.js';
import { transfer } from '../transfers.js';

export async function firmware(ctx: JobContext): Promise<string> {
  const { job, watch, ask } = ctx;
  const spec = job.spec as { image: string };
  const image = readLocal(spec.image);
  const { protocol, why } = await otaProtocol(ctx);
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
  ctx.progress({ files: 0, filesTotal: 1, bytes: 0, bytesTotal: image.length, step: 'sending the image' });
  watch.step = 'the transfer of the firmware image';
  const report = await transfer(ctx, FIRMWARE_TARGET, image, false, chooseHash(old.hashes));
  if (!report.ok) throw new JobFailure(`firmware: ${report.error ?? 'transfer failed'}`);
  ctx.progress({ files: 1, filesTotal: 1, bytes: image.length, bytesTotal: image.length, step: 'rebooting into the new firmware' });
  const since = Date.now();
  watch.expected = true; // from here, a device that does not come back is judged by [O-6] (rolled back)
  await ask.text('reboot');
  // [O-6] keepversion only for a device that came back, answers, and runs the new firmware.
  let now: Answer<'getversion'>;
  try {
    await rebooted(ctx, since);
    now = await ask.answer('getversion');
  } catch (error) {
    throw new JobFailure(`rolled back: ${(error as Error).message}; keepversion not sent`, 'rolled-back');
  }
  const after = now.firmware ?? undefined;
  const verdict = firmwareVerdict({
    before,
    after,
    runningBefore: partitionLabel(old.partition),
    written: report.partition ?? undefined,
    running: partitionLabel(now.partition),
  });
  if (!verdict.confirmed) throw new JobFailure(`rolled back: ${verdict.reason}; keepversion not sent`, 'rolled-back');
  await ask.text('keepversion');
  await ctx.parts.store.updateInfo(job.device, {
    ...(after === undefined ? {} : { firmware: after }),
    ...(partitionLabel(now.partition) ? { partition: partitionLabel(now.partition) } : {}),
  });
  return `firmware ${before} -> ${after}, confirmed (keepversion sent): ${verdict.reason}`;
}

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
