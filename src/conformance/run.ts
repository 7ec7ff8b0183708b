/**
 * `mqttkit conformance`: drives one connected device through the contract (docs/protocol.md,
 * docs/ota.md) in an order where each step leaves the device as the next one needs it, and returns a
 * result for every rule in rules.ts.
 */
import { checkCommands } from './commands.js';
import type { Context } from './context.js';
import { checkJobs, checkSleep } from './jobs.js';
import { checkRegistration } from './registration.js';
import { RULES, type RuleId, type RuleResult } from './rules.js';
import { checkKeepalive, checkOnline, checkReconnect } from './state.js';
import { checkTraffic } from './traffic.js';
import { checkTransfers } from './transfers.js';
import { checkMetadata, checkValues, checkWrite } from './values.js';

/** The groups of checks, in the order they run, with the rules each decides. */
const GROUPS: Array<{ rules: readonly RuleId[]; run: (ctx: Context, drop: () => void) => Promise<void> | void }> = [
  { rules: ['P-11'], run: checkMetadata },
  { rules: ['P-14'], run: checkWrite },
  {
    rules: ['O-11', 'cmd.stats', 'cmd.msg_reboot', 'cmd.msg_exception', 'cmd.msg_rm', 'O-6.partitions', 'cmd.hashes', 'cmd.unknown', 'O-4', 'O-12'],
    run: checkCommands,
  },
  { rules: ['O-13.discard', 'O-3.report', 'O-5.staged', 'O-3.bad-hash', 'O-13.commit', 'O-1.bad-hash', 'O-16', 'O-2'], run: checkTransfers },
  { rules: ['P-1', 'P-19', 'P-21'], run: checkReconnect },
  { rules: ['O-1.push', 'O-5.sync'], run: checkJobs },
  { rules: ['O-7'], run: checkSleep },
  { rules: ['P-20'], run: checkKeepalive },
  { rules: ['P-9'], run: checkValues },
  { rules: ['P-3', 'P-8', 'P-22'], run: checkTraffic },
];

/** `only`: run just the groups that decide these rules (the others are reported "not selected"). */
export async function runConformance(ctx: Context, dropConnection: () => void, only?: readonly string[]): Promise<RuleResult[]> {
  const unknown = only?.filter((id) => !RULES.some((r) => r.id === id)) ?? [];
  if (unknown.length) throw new Error(`unknown rule ${unknown.join(', ')}: the rules are ${RULES.map((r) => r.id).join(', ')}`);
  await checkRegistration(ctx);
  if (!(await checkOnline(ctx))) return ctx.results.all(`${ctx.id} was not online`);
  for (const group of GROUPS) {
    if (only && !group.rules.some((id) => only.includes(id))) {
      for (const id of group.rules) ctx.results.skip(id, 'not selected (--only)');
      continue;
    }
    ctx.say(`checking ${group.rules.join(', ')}`);
    await group.run(ctx, dropConnection);
  }
  return ctx.results.all();
}
