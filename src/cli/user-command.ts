/** `mqttkit user add|list|remove`: admin accounts (scripts, tools) that may touch every topic. */
import type { Command } from 'commander';
import { isCheckerAccountName } from '../conformance/checker-account.js';
import { mqttAccountNameProblem } from '../security/access-policy.js';
import { generatePassword, hashPassword } from '../security/password-hash.js';
import { hubOf } from './hub-client.js';
import { ago, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type WorkspaceFlags, withDynsec } from './workspace.js';

type Flags = WorkspaceFlags & { admin?: boolean; json?: boolean };

export function registerUser(program: Command): void {
  const user = program
    .command('user')
    .description('manage admin accounts, which may publish and subscribe to every topic')
    .addHelpText('after', '\nExamples:\n  $ mqttkit user add node-red --admin\n  $ mqttkit user list\n  $ mqttkit user remove node-red');

  addWorkspaceOptions(user.command('add <name>').description('create an admin account and print its generated password'))
    .option('--admin', 'full access to every topic (the only kind of user account)')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, flags: Flags) => {
        if (!flags.admin) throw new CliError('user accounts are admin accounts: add --admin (devices get accounts with mqttkit device add)', 2);
        const problem = mqttAccountNameProblem(name);
        if (problem) throw new CliError(`user name ${problem}`, 2);
        if (isCheckerAccountName(name))
          throw new CliError(
            `user name '${name}' has the form of 'mqttkit conformance''s temporary accounts (removed when the hub starts): choose another name`,
            2,
          );
        const ws = await openWorkspace(flags, { create: true });
        try {
          if (await ws.accounts.get(name)) throw new CliError(`${name} exists already`);
          // A running hub makes it, so its security log names the action; an external broker's
          // dynamic security is the CLI's to write, so that path (and the offline one) stays here.
          const hub = ws.externalUrl ? undefined : hubOf(ws);
          if (hub) {
            const made = await hub.ok<{ password: string }>('POST', '/api/admins', { name });
            if (flags.json) console.log(JSON.stringify({ username: name, password: made.password }));
            else console.log(`Admin ${name} created. Password (shown only this once): ${made.password}`);
            return;
          }
          const password = generatePassword();
          if (ws.externalUrl) {
            await withDynsec(ws, (dynsec) => dynsec.createAdmin(name, password));
          }
          await ws.accounts.create(name, 'admin', 'active', await hashPassword(password));
          if (flags.json) console.log(JSON.stringify({ username: name, password }));
          else console.log(`Admin ${name} created. Password (shown only this once): ${password}`);
        } finally {
          await ws.close();
        }
      }),
    );

  addWorkspaceOptions(user.command('list').description('list admin accounts'))
    .option('--json', 'print JSON')
    .action(
      action(async (flags: Flags) => {
        const ws = await openWorkspace(flags);
        try {
          const admins = (await ws.accounts.list())
            .filter((a) => a.role === 'admin')
            .map((a) => ({ name: a.name, lastLogin: a.lastLoginAt ? new Date(a.lastLoginAt).toISOString() : null }));
          if (flags.json) console.log(JSON.stringify(admins, null, 2));
          else
            printTable(
              ['ADMIN', 'LAST LOGIN'],
              admins.map((a) => [a.name, a.lastLogin ? ago(a.lastLogin) : 'never']),
              'No admin accounts.',
            );
        } finally {
          await ws.close();
        }
      }),
    );

  addWorkspaceOptions(user.command('remove <name>').description('remove an admin account')).action(
    action(async (name: string, flags: Flags) => {
      const ws = await openWorkspace(flags);
      try {
        const account = await ws.accounts.get(name);
        if (account?.role !== 'admin') throw new CliError(`no admin account ${name}`);
        // A running hub removes it and drops its connection, and its security log names the action;
        // an external broker's dynamic security is the CLI's to write, so that path stays here.
        const hub = ws.externalUrl ? undefined : hubOf(ws);
        if (hub) {
          await hub.ok('DELETE', `/api/admins/${encodeURIComponent(name)}`);
          console.log(`Admin ${name} removed.`);
          return;
        }
        if (ws.externalUrl) await withDynsec(ws, (dynsec) => dynsec.run({ command: 'deleteClient', username: name }, ['not found']));
        await ws.accounts.remove(name);
        // The running hub drops a connection it holds under that name.
        await hubOf(ws)?.ok('POST', `/api/devices/${encodeURIComponent(name)}/disconnect`);
        console.log(`Admin ${name} removed.`);
      } finally {
        await ws.close();
      }
    }),
  );
}
