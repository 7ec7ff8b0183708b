/**
 * `mqttkit query series|memory|firmware`: the questions of src/store/queries.ts, asked of the running
 * hub's API (`GET /api/query`) or, when no hub runs, of the store itself. A table for people, `--json`
 * for scripts (the API's answer as it is).
 */
import type { Command } from 'commander';
import { type QueryAnswer, queryInput, runQuery, StoreQueries } from '../store/queries.js';
import { hubOf } from './hub-client.js';
import { ago, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type WorkspaceFlags } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean };

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--from`/`--to`: ms since the epoch, an ISO time (`2026-11-01`, `2026-11-01T08:00Z`) or a time ago (`7d`, `12h`). */
export function parseWhen(text: string, flag: string, now = Date.now()): number {
  const trimmed = text.trim();
  const ago_ = DURATION.exec(trimmed);
  if (ago_) return now - Number(ago_[1]) * UNIT_MS[ago_[2] as keyof typeof UNIT_MS];
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (!Number.isFinite(at))
    throw new CliError(`${flag}: '${text.slice(0, 60)}' is not a time: give an ISO time (2026-11-01T08:00Z), ms since 1970, or a time ago (7d, 12h, 30m)`, 2);
  return at;
}

/** Asks the hub (or the store), with the same checks either way; prints the answer. */
async function ask(params: Record<string, string | undefined>, flags: Flags): Promise<void> {
  const defined = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const checked = queryInput.safeParse(defined);
  if (!checked.success) throw new CliError(checked.error.issues.map((i) => `${optionOf(i.path.join('.'))}: ${i.message}`).join('; '), 2);
  const ws = await openWorkspace(flags);
  let answer: QueryAnswer;
  try {
    const hub = hubOf(ws);
    answer = hub
      ? await hub.ok<QueryAnswer>('GET', `/api/query?${new URLSearchParams(defined).toString()}`)
      : await runQuery(new StoreQueries(ws.db), checked.data);
  } finally {
    await ws.close();
  }
  if (flags.json) return console.log(JSON.stringify(answer, null, 2));
  print(answer);
}

/** The option a query field comes from, for error messages. */
const optionOf = (field: string) => ({ bucket: '--bucket', from: '--from', to: '--to', below: '--below', index: '--index', of: '--runtime' })[field] ?? field;

function print(answer: QueryAnswer): void {
  const round = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
  if (answer.kind === 'series')
    return printTable(
      ['BUCKET START', 'COUNT', 'AVG', 'MIN', 'MAX'],
      answer.buckets.map((b) => [new Date(b.start).toISOString(), b.count, round(b.avg), round(b.min), round(b.max)]),
      `No values between ${new Date(answer.from).toISOString()} and ${new Date(answer.to).toISOString()}.`,
    );
  const now = Date.now();
  if (answer.kind === 'memory')
    return printTable(
      ['DEVICE', 'MEM FREE', 'STATS FROM'],
      answer.devices.map((d) => [d.device, d.memFree, ago(d.statsAt, now)]),
      `No device's last stats answer reports mem_free under ${answer.below} bytes (ask one: mqttkit cmd <device> stats).`,
    );
  printTable(
    ['DEVICE', answer.of === 'app' ? 'APP VERSION' : 'RUNTIME'],
    answer.devices.map((d) => [d.device, d.version ?? '(never said)']),
    `Every device says ${answer.of === 'app' ? 'app version' : 'runtime'} ${answer.version}.`,
  );
}

export function registerQuery(program: Command): void {
  const query = program.command('query').description('ask the history and what devices say about themselves (GET /api/query)');

  addWorkspaceOptions(
    query.command('series <device> <service> <characteristic>').description("a characteristic's values over a time range, in buckets (avg, min, max, count)"),
  )
    .option('--index <N>', 'the service index (for a device with several services of one type)', '0')
    .option('--from <WHEN>', 'start: ISO time, ms since 1970, or a time ago (7d, 12h)', '24h')
    .option('--to <WHEN>', 'end (not included); default: now')
    .option('--bucket <DURATION>', 'bucket size: 1s to 366d (at most 5000 buckets)', '1h')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mqttkit query series esp32_a1b2c3d4 TemperatureSensor CurrentTemperature --from 7d --bucket 1h\n  $ mqttkit query series esp32_a1b2c3d4 Switch On --from 2026-11-01 --to 2026-11-02 --bucket 15m --json',
    )
    .action(
      action(async (device: string, service: string, characteristic: string, flags: Flags & { index: string; from: string; to?: string; bucket: string }) => {
        const now = Date.now();
        const params = {
          kind: 'series',
          device,
          service,
          characteristic,
          index: flags.index,
          from: String(parseWhen(flags.from, '--from', now)),
          to: flags.to === undefined ? String(now) : String(parseWhen(flags.to, '--to', now)),
          bucket: flags.bucket,
        };
        await ask(params, flags);
      }),
    );

  addWorkspaceOptions(query.command('memory').description('devices whose last stats answer reports mem_free under a threshold ([O-22])'))
    .requiredOption('--below <BYTES>', 'the threshold in bytes')
    .option('--json', 'print JSON')
    .addHelpText('after', "\nExamples:\n  $ mqttkit query memory --below 20000\n  $ mqttkit query memory --below 20000 --json | jq -r '.devices[].device'")
    .action(action(async (flags: Flags & { below: string }) => ask({ kind: 'memory', below: flags.below }, flags)));

  addWorkspaceOptions(query.command('firmware <version>').description('devices whose app version (or runtime, --runtime) is not <version> ([P-22])'))
    .option('--runtime', "compare the runtime (getversion's firmware) instead of the app version ($firmware)")
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ mqttkit query firmware 1.4.2\n  $ mqttkit query firmware 1.27.0 --runtime')
    .action(
      action(async (version: string, flags: Flags & { runtime?: boolean }) => ask({ kind: 'firmware', version, of: flags.runtime ? 'runtime' : 'app' }, flags)),
    );
}
