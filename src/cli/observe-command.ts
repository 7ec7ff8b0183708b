/** `mqttkit cmd`, `mqttkit logs`, `mqttkit devices`, `mqttkit device show`: what devices say and are. */
import type { Command } from 'commander';
import { OtaStore } from '../store/ota-store.js';
import { hubOf } from './hub-client.js';
import { ago, printable, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type Workspace, type WorkspaceFlags, wholeNumber } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean; follow?: boolean; lines?: string; timeout?: string };

export function registerObserve(program: Command, device: Command): void {
  addWorkspaceOptions(program.command('cmd <device> <command...>').description('send a command on cmnd/<device>/OTA and print the answer'))
    .option('--timeout <S>', 'seconds to wait for the answer', '15')
    .addHelpText('after', '\nExamples:\n  $ mqttkit cmd esp32_a1b2c3d4 stats\n  $ mqttkit cmd esp32_a1b2c3d4 msg_exception')
    .action(
      action(async (deviceId: string, words: string[], flags: Flags) => {
        const timeoutS = wholeNumber(flags.timeout ?? '15', '--timeout', 1, 3600);
        const ws = await openWorkspace(flags);
        try {
          await mustKnow(ws, deviceId);
          const hub = hubOf(ws);
          if (!hub) throw new CliError(`no hub is running on ${ws.dataDir}: commands go through the running hub`);
          // The hub waits --timeout for the answer; the call itself gets a little longer.
          const answer = await hub.ok<{ answer: string }>(
            'POST',
            `/api/devices/${encodeURIComponent(deviceId)}/command`,
            { command: words.join(' '), timeoutS },
            timeoutS * 1000 + 5000,
          );
          console.log(answer.answer);
        } finally {
          await ws.close();
        }
      }),
    );

  addWorkspaceOptions(program.command('logs <device>').description("print a device's stat/<device>/Log and OTA reports"))
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --lines <N>', 'how many earlier lines', '20')
    .option('--json', 'print each line as a JSON object (one a line)')
    .addHelpText('after', '\nExamples:\n  $ mqttkit logs esp32_a1b2c3d4\n  $ mqttkit logs esp32_a1b2c3d4 -f -n 100')
    .action(
      action(async (deviceId: string, flags: Flags) => {
        // Fewer than one line is a mistake; more than the hub keeps (500 a device) shows all it has.
        const count = wholeNumber(flags.lines ?? '20', '--lines', 1);
        const ws = await openWorkspace(flags);
        try {
          const store = new OtaStore(ws.db);
          if ((await store.lastLogId(deviceId)) === 0) await mustKnow(ws, deviceId);
          const print = (line: { at: number; topic: string; text: string }) => {
            const kind = line.topic.endsWith('/OTA') ? 'OTA' : 'Log';
            // One JSON object a line (NDJSON): `-f --json | jq` sees each line as it comes.
            if (flags.json) console.log(JSON.stringify({ device: deviceId, at: new Date(line.at).toISOString(), kind, text: line.text }));
            else console.log(`${new Date(line.at).toISOString()} ${kind} ${printable(line.text)}`);
          };
          // -n counts this device's lines; ids are shared by every device, so read its lines (the hub keeps
          // at most 500 per device) and print the last n
          const earlier = async (upTo: number) => {
            const kept: Array<{ id: number; at: number; topic: string; text: string }> = [];
            let after = 0;
            for (;;) {
              const lines = (await store.logsAfter(deviceId, after)).filter((l) => l.id <= upTo);
              if (lines.length === 0) break;
              kept.push(...lines);
              after = lines.at(-1)!.id;
            }
            kept.slice(-count).forEach(print);
          };
          if (!flags.follow) return await earlier(await store.lastLogId(deviceId));
          const hub = hubOf(ws);
          if (!hub) {
            await earlier(await store.lastLogId(deviceId));
            throw new CliError(`no hub is running on ${ws.dataDir}: no new lines arrive until it starts ('mqttkit start --data-dir ${ws.dataDir}')`);
          }
          // The stream says where its lines start; the lines before come from the store.
          // Printed in the order they came: the earlier lines (read from the store) before the new ones.
          let printing = Promise.resolve();
          await hub.stream(`?logs=${encodeURIComponent(deviceId)}`, (event, data) => {
            if (event === 'hello') printing = printing.then(() => earlier((data as { logAfter: number }).logAfter));
            if (event === 'log') printing = printing.then(() => print(data as { at: number; topic: string; text: string }));
            return false;
          });
          await printing;
        } finally {
          await ws.close();
        }
      }),
    );

  const show = async (flags: Flags) => {
    const ws = await openWorkspace(flags);
    try {
      const store = new OtaStore(ws.db);
      const rows = [];
      for (const d of await ws.store.loadDevices()) {
        const info = await store.info(d.id);
        const account = await ws.accounts.get(d.id);
        const jobs = await store.deviceJobs(d.id);
        rows.push(
          ((row) => ({ ...row, health: health(row) }))({
            id: d.id,
            name: d.meta.name ?? null,
            state: d.state,
            lastSeen: new Date(d.lastSeen).toISOString(),
            address: info.address ?? account?.lastAddress ?? null,
            // [P-22] `app` is the device's `$firmware`, the version HomeKit shows (getversion's `app` only
            // when it published none); `firmware` is the runtime under it (getversion's `firmware`).
            app: d.meta.firmware ?? info.app ?? null,
            firmware: info.firmware ?? null,
            lastReboot: info.lastReboot ?? null,
            lastException: info.lastException ?? null,
            otaProtocol: info.otaProtocolSetting ?? info.otaProtocol ?? (info.answersCommands ? 2 : null),
            partition: info.partition ?? null,
            services: d.services.map((s) => ({ service: s.service, index: s.index, values: s.values })),
            ota: jobs.map((j) => ({ id: j.id, kind: j.kind, state: j.state, message: j.message, finishedAt: j.finishedAt })),
          }),
        );
      }
      return { ws, rows };
    } catch (error) {
      await ws.close();
      throw error;
    }
  };

  addWorkspaceOptions(program.command('devices').description('list devices with their state, version and health'))
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ mqttkit devices\n  $ mqttkit devices --json | jq \'.[] | select(.state == "offline") | .id\'')
    .action(
      action(async (flags: Flags) => {
        const { ws, rows } = await show(flags);
        await ws.close();
        if (flags.json) return console.log(JSON.stringify(rows, null, 2));
        const now = Date.now();
        printTable(
          ['DEVICE', 'NAME', 'STATE', 'HEALTH', 'APP', 'FIRMWARE', 'ADDRESS', 'LAST SEEN'],
          rows.map((r) => [r.id, r.name, r.state, r.health, r.app, r.firmware, r.address, ago(r.lastSeen, now)]),
          'No devices yet.',
        );
      }),
    );

  addWorkspaceOptions(device.command('show <id>').description('everything the hub knows about one device'))
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, flags: Flags) => {
        const { ws, rows } = await show(flags);
        await ws.close();
        const row = rows.find((r) => r.id === id);
        if (!row) throw new CliError(`no device ${id} (see 'mqttkit devices')`);
        if (flags.json) return console.log(JSON.stringify(row, null, 2));
        for (const [key, value] of Object.entries(row)) {
          if (key === 'services' || key === 'ota') continue;
          console.log(`${key.padEnd(14)} ${value ?? '-'}`);
        }
        for (const line of await serviceLines(row.services)) console.log(`service        ${line}`);
        for (const j of row.ota) console.log(`ota            #${j.id} ${j.kind} ${j.state} ${j.message ?? ''}`);
      }),
    );
}

