/**
 * `mqttkit espnow pair|unpair|list`: ESP-NOW peripherals and their gateways (docs/device.md, "ESP-NOW
 * peripherals"; docs/security.md). Pairing needs the running hub: it opens the window on the gateway.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EspNowPairings } from '../store/espnow-pairings.js';
import { hubOf } from './hub-client.js';
import { ago, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type Workspace, type WorkspaceFlags } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean; window?: string; out?: string };

export function registerEspNow(program: Command): Command {
  const espnow = program
    .command('espnow')
    .description('ESP-NOW peripherals: pair them with a gateway, unpair, list')
    .addHelpText(
      'after',
      `
Examples:
  $ mqttkit espnow pair garden-gw soil-1 --out espnow_pair.json   # then: mpremote cp espnow_pair.json :
  $ mqttkit espnow list
  $ mqttkit espnow unpair soil-1`,
    );

  addWorkspaceOptions(
    espnow
      .command('pair <gateway> <peripheral-id>')
      .description("open a pairing window on the gateway and print the one-time code for the peripheral's espnow_pair.json"),
  )
    .option('--window <seconds>', 'how long the window stays open (10-3600)', '300')
    .option('--out <file>', 'write the pairing file (owner-only) instead of printing the code')
    .option('--json', 'print JSON')
    .action(
      action((gateway: string, peripheral: string, flags: Flags) =>
        withWorkspace(flags, async (ws) => {
          const windowS = Number(flags.window);
          if (!Number.isInteger(windowS) || windowS < 10 || windowS > 3600)
            throw new CliError(`--window takes whole seconds from 10 to 3600, not '${String(flags.window).slice(0, 20)}'`, 2);
          const hub = hubOf(ws);
          if (!hub) throw new CliError(`no hub is running on ${ws.dataDir}: pairing opens a window on the gateway through the running hub; start it first`);
          const answer = await hub.ok<{ code: string; windowS: number }>('POST', '/api/espnow/pairings', { gateway, peripheral, windowS });
          const file = `${JSON.stringify({ code: answer.code })}\n`;
          if (flags.out) writeFileSync(flags.out, file, { mode: 0o600 });
          if (flags.json) {
            console.log(JSON.stringify({ gateway, peripheral, windowS: answer.windowS, ...(flags.out ? { file: flags.out } : { code: answer.code }) }));
            return;
          }
          console.log(`Gateway ${gateway} pairs ${peripheral} for the next ${answer.windowS} s.`);
          if (flags.out) console.log(`Copy ${flags.out} to the peripheral over USB (mpremote cp ${flags.out} :espnow_pair.json) and start it.`);
          else {
            console.log('Put this line on the peripheral as espnow_pair.json over USB (shown only this once), then start it:');
            console.log(`  ${file.trim()}`);
          }
        }),
      ),
    );

  addWorkspaceOptions(espnow.command('unpair <peripheral-id>').description('unpair a peripheral: its gateway may no longer speak for it'))
    .option('--json', 'print JSON')
    .action(
      action((peripheral: string, flags: Flags) =>
        withWorkspace(flags, async (ws) => {
          const hub = hubOf(ws);
          if (hub) {
            const answer = await hub.ok<{ gateway: string; gatewayForgot: boolean }>('DELETE', `/api/espnow/pairings/${encodeURIComponent(peripheral)}`);
            if (flags.json) console.log(JSON.stringify({ unpaired: peripheral, ...answer }));
            else
              console.log(
                `${peripheral} unpaired: ${answer.gateway} may no longer speak for it${answer.gatewayForgot ? ' and forgot its key' : ` (${answer.gateway} did not hear it: it keeps the key, but the broker refuses it)`}.`,
              );
            return;
          }
          const gone = await (await EspNowPairings.load(ws.db)).unpair(peripheral);
          if (!gone) throw new CliError(`${peripheral} is not paired (see 'mqttkit espnow list')`);
          if (flags.json) console.log(JSON.stringify({ unpaired: peripheral, gateway: gone.gateway, gatewayForgot: false }));
          else console.log(`${peripheral} unpaired from ${gone.gateway} (the hub is not running: the gateway keeps the key, but the broker refuses it).`);
        }),
      ),
    );

  addWorkspaceOptions(espnow.command('list').description('list ESP-NOW peripherals and their gateways'))
    .option('--json', 'print JSON')
    .action(
      action((flags: Flags) =>
        withWorkspace(flags, async (ws) => {
          const rows = (await EspNowPairings.load(ws.db)).list();
          if (flags.json) {
            console.log(JSON.stringify(rows, null, 2));
            return;
          }
          const now = Date.now();
          printTable(
            ['PERIPHERAL', 'GATEWAY', 'PAIRED'],
            rows.map((r) => [r.peripheral, r.gateway, ago(r.createdAt, now)]),
            "No ESP-NOW peripherals yet ('mqttkit espnow pair <gateway> <peripheral-id>').",
          );
        }),
      ),
    );
  return espnow;
}

async function withWorkspace(flags: WorkspaceFlags, fn: (ws: Workspace) => Promise<void> | void): Promise<void> {
  const ws = await openWorkspace(flags, { create: false });
  try {
    await fn(ws);
  } finally {
    await ws.close();
  }
}
