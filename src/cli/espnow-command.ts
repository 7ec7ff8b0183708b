/**
 * `mqttkit espnow pair|unpair|list`: ESP-NOW peripherals and their gateways (docs/device.md, "ESP-NOW
 * peripherals"; docs/security.md). Pairing needs the running hub: it opens the window on the gateway.
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { mosquittoPeripheralRights } from '../broker/mosquitto/espnow-acls.js';
import { readBrokerCredentials } from '../store/broker-credentials.js';
import { EspNowPairings } from '../store/espnow-pairings.js';
import { hubOf } from './hub-client.js';
import { ago, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type Workspace, type WorkspaceFlags } from './workspace.js';

/** [E-7] What pairing leaves behind: the code keeps its power after use. */
const DESTROY_THE_CODE =
  'Once the peripheral is paired, destroy every copy of the code (this file or terminal, a download, a note): with it and the pairing frames recorded off the air, anyone can compute the key, now or later.';

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
          // The code protects the key for ever (the key is derived from it and values sent in clear): it
          // goes only into a file made now, owner-only; an existing file keeps its mode and its other links.
          if (flags.out && existsSync(flags.out)) throw new CliError(`${flags.out} exists: remove it (it may hold an older code) or choose another --out path`);
          const answer = await hub.ok<{ code: string; windowS: number }>('POST', '/api/espnow/pairings', { gateway, peripheral, windowS });
          const file = `${JSON.stringify({ code: answer.code })}\n`;
          if (flags.out) {
            try {
              writeFileSync(flags.out, file, { mode: 0o600, flag: 'wx' });
            } catch (error) {
              throw new CliError(
                `cannot write ${flags.out} (${(error as Error).message}); the window is open: unpair (mqttkit espnow unpair ${peripheral}) and pair again with another --out path`,
              );
            }
          }
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
          console.log(DESTROY_THE_CODE);
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
                `${peripheral} unpaired and removed (out of HomeKit): ${answer.gateway} may no longer speak for it${answer.gatewayForgot ? ' and forgot its key' : ` (${answer.gateway} did not hear it: it keeps the key, but the broker refuses it)`}.`,
              );
            return;
          }
          const pairings = await EspNowPairings.load(ws.db);
          const paired = pairings.get(peripheral);
          if (!paired) throw new CliError(`${peripheral} is not paired (see 'mqttkit espnow list')`);
          // With Mosquitto the gateway's rights live there: taken away first, or nothing changes [E-14].
          if (ws.externalUrl || readBrokerCredentials(ws.dataDir)) {
            if (!ws.externalUrl)
              throw new CliError(
                `${ws.dataDir} has a Mosquitto login but no broker address: pass --mqtt-url (the hub's), so that ${paired.gateway} loses ${peripheral}'s rights there too`,
              );
            try {
              await mosquittoPeripheralRights(ws.externalUrl, ws.dataDir).revoke(paired.gateway, peripheral);
            } catch (error) {
              throw new CliError(
                `Mosquitto did not finish taking ${paired.gateway}'s rights for ${peripheral} (${(error as Error).message}): the pairing stays; start Mosquitto (or the hub) and try again`,
              );
            }
          }
          await pairings.unpair(peripheral);
          // [E-14] its device goes with it, as when the hub unpairs (the hub starts without it)
          await ws.store.deleteDevice(peripheral);
          if (flags.json) console.log(JSON.stringify({ unpaired: peripheral, gateway: paired.gateway, gatewayForgot: false }));
          else
            console.log(
              `${peripheral} unpaired from ${paired.gateway} and removed (the hub is not running: the gateway keeps the key, but the broker refuses it).`,
            );
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
