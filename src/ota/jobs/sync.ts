/**
 * `mqttkit ota sync` (and each device of a rollout): make a device's files match a manifest. Protocol 2
 * [O-13]: `getversion`, `discard`, `hashes`, a transfer per changed file, one `commit` of exactly those,
 * a reboot, and `hashes` again to verify. Protocol 1 [O-11]: every file with its own 4-field transfer.
 */
import type { JobContext } from '../job-context.js';
import { JobFailure } from '../job-errors.js';
import { readManifest } from '../manifest.js';
import { sha1 } from '../protocol.js';
import { commit, otaProtocol, prepare, readLocal, rebooted } from '../steps.js';
import { seedTransfer, transfer } from '../transfers.js';

interface Entry {
  path: string;
  bytes: Buffer;
}

export async function sync(ctx: JobContext): Promise<string> {
  const { job, watch, ask } = ctx;
  const spec = job.spec as { manifest: string };
  const entries = readManifest(spec.manifest).map((e) => ({ ...e, bytes: readLocal(e.local) }));
  const { protocol, why } = await otaProtocol(ctx);
  if (protocol === 1) {
    watch.expected = true; // [O-11] it reboots after each file on its own
    return seedSync(ctx, entries, why);
  }
  const { algorithm, note } = await prepare(ctx);
  watch.step = "'hashes'";
  const wanted = new Map(entries.map((e) => [e.path, sha1(e.bytes)]));
  ctx.progress({ files: 0, filesTotal: entries.length, bytes: 0, bytesTotal: 0, step: 'asking for hashes' });
  const before = await ask.answer('hashes');
  const changed = entries.filter((e) => before[e.path] !== wanted.get(e.path));
  if (changed.length === 0) return `up to date (${entries.length} files)${note}`;
  const bytesTotal = changed.reduce((n, e) => n + e.bytes.length, 0);
  let bytesDone = 0;
  for (const [i, entry] of changed.entries()) {
    ctx.progress({ files: i, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: `sending ${entry.path}` });
    watch.step = `the transfer of ${entry.path}`;
    const report = await transfer(ctx, entry.path, entry.bytes, false, algorithm);
    if (!report.ok) throw new JobFailure(`${entry.path}: ${report.error ?? 'transfer failed'} (nothing was committed)`);
    bytesDone += entry.bytes.length;
  }
  ctx.progress({ files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'committing' });
  watch.step = "'commit'";
  await commit(
    ask,
    changed.map((e) => e.path),
  );
  ctx.progress({ files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'rebooting' });
  const since = Date.now();
  watch.expected = true;
  await ask.text('reboot');
  await rebooted(ctx, since);
  watch.expected = false;
  watch.step = "'hashes' after the reboot";
  ctx.progress({ files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'verifying' });
  const after = await ask.answer('hashes');
  const wrong = entries.filter((e) => after[e.path] !== wanted.get(e.path)).map((e) => e.path);
  if (wrong.length > 0) throw new JobFailure(`after the update these files differ from the manifest: ${wrong.join(', ')}`);
  return `${changed.length} of ${entries.length} files sent (${bytesDone} bytes), committed, rebooted, verified${note}`;
}

/**
 * [O-11] A sync to a protocol-1 device: it cannot say its hashes, stage or commit, so every file of
 * the manifest goes with its own 4-field transfer, and the device reboots after each one.
 */
async function seedSync(ctx: JobContext, entries: Entry[], why: string): Promise<string> {
  const bytesTotal = entries.reduce((n, e) => n + e.bytes.length, 0);
  let bytesDone = 0;
  for (const [i, entry] of entries.entries()) {
    ctx.progress({
      files: i,
      filesTotal: entries.length,
      bytes: bytesDone,
      bytesTotal,
      step: `sending ${entry.path} (OTA protocol 1: one transfer and one reboot per file, ${i + 1} of ${entries.length})`,
    });
    try {
      await seedTransfer(ctx, entry.path, entry.bytes);
    } catch (error) {
      if (ctx.signal.aborted || !(error instanceof JobFailure)) throw error;
      throw new JobFailure(`${error.message}; ${i} of ${entries.length} files were put in place before it (protocol 1 has no commit)`);
    }
    bytesDone += entry.bytes.length;
  }
  ctx.progress({ files: entries.length, filesTotal: entries.length, bytes: bytesDone, bytesTotal, step: 'done' });
  return `${entries.length} files sent one by one with the 4-field trigger (OTA protocol 1, ${why}), each followed by a reboot (${bytesDone} bytes); not verified: a protocol-1 device cannot report hashes`;
}
