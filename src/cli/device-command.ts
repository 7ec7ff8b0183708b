/** `mqttkit device list|add|approve|reset|remove`: device accounts, on the embedded or an external broker. */
import type { Command } from 'commander';
import { mqttAccountNameProblem } from '../security/access-policy.js';
import { generatePassword, hashPassword } from '../security/password-hash.js';
import type { Account } from '../store/account-store.js';
import { EspNowPairings } from '../store/espnow-pairings.js';
import { OtaStore } from '../store/ota-store.js';
import { hubOf } from './hub-client.js';
import { ago, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type Workspace, type WorkspaceFlags, withDynsec } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean };

export function registerDevice(program: Command): Command {
  const device = program
    .command('device')
    .description('manage device accounts: who may connect to the broker')
    .addHelpText(
      'after',
      `
Examples:
  $ mqttkit device list
  $ mqttkit device add garage-door          # prints the password to flash into the device
  $ mqttkit device approve esp8266_12345678  # with --registration approve
  $ mqttkit device reset esp8266_12345678    # a reflashed device may register a new password
  $ mqttkit device remove esp8266_12345678   # forget it: account, HomeKit accessory, retained topics
  $ mqttkit device set esp8266_12345678 ota-protocol 1   # seed 002 firmware: 4-field OTA trigger (auto: detect)`,
    );

  addWorkspaceOptions(device.command('list').description('list device accounts and their state'))
    .option('--json', 'print JSON')
    .action(action((flags: Flags) => withWorkspace(flags, false, (ws) => list(ws, flags.json === true))));

  addWorkspaceOptions(device.command('add <id>').description('provision a device and print its generated password'))
    .option('--json', 'print JSON')
    .action(action((id: string, flags: Flags) => withWorkspace(flags, true, (ws) => add(ws, id, flags.json === true))));

  addWorkspaceOptions(device.command('approve <id>').description('let a device that waits for approval connect')).action(
    action((id: string, flags: Flags) =>
      withWorkspace(flags, false, async (ws) => {
        const account = await existing(ws, id);
        if (account.status !== 'pending') throw new CliError(`device ${id} does not wait for approval (it is ${describe(account)})`);
        // A running hub approves it, so its security log names the action.
        const hub = hubOf(ws);
        if (hub) await hub.ok('POST', `/api/registration/${encodeURIComponent(id)}/approve`);
        else await ws.accounts.setStatus(id, 'active');
        console.log(`Device ${id} approved: it connects with the password it presented at its next attempt.`);
      }),
    ),
  );

  addWorkspaceOptions(device.command('reset <id>').description("forget a device's password (embedded broker) or set a new one (external broker)"))
    .option('--json', 'print JSON')
    .action(
      action((id: string, flags: Flags) =>
        withWorkspace(flags, false, async (ws) => {
          await existing(ws, id);
          if (ws.externalUrl) {
            const password = generatePassword();
            await withDynsec(ws, (dynsec) => dynsec.setPassword(id, password));
            await ws.accounts.setSecret(id, await hashPassword(password));
            printPassword(id, password, flags.json === true, 'new password');
            // The running hub drops its connection: it must log in again with the new password.
            await hubOf(ws)?.ok('POST', `/api/devices/${encodeURIComponent(id)}/disconnect`);
          } else {
            // A running hub forgets the password and drops the connection, and its security log names the action.
            const hub = hubOf(ws);
            if (hub) await hub.ok('POST', `/api/registration/${encodeURIComponent(id)}/reset`);
            else await ws.accounts.setSecret(id, null);
            console.log(`Device ${id} reset: the next password it presents becomes its password.`);
          }
        }),
      ),
    );

  addWorkspaceOptions(device.command('set <id> <setting> <value>').description('change a device setting: ota-protocol 1|2|auto (docs/ota.md [O-11])')).action(
    action((id: string, setting: string, value: string, flags: Flags) =>
      withWorkspace(flags, false, async (ws) => {
        if (setting !== 'ota-protocol') throw new CliError(`unknown setting '${setting.slice(0, 40)}': the one setting is ota-protocol (1, 2 or auto)`, 2);
        if (!['1', '2', 'auto'].includes(value))
          throw new CliError(
            `ota-protocol takes 1 (seed 002's 4-field trigger), 2 (the mqttkit device library) or auto (detect), not '${value.slice(0, 40)}'`,
            2,
          );
        if (!(await ws.accounts.get(id)) && !(await ws.store.loadDevices()).some((d) => d.id === id))
          throw new CliError(`no device ${id} (see 'mqttkit device list')`);
        // Read by the hub at the start of each OTA job: no restart needed. The running hub writes it
        // (it updates the same record as devices report); with none running, the store is changed here.
        const setting_ = value === 'auto' ? 'auto' : (Number(value) as 1 | 2);
        const hub = hubOf(ws);
        if (hub) await hub.ok('POST', `/api/devices/${encodeURIComponent(id)}/ota-protocol`, { value: setting_ });
        else await new OtaStore(ws.db).updateInfo(id, { otaProtocolSetting: setting_ === 'auto' ? undefined : setting_ });
        console.log(
          value === 'auto'
            ? `Device ${id}: the OTA protocol is detected again (getversion's "ota"; no answer: 1).`
            : `Device ${id}: OTA jobs speak protocol ${value}${value === '1' ? ' (4-field trigger; the device reboots after each file; no firmware updates)' : ''}.`,
        );
      }),
    ),
  );

  addWorkspaceOptions(device.command('remove <id>').description('remove a device: its account, its HomeKit accessory and its retained topics'))
    .option('--json', 'print JSON')
    .action(
      action((id: string, flags: Flags) =>
        withWorkspace(flags, false, async (ws) => {
          const damaged: string[] = []; // a record the hub holds aside can be removed too
          const known = (await ws.store.loadDevices((bad) => damaged.push(bad))).some((d) => d.id === id) || damaged.includes(id);
          // A device's login only: an MQTT admin that published under its name keeps its account (as the hub's removal does).
          const account = await ws.accounts.get(id);
          const ownLogin = account === undefined || account.role === 'device';
          if (!ownLogin && !known) throw new CliError(`${id} is an MQTT admin account, not a device: remove it with 'mqttkit user remove ${id}'`);
          const deviceAccount = account?.role === 'device';
          if (!deviceAccount && !known) {
            // Only a device client mqttkit made, left in Mosquitto without its account (an interrupted add).
            if (ws.externalUrl && !account && (await withDynsec(ws, (dynsec) => dynsec.deviceClient(id))) === 'mqttkit-device') {
              await withDynsec(ws, (dynsec) => dynsec.removeDevice(id));
              console.log(`Removed Mosquitto's device client ${id}, left without its account by an interrupted 'mqttkit device add'.`);
              return;
            }
            throw new CliError(`no device ${id} (see 'mqttkit device list')`);
          }
          // Mosquitto first, and only a client mqttkit made (its device account says so): if Mosquitto does not
          // finish, nothing is removed here and the same command finishes it later.
          if (ws.externalUrl && deviceAccount)
            await withDynsec(ws, (dynsec) => dynsec.removeDevice(id)).catch((error: Error) => {
              throw new CliError(`Mosquitto did not finish removing ${id} (${error.message}): nothing else was removed; start Mosquitto and try again`);
            });
          const hadAccount = deviceAccount && (await ws.accounts.remove(id));
          const hub = hubOf(ws);
          if (hub) {
            // Its connection first (its account is gone, so it leaves no last will to bring it back), then
            // the hub takes it out of HomeKit; a device it does not hold (an account only) was only connected.
            if (ownLogin) await hub.ok('POST', `/api/devices/${encodeURIComponent(id)}/disconnect`);
            const answer = await hub.call('DELETE', `/api/devices/${encodeURIComponent(id)}`);
            if (answer.status >= 300 && answer.status !== 404) throw new CliError(String(answer.json.error));
          } else await ws.store.deleteDevice(id);
          if (flags.json) console.log(JSON.stringify({ removed: id, account: hadAccount, hubRunning: ws.hubPid !== undefined }));
          else console.log(`Device ${id} removed${ws.hubPid ? ' (the running hub takes it out of HomeKit now)' : ''}.`);
        }),
      ),
    );
  return device;
}

