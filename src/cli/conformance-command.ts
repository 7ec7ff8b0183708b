/**
 * `mqttkit conformance <device>`: checks a connected device against docs/protocol.md and docs/ota.md
 * through the running hub, and prints a pass/fail table (or JSON). It logs in to the broker with a
 * temporary admin account, made as `mqttkit user add --admin` makes one and removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { checkerAccountName } from '../conformance/checker-account.js';
import { type Context, Results } from '../conformance/context.js';
import { Probe } from '../conformance/probe.js';
import { formatJson, formatTable } from '../conformance/report.js';
import { RULES } from '../conformance/rules.js';
import { runConformance } from '../conformance/run.js';
import { generatePassword, hashPassword } from '../security/password-hash.js';
import { OtaStore } from '../store/ota-store.js';
import { readRuntime } from '../store/runtime-file.js';
import { hubOf } from './hub-client.js';
import { hubJobs } from './hub-jobs.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type WorkspaceFlags, wholeNumber, withDynsec } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean; timeout: string; sleepWait?: string; only?: string };

export function registerConformance(program: Command): void {
  addWorkspaceOptions(
    program.command('conformance <device>').description('check a connected device against the MQTT and OTA protocol (docs/protocol.md, docs/ota.md)'),
  )
    .option('--json', 'print the results as JSON (for CI)')
    .option('--timeout <S>', 'seconds to wait for any one step (an answer, a report, a reconnect; a job gets twice that)', '60')
    .option('--sleep-wait <S>', 'seconds to wait for the device to sleep, for the sleep/wake check (default: --timeout; 0 skips it)')
    .option('--only <IDS>', 'run only the checks that decide these rules, e.g. O-7 or P-1,P-14 (the ids in the table)')
    .addHelpText(
      'after',
      `
The device must be connected to the hub running on --data-dir. The checks write small files named
mqttkit-conformance-*.txt (and mqttkit-conformance/b.txt) on the device (through OTA jobs and the
checker's own transfers), reboot it twice, drop its connection once, write one writable characteristic
and then its old value back, and clear its msg_reboot and msg_exception records. Exit code 0 only
when no rule failed; "skip" rows were not tested (the row says why). docs/conformance.md says more.

Examples:
  $ mqttkit conformance esp32_a1b2c3d4
  $ mqttkit conformance esp32_a1b2c3d4 --json --timeout 30 --sleep-wait 0`,
    )
    .action(
      action(async (device: string, flags: Flags) => {
        const timeoutMs = wholeNumber(flags.timeout, '--timeout', 1, 3600) * 1000;
        const sleepWaitMs = flags.sleepWait === undefined ? timeoutMs : wholeNumber(flags.sleepWait, '--sleep-wait', 0, 86_400) * 1000;
        const only = flags.only
          ?.split(',')
          .map((id) => id.trim())
          .filter(Boolean);
        const unknown = only?.filter((id) => !RULES.some((r) => r.id === id)) ?? [];
        if (unknown.length) throw new CliError(`--only: unknown rule ${unknown.join(', ')}; the rules are ${RULES.map((r) => r.id).join(', ')}`, 2);
        const ws = await openWorkspace(flags);
        const cleanup: Array<() => Promise<void> | void> = [() => ws.close()];
        // Once, whichever comes first: the run's end, or a signal (the temporary admin account must not outlive the run).
        let cleaning: Promise<void> | undefined;
        const cleanUp = () =>
          (cleaning ??= (async () => {
            for (const step of cleanup)
              await Promise.resolve()
                .then(step)
                .catch(() => {});
          })());
        const onSignal = (signal: NodeJS.Signals) => {
          void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
        };
        const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
        for (const signal of signals) process.once(signal, onSignal);
        try {
          const hub = hubOf(ws);
          if (!hub)
            throw new CliError(
              `no hub is running on ${ws.dataDir}: the checks go through the running hub (start it with 'mqttkit start --data-dir ${ws.dataDir}')`,
            );
          const disconnect = (id: string) => hub.ok('POST', `/api/devices/${encodeURIComponent(id)}/disconnect`);
          if (!(await ws.store.loadDevices()).some((d) => d.id === device))
            throw new CliError(`no device ${device} (see 'mqttkit devices'): connect it to the hub first`);
          const runtime = readRuntime(ws.dataDir);
          const url = ws.externalUrl ?? runtime?.mqtt.address.replace('0.0.0.0', '127.0.0.1');
          if (!url) throw new CliError(`cannot tell where the hub's broker listens (${ws.dataDir}/hub.json)`);

          // A temporary admin account, as `mqttkit user add --admin` makes one.
          const name = checkerAccountName();
          const password = generatePassword();
          // Its removal is set up before it exists: a signal in between must not leave it behind.
          cleanup.unshift(async () => {
            await ws.accounts.remove(name);
            await disconnect(name).catch(() => {}); // a hub that has gone has dropped it already
            if (ws.externalUrl) await withDynsec(ws, (dynsec) => dynsec.run({ command: 'deleteClient', username: name }, ['not found'])).catch(() => {});
          });
          if (ws.externalUrl) await withDynsec(ws, (dynsec) => dynsec.createAdmin(name, password));
          await ws.accounts.create(name, 'admin', 'active', await hashPassword(password));
          const probe = await Probe.open(url, name, password, device).catch((error: Error) => {
            throw new CliError(`cannot log in to the broker at ${url} as the checker's admin account: ${error.message}`);
          });
          cleanup.unshift(() => probe.close());
          const workDir = mkdtempSync(join(tmpdir(), 'mqttkit-conformance-'));
          cleanup.unshift(() => rmSync(workDir, { recursive: true, force: true }));

          const ctx: Context = {
            id: device,
            probe,
            accounts: ws.accounts,
            ota: new OtaStore(ws.db),
            jobs: hubJobs(hub),
            devices: ws.store,
            embedded: !ws.externalUrl,
            timeoutMs,
            sleepWaitMs,
            workDir,
            results: new Results(),
            facts: {},
            say: (line) => {
              if (!flags.json) console.error(`.. ${line}`);
            },
          };
          const results = await runConformance(
            ctx,
            () => void disconnect(device).catch((error: Error) => ctx.say(`cannot drop ${device}'s connection: ${error.message}`)),
            only,
          );
          console.log(flags.json ? formatJson(device, results) : formatTable(device, results));
          if (results.some((r) => r.result === 'fail')) process.exitCode = 1;
        } finally {
          await cleanUp();
          for (const signal of signals) process.off(signal, onSignal);
        }
      }),
    );
}
