/** The observability commands on cmnd/<id>/OTA (ota.md §3), `open` [O-4], and request ids [O-12]. */
import { COMMAND_MS, type Context } from './context.js';
import { isJsonObject, jsonObject } from './probe.js';
import { quiet } from './state.js';

const UNKNOWN = 'conformance_no_such_command';
const HASH = /^([0-9a-f]{40}|sha256:[0-9a-f]{64})$/;

/**
 * Sends a command and reads its answer: the next Log line that fits (a JSON object where `json`).
 * The problem names what came instead, so a firmware author sees the wrong answer.
 */
export async function ask(ctx: Context, command: string, json: boolean): Promise<{ text: string; object?: Record<string, unknown>; problem?: string }> {
  const from = ctx.probe.mark;
  const answer = await ctx.probe.command(command, COMMAND_MS, json ? { fits: isJsonObject } : {});
  if (answer) return { text: answer.answer, ...(json ? { object: jsonObject(answer.answer)! } : {}) };
  const lines = ctx.probe.on(`stat/${ctx.id}/Log`, from).map((m) => `'${m.text.slice(0, 80)}'`);
  return {
    text: '',
    problem: `'${command}' got ${lines.length ? `no ${json ? 'JSON object' : 'answer'}, only ${lines.slice(0, 2).join(', ')}` : 'no answer'} on stat/${ctx.id}/Log within ${COMMAND_MS / 1000} s`,
  };
}

export async function checkCommands(ctx: Context): Promise<void> {
  const { results } = ctx;
  await quiet(ctx);

  const version = await ask(ctx, 'getversion', true);
  if (version.object) ctx.facts.version = version.object;
  if (version.problem) results.fail('O-11', version.problem);
  else if (typeof version.object!.firmware !== 'string') results.fail('O-11', `getversion has no "firmware" string: ${version.text.slice(0, 120)}`);
  else if (version.object!.ota !== 2)
    results.fail('O-11', `getversion says "ota": ${JSON.stringify(version.object!.ota)}, not 2: a device that stages and commits says "ota": 2`);
  else results.pass('O-11', `firmware ${String(version.object!.firmware)}`);

  const stats = await ask(ctx, 'stats', true);
  const missing = ['uptime_s', 'reconnects', 'published', 'received'].filter((k) => typeof stats.object?.[k] !== 'number');
  results.check('cmd.stats', stats.problem ?? (missing.length ? `stats lacks the numbers ${missing.join(', ')}: ${stats.text.slice(0, 120)}` : undefined));

  for (const name of ['msg_reboot', 'msg_exception'] as const) {
    const answer = await ask(ctx, name, false);
    results.check(`cmd.${name}`, answer.problem ?? (answer.text.trim() === '' ? `${name} answered an empty line` : undefined), answer.text.slice(0, 60));
  }

  const partitions = await ask(ctx, 'partitions', true);
  const count = partitions.object?.count;
  results.check(
    'O-6.partitions',
    partitions.problem ??
      (typeof count !== 'number' || count < 1 || typeof partitions.object?.running !== 'string'
        ? `partitions answered ${partitions.text.slice(0, 120)}, not {"count": <n>, "running": "<label>"}`
        : partitions.object.running.length < 1 || partitions.object.running.length > 64
          ? `the partition label '${partitions.object.running.slice(0, 80)}' is not 1-64 characters ([O-21])`
          : undefined),
    partitions.text,
  );

  const hashes = await ask(ctx, 'hashes', true);
  const bad = Object.entries(hashes.object ?? {}).find(([, v]) => typeof v !== 'string' || !HASH.test(v));
  if (!hashes.problem && !bad) ctx.facts.hashes = hashes.object as Record<string, string>;
  results.check(
    'cmd.hashes',
    hashes.problem ?? (bad ? `hashes gives ${bad[0]} the value ${JSON.stringify(bad[1]).slice(0, 80)}, not a lowercase hex SHA-1` : undefined),
    `${Object.keys(hashes.object ?? {}).length} files`,
  );

  const unknown = await ask(ctx, UNKNOWN, false);
  results.check(
    'cmd.unknown',
    unknown.problem ??
      (unknown.text.startsWith(`unknown command ${UNKNOWN}`)
        ? undefined
        : `'${UNKNOWN}' was answered '${unknown.text.slice(0, 80)}', not 'unknown command ${UNKNOWN} (known: …)'`),
  );

  await checkOpen(ctx);
  await checkRid(ctx);

  // Last of the commands: msg_rm clears what msg_reboot and msg_exception say (the hub keeps its own copy).
  const rm = await ask(ctx, 'msg_rm', false);
  const after = rm.problem ? undefined : await ask(ctx, 'msg_exception', false);
  results.check(
    'cmd.msg_rm',
    rm.problem ??
      after?.problem ??
      (after?.text === 'no exception recorded' ? undefined : `after msg_rm, msg_exception still says '${after?.text.slice(0, 80)}'`),
    rm.text,
  );
}

/** [O-4] `open`: the device says its own address on stat/<id>/OTA. */
async function checkOpen(ctx: Context): Promise<void> {
  const topic = `stat/${ctx.id}/OTA`;
  const from = ctx.probe.mark;
  const answer = await ask(ctx, 'open', false);
  const report = await ctx.probe.waitFor((m) => m.topic === topic && typeof jsonObject(m.text)?.address === 'string', COMMAND_MS, from);
  if (report) ctx.facts.address = jsonObject(report.text)!.address as string;
  ctx.results.check(
    'O-4',
    report
      ? undefined
      : `'open' ${answer.problem ? 'got no answer' : `answered '${answer.text.slice(0, 60)}'`} and published no {"address": "<ip>"} on ${topic}`,
    report?.text,
  );
}

/** [O-12] A device that says "rid": 1 answers `#<n> <command>` with `#<n> <answer>`. */
async function checkRid(ctx: Context): Promise<void> {
  if (ctx.facts.version?.rid !== 1) return ctx.results.skip('O-12', 'not tested: getversion does not say "rid": 1 (request ids are optional)');
  const problems: string[] = [];
  for (const [command, json] of [
    ['getversion', true],
    ['msg_reboot', false],
  ] as const) {
    const from = ctx.probe.mark;
    const answer = await ctx.probe.command(command, COMMAND_MS, { rid: true });
    if (!answer) {
      const lines = ctx.probe.on(`stat/${ctx.id}/Log`, from).map((m) => `'${m.text.slice(0, 60)}'`);
      problems.push(`'#<n> ${command}' got no '#<n> …' answer${lines.length ? ` (saw ${lines.slice(0, 2).join(', ')})` : ''}`);
    } else if (json && !isJsonObject(answer.answer))
      problems.push(`'#${answer.rid} ${command}' was answered '#${answer.rid} ${answer.answer.slice(0, 60)}', not '#${answer.rid} {…}'`);
  }
  ctx.results.check('O-12', problems.length ? problems.join('; ') : undefined);
}
