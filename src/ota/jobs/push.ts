/**
 * `mqttkit ota push`: one file to one device. Protocol 2 [O-1] [O-13]: `getversion`, `discard`, the
 * transfer, then `commit` (`--no-reboot`) or the device's own commit and reboot (its `committed` list
 * held to the file). Protocol 1 [O-11]: the 4-field trigger, after which the device reboots itself.
 */
import type { JobContext } from '../job-context.js';
import { JobFailure } from '../job-errors.js';
import { commitDifference } from '../protocol.js';
import { commit, otaProtocol, prepare, readLocal, rebooted } from '../steps.js';
import { seedTransfer, transfer } from '../transfers.js';

export async function push(ctx: JobContext): Promise<string> {
  const { job, watch } = ctx;
  const spec = job.spec as { file: string; as: string; reboot: boolean };
  const bytes = readLocal(spec.file);
  const { protocol, why } = await otaProtocol(ctx);
  if (protocol === 1) {
    if (!spec.reboot)
      throw new JobFailure(
        `${job.device} speaks OTA protocol 1 (${why}): its 4-field trigger always puts the file in place and reboots, so --no-reboot cannot be honoured; push without it, or 'mqttkit device set ${job.device} ota-protocol 2' if it runs the mqttkit device library`,
      );
    ctx.progress({
      files: 0,
      filesTotal: 1,
      bytes: 0,
      bytesTotal: bytes.length,
      step: `sending ${spec.as} (OTA protocol 1: the device reboots itself)`,
    });
    watch.expected = true; // [O-11] it reboots on its own, and says nothing: not watched for drops
    await seedTransfer(ctx, spec.as, bytes);
    ctx.progress({ files: 1, filesTotal: 1, bytes: bytes.length, bytesTotal: bytes.length, step: 'done' });
    return `${spec.as} (${bytes.length} bytes) sent with the 4-field trigger (OTA protocol 1, ${why}): the device fetched it, rebooted and is back`;
  }
  const { algorithm, note } = await prepare(ctx);
  ctx.progress({ files: 0, filesTotal: 1, bytes: 0, bytesTotal: bytes.length, step: `sending ${spec.as}` });
  watch.step = `the transfer of ${spec.as}`;
  const since = Date.now();
  const report = await transfer(ctx, spec.as, bytes, spec.reboot, algorithm);
  if (!report.ok && report.step === 'commit') {
    // [O-15] verified and staged, but the commit after it failed: the device kept its old files and did not reboot
    throw new JobFailure(
      `${spec.as}: transferred and verified, but the device's commit failed, so it kept its old files and did not reboot: ${report.error ?? 'no reason given'}`,
    );
  }
  if (!report.ok) throw new JobFailure(`${spec.as}: ${report.error ?? 'transfer failed'}`);
  ctx.progress({ files: 1, filesTotal: 1, bytes: bytes.length, bytesTotal: bytes.length, step: 'done' });
  if (!spec.reboot) {
    watch.step = "'commit'";
    await commit(ctx.ask, [spec.as]);
    return `${spec.as} (${bytes.length} bytes) transferred and committed${note}`;
  }
  // [O-13] a device that says what its reboot=1 commit made live is held to it (older ones say nothing)
  const difference = report.committed === undefined ? undefined : commitDifference([spec.as], report.committed);
  watch.expected = true; // it commits and reboots now
  if (difference) throw new JobFailure(`${spec.as}: ${difference}`);
  await rebooted(ctx, since);
  return `${spec.as} (${bytes.length} bytes) transferred; the device rebooted and is back${note}`;
}
