/** Registration [P-0] [P-2]: who the device is at the broker. */
import { deviceIdProblem } from '../core/topic.js';
import type { Context } from './context.js';

export async function checkRegistration(ctx: Context): Promise<void> {
  const { id, results } = ctx;
  results.check('P-2', deviceIdProblem(id));
  const account = await ctx.accounts.get(id);
  if (!account) return results.fail('P-0', `the hub has no account '${id}': the device must log in with username = client id = its device id`);
  if (account.role !== 'device') return results.fail('P-0', `'${id}' is an admin account, not a device`);
  if (account.status !== 'active') return results.fail('P-0', `the account '${id}' waits for approval (mqttkit device approve ${id})`);
  if (account.secret === null) return results.fail('P-0', `'${id}' has no registered password: its next login registers one`);
  results.pass('P-0', `account active${account.lastAddress ? `, last login from ${account.lastAddress}` : ''}`);
}
