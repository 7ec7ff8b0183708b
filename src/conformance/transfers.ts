/**
 * Transfers the checker triggers itself [O-1] [O-3] [O-5] [O-13] [O-16]: a good file staged, a file
 * whose hash is wrong, `commit`, and `hashes` to see what is live. Served by the hub's pull server code,
 * to the device's address only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { pino } from 'pino';
import { sha1, triggerMessage } from '../ota/protocol.js';
import { servePull } from '../ota/pull-server.js';
import { ask } from './commands.js';
import type { Context } from './context.js';
import { jsonObject } from './probe.js';
import { quiet, untilOnline } from './state.js';

export const STAGED_FILE = 'mqttkit-conformance-a.txt';
const SHA_FILE = 'mqttkit-conformance-sha256.txt';

/** The local address the device reaches this machine at (the route toward it; no packet is sent). */
async function addressToward(device: string): Promise<string> {
  const socket = createSocket(device.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(9, device, () => resolve());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}

interface Report {
  ok?: unknown;
  hash?: unknown;
  error?: unknown;
}

/** Serves `bytes` once and triggers the device with `hash`; resolves with its report (undefined: none). */
async function transfer(ctx: Context, file: string, bytes: Buffer, hash: string, fileOrNull = false): Promise<Report | undefined> {
  const device = ctx.facts.address!;
  const host = await addressToward(device);
  const server = await servePull({ bytes, host, allowedAddress: device, timeoutMs: ctx.timeoutMs, log: pino({ level: 'silent' }), deviceId: ctx.id });
  const from = ctx.probe.mark;
  try {
    await ctx.probe.publish(`${ctx.id}/OTA`, triggerMessage(host, server.port, file, hash, false));
    const named = (m: { text: string }) => jsonObject(m.text)?.file === file || (fileOrNull && jsonObject(m.text)?.file === null);
    const report = await ctx.probe.waitFor((m) => m.topic === `stat/${ctx.id}/OTA` && named(m), ctx.timeoutMs, from);
    return report ? (jsonObject(report.text) as Report) : undefined;
  } finally {
    server.close();
  }
}

const content = (what: string) => Buffer.from(`mqttkit conformance ${what} ${randomBytes(8).toString('hex')}\n`);

async function liveHashes(ctx: Context): Promise<Record<string, string> | undefined> {
  const answer = await ask(ctx, 'hashes', true);
  return answer.object as Record<string, string> | undefined;
}

export async function checkTransfers(ctx: Context): Promise<void> {
  const { results } = ctx;
  const rules = ['O-13.discard', 'O-3.report', 'O-5.staged', 'O-3.bad-hash', 'O-13.commit', 'O-1.bad-hash', 'O-16', 'O-2'] as const;
  if (!ctx.facts.address) ctx.facts.address = (await ctx.ota.info(ctx.id)).address ?? (await ctx.accounts.get(ctx.id))?.lastAddress ?? undefined;
  if (!ctx.facts.address) {
    for (const rule of rules) results.skip(rule, "not tested: the device's address is unknown (it did not answer open, and the hub has none)");
    return;
  }
  if (!(await untilOnline(ctx, 'transfers'))) {
    for (const rule of rules) results.skip(rule, 'not tested: the device is not online');
    return;
  }
  await quiet(ctx);

  // [O-13] discard: clears anything an earlier job left staged, so commit below commits only ours.
  const discard = await ask(ctx, 'discard', true);
  if (discard.problem && /unknown command/.test(ctx.probe.on(`stat/${ctx.id}/Log`).at(-1)?.text ?? '')) {
    // The hub still runs jobs for it, but what a failed job staged could then go live with the next one.
    results.check(
      'O-13.discard',
      'the device does not know discard: what a failed job left staged goes live with the next commit; answer discard with {"discarded": [paths]}',
    );
  } else
    results.check(
      'O-13.discard',
      discard.problem ?? (Array.isArray(discard.object?.discarded) ? undefined : `discard answered ${discard.text.slice(0, 80)}, not {"discarded": [paths]}`),
    );

  // A good file, staged only (reboot 0).
  const good = content('good');
  const goodHash = sha1(good);
  const report = await transfer(ctx, STAGED_FILE, good, goodHash);
  if (!report) results.fail('O-3.report', `no report on stat/${ctx.id}/OTA within ${ctx.timeoutMs / 1000} s after a trigger for ${STAGED_FILE}`);
  else
    results.check(
      'O-3.report',
      report.ok === true && report.hash === goodHash
        ? undefined
        : `a good transfer of ${STAGED_FILE} was reported ${JSON.stringify(report).slice(0, 160)}, not ok:true with hash ${goodHash}`,
    );
  const staged = await liveHashes(ctx);
  if (!staged) results.skip('O-5.staged', 'not tested: hashes did not answer');
  else
    results.check(
      'O-5.staged',
      staged[STAGED_FILE] === goodHash ? `${STAGED_FILE} is live before commit: a transfer with reboot 0 only stages (<file>.new)` : undefined,
    );

  // The same file with a wrong hash: reported ok:false, and never live.
  const bad = content('bad');
  const wrong = sha1(Buffer.concat([bad, Buffer.from('x')]));
  const badReport = await transfer(ctx, STAGED_FILE, bad, wrong);
  if (!badReport) results.fail('O-3.bad-hash', `no report within ${ctx.timeoutMs / 1000} s after a trigger whose hash does not match the file`);
  else
    results.check(
      'O-3.bad-hash',
      badReport.ok === false
        ? undefined
        : `a file whose SHA-1 is ${sha1(bad)} was reported ok:${JSON.stringify(badReport.ok)} against the trigger's ${wrong}: compare the hash, report ok:false and delete the .part`,
      String(badReport.error ?? ''),
    );

  const commit = await ask(ctx, 'commit', true);
  const committed = commit.object?.committed;
  if (commit.problem) results.fail('O-13.commit', commit.problem);
  else if (!Array.isArray(committed)) results.fail('O-13.commit', `commit answered ${commit.text.slice(0, 120)}, not {"committed": [paths]}`);
  else
    results.check(
      'O-13.commit',
      committed.length === 1 && committed[0] === STAGED_FILE
        ? undefined
        : `commit answered ${JSON.stringify(committed).slice(0, 120)}; only ${STAGED_FILE} was staged`,
    );

  const live = await liveHashes(ctx);
  const now = live?.[STAGED_FILE];
  if (!live) results.fail('O-1.bad-hash', 'hashes did not answer after commit');
  else if (now === sha1(bad)) results.fail('O-1.bad-hash', `the file with the wrong hash went live as ${STAGED_FILE}: a bad hash must change nothing`);
  else
    results.check('O-1.bad-hash', now === goodHash ? undefined : `after commit ${STAGED_FILE} has hash ${now ?? '(absent)'}, not the good file's ${goodHash}`);

  // [O-16] sha256, when the device says it checks it.
  const algorithms = ctx.facts.version?.hashes;
  if (!Array.isArray(algorithms) || !algorithms.includes('sha256'))
    results.skip('O-16', 'not tested: getversion does not list "sha256" in "hashes" (SHA-1 only)');
  else {
    const bytes = content('sha256');
    const hash = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const sha = await transfer(ctx, SHA_FILE, bytes, hash);
    results.check(
      'O-16',
      sha?.ok === true && sha.hash === hash
        ? undefined
        : `a sha256 transfer was reported ${sha ? JSON.stringify(sha).slice(0, 160) : 'not at all'}, not ok:true with hash ${hash}`,
    );
    await ask(ctx, 'discard', true); // nothing of ours stays staged
  }

  // [O-2] A path that climbs out of the device's folder is refused with a report, and nothing is staged.
  const outside = '../mqttkit-conformance-escape.txt';
  const escaping = content('escape');
  const refused = await transfer(ctx, outside, escaping, sha1(escaping), true);
  if (!refused)
    results.fail(
      'O-2',
      `no report within ${ctx.timeoutMs / 1000} s after a trigger for ${outside}: refuse an unsafe path with a report ("ok": false, "unsafe file name …")`,
    );
  else
    results.check(
      'O-2',
      refused.ok === false ? undefined : `a trigger for ${outside} was reported ok:true: refuse paths with '..', a leading '/' or empty parts`,
      String(refused.error ?? ''),
    );
  await ask(ctx, 'discard', true);
}
