/**
 * `mqttkit conformance`: drives one connected device through the contract (docs/protocol.md,
 * docs/ota.md) in an order where each step leaves the device as the next one needs it, and returns a
 * result for every rule in rules.ts.
 */
import { checkCommands } from './commands.js';
import type { Context } from './context.js';
import { checkJobs, checkSleep } from './jobs.js';
import { checkRegistration } from './registration.js';
import type { RuleResult } from './rules.js';
import { checkKeepalive, checkOnline, checkReconnect } from './state.js';
import { checkTransfers } from './transfers.js';
import { checkMetadata, checkValues, checkWrite } from './values.js';

export async function runConformance(ctx: Context, dropConnection: () => void): Promise<RuleResult[]> {
  checkRegistration(ctx);
  if (!(await checkOnline(ctx))) return ctx.results.all(`${ctx.id} was not online`);
  await checkMetadata(ctx);
  await checkWrite(ctx);
  ctx.say('observability commands');
  await checkCommands(ctx);
  ctx.say('transfers');
  await checkTransfers(ctx);
  await checkReconnect(ctx, dropConnection);
  ctx.say('OTA jobs: push, then sync');
  await checkJobs(ctx);
  await checkSleep(ctx);
  checkKeepalive(ctx);
  checkValues(ctx);
  return ctx.results.all();
}