async function withWorkspace(flags: WorkspaceFlags, create: boolean, fn: (ws: Workspace) => Promise<void> | void): Promise<void> {
  const ws = await openWorkspace(flags, { create });
  try {
    await fn(ws);
  } finally {
    await ws.close();
  }
}

async function existing(ws: Workspace, id: string): Promise<Account> {
  const account = await ws.accounts.get(id);
  if (account?.role !== 'device') throw new CliError(`no device account ${id} (see 'mqttkit device list')`);
  return account;
}

async function add(ws: Workspace, id: string, json: boolean): Promise<void> {
  const problem = mqttAccountNameProblem(id);
  if (problem) throw new CliError(`device id ${problem}`, 2);
  if (await ws.accounts.get(id)) throw new CliError(`${id} exists already: use 'mqttkit device reset ${id}' for a new password`);
  // [E-10] a peripheral speaks only through its gateway: no account of its own (with Mosquitto, a client would be a second voice)
  const gateway = (await EspNowPairings.load(ws.db)).get(id)?.gateway;
  if (gateway) throw new CliError(`${id} is an ESP-NOW peripheral of gateway ${gateway}: it has no account of its own ('mqttkit espnow unpair ${id}' first)`);
  // A running hub makes it (so its security log names the action ); an external broker's dynamic
  // security is the CLI's to write, so that path stays here.
  const hub = ws.externalUrl ? undefined : hubOf(ws);
  if (hub) {
    const made = await hub.ok<{ password: string }>('POST', '/api/registration/devices', { id });
    printPassword(id, made.password, json, 'password');
    return;
  }
  const password = generatePassword();
  if (ws.externalUrl)
    await withDynsec(ws, async (dynsec) => {
      // A client Mosquitto has already is not mqttkit's to replace, unless it is shaped exactly as mqttkit makes
      // a device's (left by an add interrupted before the account was stored).
      const there = await dynsec.deviceClient(id);
      if (there === 'other')
        throw new CliError(
          `Mosquitto has a client ${id} already, with no account in this data dir: choose another id, or delete that client in Mosquitto first`,
        );
      if (there === 'mqttkit-device') console.error(`(Mosquitto held a device client ${id} with no account here, left by an interrupted add: replaced)`);
      await dynsec.provisionDevice(id, password);
    });
  await ws.accounts.create(id, 'device', 'active', await hashPassword(password));
  printPassword(id, password, json, 'password');
}

