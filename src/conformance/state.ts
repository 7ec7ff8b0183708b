/** `$state` life cycle [P-1] [P-12] [P-19] [P-20] [P-21]: online, the last will, coming back, listening first. */
import { COMMAND_MS, type Context } from './context.js';

const WILL_MS = 5000;

/** Waits (up to the timeout) until the device is online; false when it is not. */
export async function untilOnline(ctx: Context, why: string): Promise<boolean> {
  if (ctx.probe.state() === 'online') return true;
  ctx.say(`waiting for ${ctx.id} to be online (${why})`);
  const topic = `HomeKit/${ctx.id}/$state`;
  const from = ctx.probe.log.findLastIndex((m) => m.topic === topic) + 1;
  return (await ctx.probe.waitFor((m) => m.topic === topic && m.text === 'online', ctx.timeoutMs, from)) !== undefined;
}

/**
 * Waits until neither the hub nor anyone else has a command in flight for the device: no command
 * and no Log line for 1.5 s (at most 15 s), so the next Log line answers the checker.
 */
export async function quiet(ctx: Context): Promise<void> {
  const busy = (m: { topic: string }) => m.topic === `cmnd/${ctx.id}/OTA` || m.topic === `stat/${ctx.id}/Log`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const from = ctx.probe.mark;
    if (!(await ctx.probe.waitFor(busy, 1500, from))) return;
  }
}

/** [P-12] once the device is online, the retained `$state` a new subscriber gets is `online`. */
export async function checkOnline(ctx: Context): Promise<boolean> {
  const { probe, id, results } = ctx;
  await probe.waitFor((m) => m.topic === `HomeKit/${id}/$state`, 2000);
  if (!(await untilOnline(ctx, 'the checks need a connected device'))) {
    results.fail(
      'P-12',
      `the device did not say $state online within ${ctx.timeoutMs / 1000} s (its last $state: ${probe.state() === undefined ? 'none' : `'${probe.state()}'`})`,
    );
    return false;
  }
  const from = probe.mark;
  const retained = await probe.retainedNow(`HomeKit/${id}/$state`);
  // A sleeper may have gone back to sleep meanwhile: what is retained must be its latest live word.
  const latest = probe
    .on(`HomeKit/${id}/$state`)
    .filter((m) => !m.retained || m.n < from)
    .at(-1)?.text;
  if (!retained) results.fail('P-12', 'no retained $state: publish $state online with the retain flag, so the hub learns it after a restart');
  else if (retained.text !== 'online' && !(retained.text.startsWith('sleeping') && latest === retained.text))
    results.fail('P-12', `the retained $state is '${retained.text.slice(0, 40)}' while the device is online: publish online retained`);
  else results.pass('P-12', retained.text === 'online' ? '' : `retained '${retained.text.slice(0, 40)}', its latest word (it went back to sleep)`);
  return true;
}

export function checkKeepalive(ctx: Context): void {
  const seen = ctx.probe.on(`HomeKit/${ctx.id}/$keepalive`).filter((m) => m.text !== '');
  if (seen.length === 0) return ctx.results.skip('P-20', 'not tested: the device promised no $keepalive during the run (it is optional)');
  const bad = seen.find((m) => !/^\d{1,5}$/.test(m.text) || Number(m.text) > 65535);
  ctx.results.check(
    'P-20',
    bad ? `$keepalive '${bad.text.slice(0, 40)}' is not a whole number of seconds from 0 to 65535` : undefined,
    `${seen.at(-1)!.text} s`,
  );
}

/**
 * [P-1] [P-19] [P-21] The hub drops the device's connection (as a crash or lost Wi-Fi would): the
 * broker publishes its last will, the device connects again, says online, and answers a command sent
 * the moment it does.
 */
export async function checkReconnect(ctx: Context, dropConnection: () => void): Promise<void> {
  const { probe, id, results } = ctx;
  if (!ctx.embedded) {
    for (const rule of ['P-1', 'P-19', 'P-21'] as const)
      results.skip(rule, "not tested: with an external broker the checker cannot drop the device's connection");
    return;
  }
  const topic = `HomeKit/${id}/$state`;
  const from = probe.mark;
  ctx.say("dropping the device's connection (its last will should say offline)");
  dropConnection();
  const will = await probe.waitFor((m) => m.topic === topic && m.text === 'offline', WILL_MS, from);
  results.check(
    'P-1',
    will
      ? undefined
      : `no $state offline within ${WILL_MS / 1000} s after the connection dropped: set a last will HomeKit/${id}/$state = offline (QoS 1, retained) in CONNECT`,
  );
  const online = await probe.waitFor((m) => m.topic === topic && m.text === 'online', ctx.timeoutMs, from);
  if (!online) {
    results.fail(
      'P-19',
      `the device did not say $state online within ${ctx.timeoutMs / 1000} s after its connection dropped: reconnect, and publish online after every connect`,
    );
    results.skip('P-21', 'not tested: the device did not come back');
    return;
  }
  results.pass('P-19', `back after ${((online.at - (will?.at ?? online.at)) / 1000).toFixed(1)} s`);
  // The hub asks its own questions now as well: any answer on Log shows the device was listening
  // (its shape is getversion's own rule, [O-11]).
  const answer = await probe.command('getversion', COMMAND_MS);
  results.check(
    'P-21',
    answer
      ? undefined
      : `a getversion sent when $state online arrived got no answer within ${COMMAND_MS / 1000} s: subscribe to cmnd/${id}/OTA (and wait for the SUBACK) before publishing online`,
  );
}