/**
 * A service's values as the dashboard shows them ("Temperature sensor: Temperature 20.5 °C"), from the
 * one table of labels and units (src/core/characteristic-display.ts) and HAP's unit of each characteristic.
 */
async function serviceLines(services: Array<{ service: string; index: number; values: Record<string, unknown> }>): Promise<string[]> {
  const [{ HapCatalog }, display] = await Promise.all([import('../homekit/catalog.js'), import('../core/characteristic-display.js')]);
  const catalog = new HapCatalog();
  return services.map(({ service, index, values }) => {
    const spec = catalog.service(service);
    const readings = Object.entries(values).map(([name, value]) => {
      const facts = spec.ok ? catalog.characteristic(spec.value, name) : undefined;
      return display.reading({ name, format: facts?.ok ? facts.value.format : null, unit: facts?.ok ? (facts.value.unit ?? null) : null }, value);
    });
    return `${display.serviceLabel(service)}${index ? ` ${index}` : ''}: ${readings.join(', ') || '(no values yet)'}`;
  });
}

/**
 * One word (and why) for "does this device need me": offline, a failed update, a crash it reported,
 * or ok. The worst thing first; the details are in `mqttkit device show`.
 */
export function health(d: { state: string; lastException: string | null; lastReboot: string | null; ota: Array<{ id: number; state: string }> }): string {
  if (d.state === 'offline') return 'offline';
  const lastJob = d.ota.find((j) => j.state !== 'queued' && j.state !== 'running');
  if (lastJob && (lastJob.state === 'failed' || lastJob.state === 'rolled-back')) return `OTA #${lastJob.id} ${lastJob.state}`;
  // [O-20] "no exception recorded" is msg_exception's answer when all is well.
  if (d.lastException && !/^no exception recorded$/i.test(d.lastException.trim())) return `exception: ${d.lastException}`;
  if (d.lastReboot && /watchdog|exception|panic|crash|brownout/i.test(d.lastReboot)) return `reboot: ${d.lastReboot}`;
  return 'ok';
}

/** A device the hub has never heard of is named at once, not waited for (a typo would look like silence). */
async function mustKnow(ws: Workspace, id: string): Promise<void> {
  if ((await ws.store.loadDevices()).some((d) => d.id === id) || (await ws.accounts.get(id))?.role === 'device') return;
  throw new CliError(`no device ${id} (see 'mqttkit devices')`);
}
