/** `mqttkit cmd`, `mqttkit logs`, `mqttkit devices`, `mqttkit device show`: what devices say and are. */
import type { Command } from 'commander';
import { OtaStore } from '../store/ota-store.js';
import { hubOf } from './hub-client.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type WorkspaceFlags, wholeNumber } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean; follow?: boolean; lines?: string; timeout?: string };

export function registerObserve(program: Command, device: Command): void {
  addWorkspaceOptions(program.command('cmd <device> <command...>').description('send a command on cmnd/<device>/OTA and print the answer'))
    .option('--timeout <S>', 'seconds to wait for the answer', '15')
    .addHelpText('after', '\nExamples:\n  $ mqttkit cmd esp32_a1b2c3d4 stats\n  $ mqttkit cmd esp32_a1b2c3d4 msg_exception')
    .action(
      action(async (deviceId: string, words: string[], flags: Flags) => {
        const timeoutS = wholeNumber(flags.timeout ?? '15', '--timeout', 1, 3600);
        const ws = openWorkspace(flags);
        try {
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
          ws.close();
        }
      }),
    );

  addWorkspaceOptions(program.command('logs <device>').description("print a device's stat/<device>/Log and OTA reports"))
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --lines <N>', 'how many earlier lines', '20')
    .addHelpText('after', '\nExamples:\n  $ mqttkit logs esp32_a1b2c3d4\n  $ mqttkit logs esp32_a1b2c3d4 -f -n 100')
    .action(
      action(async (deviceId: string, flags: Flags) => {
        const ws = openWorkspace(flags);
        try {
          const store = new OtaStore(ws.db);
          const print = (line: { at: number; topic: string; text: string }) =>
            console.log(`${new Date(line.at).toISOString()} ${line.topic.endsWith('/OTA') ? 'OTA' : 'Log'} ${line.text}`);
          // -n counts this device's lines; ids are shared by every device, so read its lines (the hub keeps
          // at most 500 per device) and print the last n
          const earlier = (upTo: number) => {
            const kept: Array<{ id: number; at: number; topic: string; text: string }> = [];
            let after = 0;
            for (;;) {
              const lines = store.logsAfter(deviceId, after).filter((l) => l.id <= upTo);
              if (lines.length === 0) break;
              kept.push(...lines);
              after = lines.at(-1)!.id;
            }
            kept.slice(-(Number(flags.lines) || 20)).forEach(print);
          };
          if (!flags.follow) return earlier(store.lastLogId(deviceId));
          const hub = hubOf(ws);
          if (!hub) {
            earlier(store.lastLogId(deviceId));
            throw new CliError(`no hub is running on ${ws.dataDir}: no new lines arrive until it starts ('mqttkit start --data-dir ${ws.dataDir}')`);
          }
          // The stream says where its lines start; the lines before come from the store.
          await hub.stream(`?logs=${encodeURIComponent(deviceId)}`, (event, data) => {
            if (event === 'hello') earlier((data as { logAfter: number }).logAfter);
            if (event === 'log') print(data as { at: number; topic: string; text: string });
            return false;
          });
        } finally {
          ws.close();
        }
      }),
    );

  const show = (flags: Flags) => {
    const ws = openWorkspace(flags);
    try {
      const store = new OtaStore(ws.db);
      return {
        ws,
        rows: ws.store.loadDevices().map((d) => {
          const info = store.info(d.id);
          return {
            id: d.id,
            name: d.meta.name ?? null,
            state: d.state,
            lastSeen: new Date(d.lastSeen).toISOString(),
            address: info.address ?? ws.accounts.get(d.id)?.lastAddress ?? null,
            // [P-22] `app` is the device's `$firmware`, the version HomeKit shows (getversion's `app` only
            // when it published none); `firmware` is the runtime under it (getversion's `firmware`).
            app: d.meta.firmware ?? info.app ?? null,
            firmware: info.firmware ?? null,
            lastReboot: info.lastReboot ?? null,
            lastException: info.lastException ?? null,
            otaProtocol: info.otaProtocolSetting ?? info.otaProtocol ?? (info.answersCommands ? 2 : null),
            partition: info.partition ?? null,
            services: d.services.map((s) => ({ service: s.service, index: s.index, values: s.values })),
            ota: store.deviceJobs(d.id).map((j) => ({ id: j.id, kind: j.kind, state: j.state, message: j.message, finishedAt: j.finishedAt })),
          };
        }),
      };
    } catch (error) {
      ws.close();
      throw error;
    }
  };

  addWorkspaceOptions(program.command('devices').description('list devices with their state, version and health'))
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ mqttkit devices\n  $ mqttkit devices --json | jq \'.[] | select(.state == "offline") | .id\'')
    .action(
      action((flags: Flags) => {
        const { ws, rows } = show(flags);
        ws.close();
        if (flags.json) return console.log(JSON.stringify(rows, null, 2));
        if (rows.length === 0) return console.log('No devices yet.');
        for (const r of rows)
          console.log(
            `${r.id.padEnd(24)} ${r.state.padEnd(9)} app ${(r.app ?? '-').padEnd(10)} firmware ${(r.firmware ?? '-').padEnd(10)} ${r.address ?? '-'}  last seen ${r.lastSeen}`,
          );
      }),
    );

  addWorkspaceOptions(device.command('show <id>').description('everything the hub knows about one device'))
    .option('--json', 'print JSON')
    .action(
      action((id: string, flags: Flags) => {
        const { ws, rows } = show(flags);
        ws.close();
        const row = rows.find((r) => r.id === id);
        if (!row) throw new CliError(`no device ${id} (see 'mqttkit devices')`);
        if (flags.json) return console.log(JSON.stringify(row, null, 2));
        for (const [key, value] of Object.entries(row)) {
          if (key === 'services' || key === 'ota') continue;
          console.log(`${key.padEnd(14)} ${value ?? '-'}`);
        }
        for (const s of row.services) console.log(`service        ${s.service}${s.index ? `/${s.index}` : ''} ${JSON.stringify(s.values)}`);
        for (const j of row.ota) console.log(`ota            #${j.id} ${j.kind} ${j.state} ${j.message ?? ''}`);
      }),
    );
}
