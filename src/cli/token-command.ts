/** `mqttkit token create|list|remove`: API tokens for scripts (Authorization: Bearer <token>). */
import type { Command } from 'commander';
import { WebStore } from '../store/web-store.js';
import { type HubClient, hubOf } from './hub-client.js';
import { ago, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type WorkspaceFlags } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean };

export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description('API tokens for scripts that use the HTTP API')
    .addHelpText('after', "\nExamples:\n  $ mqttkit token create home-assistant\n  $ curl -H 'Authorization: Bearer mk_…' http://hub:8581/api/devices");
  const withStore = async (flags: Flags, fn: (store: WebStore, hub: HubClient | undefined) => Promise<void>) => {
    const ws = await openWorkspace(flags, { create: true });
    try {
      await fn(new WebStore(ws.db), hubOf(ws));
    } finally {
      await ws.close();
    }
  };
  addWorkspaceOptions(token.command('create <name>').description('create a token and print it (shown only once)'))
    .option('--json', 'print JSON')
    .action(
      action((name: string, flags: Flags) =>
        withStore(flags, async (store, hub) => {
          if ((await store.tokens()).some((t) => t.name === name)) throw new CliError(`a token named ${name} exists already`);
          // A running hub makes it, so its security log names the action; offline, the store does.
          const value = hub ? (await hub.ok<{ token: string }>('POST', '/api/tokens', { name })).token : await store.createToken(name);
          console.log(flags.json ? JSON.stringify({ name, token: value }) : `Token ${name} (shown only this once):\n${value}`);
        }),
      ),
    );
  addWorkspaceOptions(token.command('list').description('list token names'))
    .option('--json', 'print JSON')
    .action(
      action((flags: Flags) =>
        withStore(flags, async (store) => {
          const tokens = await store.tokens();
          if (flags.json) console.log(JSON.stringify(tokens));
          else
            printTable(
              ['TOKEN', 'CREATED'],
              tokens.map((t) => [t.name, ago(t.createdAt)]),
              'No API tokens.',
            );
        }),
      ),
    );
  addWorkspaceOptions(token.command('remove <name>').description('revoke a token')).action(
    action((name: string, flags: Flags) =>
      withStore(flags, async (store) => {
        if (!(await store.removeToken(name))) throw new CliError(`no token named ${name}`);
        console.log(`Token ${name} revoked.`);
      }),
    ),
  );
}