function printPassword(id: string, password: string, json: boolean, what: string): void {
  if (json) {
    console.log(JSON.stringify({ id, username: id, clientId: id, password }));
    return;
  }
  console.log(`Device ${id} can connect now. Configure it with (shown only this once):`);
  console.log(`  client id / username: ${id}`);
  console.log(`  ${what}: ${password}`);
}

function describe(account: Account): string {
  if (account.status === 'pending') return 'waiting for approval';
  if (account.secret === null) return 'reset: next password registers';
  return 'registered';
}

async function list(ws: Workspace, json: boolean): Promise<void> {
  const accounts = (await ws.accounts.list()).filter((a) => a.role === 'device');
  const devices = new Map((await ws.store.loadDevices()).map((d) => [d.id, d]));
  const ids = [...new Set([...accounts.map((a) => a.name), ...devices.keys()])].sort();
  const rows = ids.map((id) => {
    const account = accounts.find((a) => a.name === id);
    const device = devices.get(id);
    return {
      id,
      account: account ? describe(account) : 'none',
      state: device?.state ?? 'unknown',
      services: device?.services.length ?? 0,
      lastLogin: account?.lastLoginAt ? new Date(account.lastLoginAt).toISOString() : null,
      address: account?.lastAddress ?? null,
    };
  });
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  const now = Date.now();
  printTable(
    ['DEVICE', 'ACCOUNT', 'STATE', 'SERVICES', 'LAST LOGIN', 'ADDRESS'],
    rows.map((r) => [r.id, r.account, r.state, r.services, r.lastLogin ? ago(r.lastLogin, now) : 'never', r.address]),
    'No devices yet.',
  );
}
