/**
 * The conformance checker's temporary admin account (`mqttkit conformance`). It is removed when the
 * run ends or is interrupted (SIGINT/SIGTERM/SIGHUP); a run killed outright (SIGKILL, power cut)
 * leaves it behind, so the hub removes every such leftover when it starts (and Mosquitto's client of
 * that name, with an external broker: hub.ts): a temporary admin
 * login never becomes a standing one. The name pattern is reserved (`mqttkit user add` refuses it).
 */
import { randomBytes } from 'node:crypto';
import type { AccountStore } from '../store/account-store.js';

const CHECKER_NAME = /^conformance-[0-9a-f]{8}$/;

/** A fresh name for one run's account. */
export const checkerAccountName = (): string => `conformance-${randomBytes(4).toString('hex')}`;

/** Whether `name` has the checker's account name form (reserved for it). */
export const isCheckerAccountName = (name: string): boolean => CHECKER_NAME.test(name);

/** Removes the admin accounts a killed checker left; returns their names. */
export async function removeLeftoverCheckerAccounts(accounts: AccountStore): Promise<string[]> {
  const leftovers = (await accounts.list()).filter((a) => a.role === 'admin' && isCheckerAccountName(a.name));
  for (const account of leftovers) await accounts.remove(account.name);
  return leftovers.map((a) => a.name);
}
