/**
 * `mqttkit ota push|sync|firmware|jobs|rollout|cancel`: queue OTA jobs with the running hub (through its
 * API: the files go up with the request, and the jobs survive restarts), follow them to the end on its
 * live event stream, or end them. `jobs` and `cancel` work with no hub running too, on the store.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { fileSizeProblem } from '../ota/file-size.js';
import { type CancelOutcome, cancelJobInStore, cancelRolloutInStore, type RolloutCancelOutcome } from '../ota/job-control.js';
import { readManifest } from '../ota/manifest.js';
import type { ManifestEntry } from '../ota/protocol.js';
import { devicePathProblem } from '../ota/protocol.js';
import { uploadsRoot } from '../ota/uploads.js';
import { FINISHED, type Job, OtaStore, type Rollout, type Transfer } from '../store/ota-store.js';
import { readRuntime } from '../store/runtime-file.js';
import { type HubClient, hubOf } from './hub-client.js';
import { UPLOAD_MS } from './hub-jobs.js';
import { OptionError, resolveStartOption } from './options.js';
import { TransferBars } from './progress.js';
import { ago, printable, printTable } from './table.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, type Workspace, type WorkspaceFlags, wholeNumber } from './workspace.js';

type Flags = WorkspaceFlags & {
  json?: boolean;
  as?: string;
  reboot?: boolean;
  devices?: string;
  canary?: string;
  concurrency?: string;
  resume?: boolean;
  wait?: boolean;
  timeout?: string;
  otaMaxFileSize?: string;
  rollout?: string;
};

const SIZE_OPTION = [
  '--ota-max-file-size <SIZE>',
  'the largest file to send, e.g. 512k or 32M (default: as the hub: config.json or 16MiB) [MQTTKIT_OTA_MAX_FILE_SIZE]',
] as const;

/** Every wait has a deadline: past it the CLI stops following (the job goes on in the hub) and says so. */
const TIMEOUT_OPTION = ['--timeout <S>', 'seconds to follow the job before leaving it to the hub (it keeps going)', '3600'] as const;

export function registerOta(program: Command): void {
  const ota = program
    .command('ota')
    .description('update files and firmware on devices over the air')
    .addHelpText(
      'after',
      `
Examples:
  $ mqttkit ota push esp32_a1b2c3d4 build/main.py
  $ mqttkit ota push esp32_a1b2c3d4 settings.json --as config.json --no-reboot
  $ mqttkit ota sync esp32_a1b2c3d4 profiles/switch/manifest.json
  $ mqttkit ota firmware esp32_a1b2c3d4 firmware.app.bin
  $ mqttkit ota rollout profiles/switch/manifest.json --devices 'relay-*' --canary 1 --concurrency 3
  $ mqttkit ota jobs
  $ mqttkit ota cancel 12
  $ mqttkit ota cancel --rollout 3

A job for a sleeping or offline device waits (across hub restarts) until the device is back.
A job ends succeeded, failed, rolled-back (firmware) or cancelled.`,
    );

  addWorkspaceOptions(ota.command('push <device> <file>').description('send one file (the device commits it and reboots)'))
    .option('--as <PATH>', 'the path on the device (default: the file name)')
    .option('--no-reboot', 'commit without rebooting')
    .option(...SIZE_OPTION)
    .option('--no-wait', 'queue the job and return')
    .option(...TIMEOUT_OPTION)
    .option('--json', 'print the finished job as JSON')
    .action(
      action((device: string, file: string, flags: Flags) =>
        withHub(flags, async (ws, hub) => {
          const local = resolve(file);
          if (!existsSync(local)) throw new CliError(`${file} does not exist`, 2);
          checkSize(file, flags, ws);
          const as = flags.as ?? local.split('/').pop()!;
          const problem = devicePathProblem(as);
          if (problem) throw new CliError(`--as: ${problem}`, 2);
          const body = { device: await known(ws, device), file: { path: as, content: readFileSync(local).toString('base64') }, reboot: flags.reboot !== false };
          await follow(hub, await queue(hub, '/api/ota/push', body), flags);
        }),
      ),
    );

  addWorkspaceOptions(ota.command('sync <device> <manifest>').description('send the files that differ from the manifest, commit, reboot, verify'))
    .option(...SIZE_OPTION)
    .option('--no-wait', 'queue the job and return')
    .option(...TIMEOUT_OPTION)
    .option('--json', 'print the finished job as JSON')
    .action(
      action((device: string, manifest: string, flags: Flags) =>
        withHub(flags, async (ws, hub) => {
          const files = upload(readManifestOrFail(manifest, flags, ws));
          await follow(hub, await queue(hub, '/api/ota/sync', { device: await known(ws, device), files }), flags);
        }),
      ),
    );

  addWorkspaceOptions(
    ota.command('firmware <device> <image>').description('write firmware to the spare partition; confirm it only if the device comes back on it'),
  )
    .option(...SIZE_OPTION)
    .option('--no-wait', 'queue the job and return')
    .option(...TIMEOUT_OPTION)
    .option('--json', 'print the finished job as JSON')
    .action(
      action((device: string, image: string, flags: Flags) =>
        withHub(flags, async (ws, hub) => {
          if (!existsSync(resolve(image))) throw new CliError(`${image} does not exist`, 2);
          checkSize(image, flags, ws);
          await follow(
            hub,
            await queue(hub, '/api/ota/firmware', { device: await known(ws, device), image: readFileSync(resolve(image)).toString('base64') }),
            flags,
          );
        }),
      ),
    );

  addWorkspaceOptions(ota.command('jobs').description('list queued, running and finished jobs'))
    .option('--json', 'print JSON')
    .action(
      action(async (flags: Flags) => {
        const ws = await openWorkspace(flags);
        try {
          const jobs = await new OtaStore(ws.db).jobs(50);
          if (flags.json) console.log(JSON.stringify(jobs, null, 2));
          else {
            const now = Date.now();
            printTable(
              ['JOB', 'KIND', 'DEVICE', 'STATE', 'CREATED', 'STARTED', 'FINISHED', 'MESSAGE'],
              jobs.map((j) => [
                `#${j.id}`,
                j.kind,
                j.device,
                j.state,
                ago(j.createdAt, now),
                ago(j.startedAt, now),
                ago(j.finishedAt, now),
                j.message ?? j.progress?.step,
              ]),
              'No OTA jobs yet.',
            );
          }
        } finally {
          await ws.close();
        }
      }),
    );

  addWorkspaceOptions(ota.command('rollout [manifest]').description('sync a fleet: canaries first, then the rest K at a time; stops at the first failure'))
    .option('--devices <PATTERN>', "which devices: 'all' or a pattern such as 'relay-*'")
    .option('--canary <N>', 'devices updated (and verified) first', '1')
    .option('--concurrency <K>', 'devices updated at once after the canaries', '2')
    .option('--resume', 'continue the last rollout (after a failure is fixed, or to follow it again)')
    .option('--timeout <S>', 'seconds to follow the rollout before leaving it to the hub (it keeps going)', '21600')
    .option(...SIZE_OPTION)
    .option('--json', 'print the result as JSON')
    .action(
      action((manifest: string | undefined, flags: Flags) =>
        withHub(flags, async (ws, hub) => {
          let id: number;
          if (flags.resume) {
            const last = await new OtaStore(ws.db).lastRolloutId();
            if (last === undefined) throw new CliError('there is no rollout to resume');
            id = last;
            await hub.ok('POST', `/api/ota/rollouts/${id}/resume`);
          } else {
            if (!manifest || !flags.devices) throw new CliError('give a manifest and --devices (or --resume)', 2);
            const entries = readManifestOrFail(manifest, flags, ws);
            const devices = await match(ws, flags.devices);
            if (devices.length === 0) throw new CliError(`no device matches '${flags.devices}'`);
            const canary = wholeNumber(flags.canary ?? '1', '--canary', 0);
            const concurrency = wholeNumber(flags.concurrency ?? '2', '--concurrency', 1);
            const body = { files: upload(entries), pattern: flags.devices, canary, concurrency, devices };
            id = (await hub.ok<{ rollout: number }>('POST', '/api/ota/rollouts', body, UPLOAD_MS)).rollout;
            if (!flags.json) console.log(`rollout #${id}: ${devices.length} devices, ${Math.min(canary, devices.length)} canary, ${concurrency} at a time`);
          }
          const timeoutS = wholeNumber(flags.timeout ?? '21600', '--timeout', 1, 7 * 24 * 3600);
          await followRollout(hub, id, flags.json === true, flags.resume ? [] : await match(ws, flags.devices ?? 'all'), timeoutS);
        }),
      ),
    );

  addWorkspaceOptions(ota.command('cancel [job]').description('end a queued or running job (a running transfer stops at once), or a whole rollout'))
    .option('--rollout <ID>', 'cancel a rollout: no other device starts, its unfinished jobs are cancelled')
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', '\nWorks whether the hub runs or not. Cancelling a job that has ended changes nothing (exit code 1).')
    .action(
      action(async (job: string | undefined, flags: Flags) => {
        if ((job === undefined) === (flags.rollout === undefined)) throw new CliError('give a job number, or --rollout <id> (see mqttkit ota jobs)', 2);
        const id = flags.rollout !== undefined ? wholeNumber(flags.rollout, '--rollout', 1) : wholeNumber(job!, 'job', 1);
        const ws = await openWorkspace(flags);
        try {
          const outcome = await cancel(ws, flags.rollout !== undefined ? 'cancel-rollout' : 'cancel-job', id);
          if (flags.json) console.log(JSON.stringify(outcome, null, 2));
          else console.log(outcome.message);
          if (outcome.outcome !== 'cancelled') process.exitCode = 1;
        } finally {
          await ws.close();
        }
      }),
    );
}

/** Who cancels from this shell: shown in the job's message. */
function canceller(): string {
  let user = '';
  try {
    user = ` as ${userInfo().username}`;
  } catch {
    // no user name in this environment (a container without /etc/passwd entry)
  }
  return `'mqttkit ota cancel'${user}`;
}

/**
 * The running hub cancels (it also stops the work in flight), through its API; with no hub running,
 * the CLI ends the job in the store itself. [O-9]
 */
async function cancel(ws: Workspace, action: 'cancel-job' | 'cancel-rollout', id: number): Promise<CancelOutcome | RolloutCancelOutcome> {
  const store = new OtaStore(ws.db);
  const hub = hubOf(ws);
  if (!hub) {
    const by = `${canceller()} (the hub was not running)`;
    const root = uploadsRoot(ws.dataDir);
    const cancelJob = (jobId: number) => cancelJobInStore(store, root, jobId, by);
    return action === 'cancel-job' ? cancelJob(id) : cancelRolloutInStore(store, id, by, cancelJob);
  }
  const answer = await hub.call('POST', action === 'cancel-job' ? `/api/ota/jobs/${id}/cancel` : `/api/ota/rollouts/${id}/cancel`, { by: canceller() });
  const outcome = ({ 200: 'cancelled', 409: 'finished', 404: 'unknown' } as const)[answer.status as 200 | 409 | 404];
  if (!outcome) throw new CliError(String(answer.json.error ?? `the hub answered ${answer.status}`));
  const message = String(answer.json.message ?? answer.json.error);
  if (action === 'cancel-rollout') return { outcome, message, jobs: (answer.json.jobs as CancelOutcome[] | undefined) ?? [] };
  return { outcome, message, ...(answer.json.job ? { job: answer.json.job as Job } : {}) };
}

async function withHub(flags: Flags, fn: (ws: Workspace, hub: HubClient) => Promise<void>): Promise<void> {
  // Bad input is refused before anything is queued.
  if (flags.timeout !== undefined) wholeNumber(flags.timeout, '--timeout', 1, 7 * 24 * 3600);
  const ws = await openWorkspace(flags);
  try {
    const hub = hubOf(ws);
    if (!hub) throw new CliError(`no hub is running on ${ws.dataDir}: start it with 'mqttkit start --data-dir ${ws.dataDir}' (jobs run in the hub)`);
    await fn(ws, hub);
  } finally {
    await ws.close();
  }
}

/** Queues a job through the API; its number. */
async function queue(hub: HubClient, path: string, body: unknown): Promise<number> {
  return (await hub.ok<{ job: number }>('POST', path, body, UPLOAD_MS)).job;
}

/** A manifest's files as the API takes them (path on the device, base64 content). */
function upload(entries: ManifestEntry[]): Array<{ path: string; content: string }> {
  return entries.map((e) => ({ path: e.path, content: readFileSync(e.local).toString('base64') }));
}

async function known(ws: Workspace, device: string): Promise<string> {
  if (!(await ws.store.loadDevices()).some((d) => d.id === device)) throw new CliError(`no device ${device} (see 'mqttkit devices')`);
  return device;
}

async function match(ws: Workspace, pattern: string): Promise<string[]> {
  const ids = (await ws.store.loadDevices()).map((d) => d.id).sort();
  if (pattern === 'all') return ids;
  const regex = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return ids.filter((id) => regex.test(id));
}

function readManifestOrFail(file: string, flags: Flags, ws: Workspace): ManifestEntry[] {
  let entries;
  try {
    entries = readManifest(file);
  } catch (error) {
    throw new CliError((error as Error).message, 2);
  }
  for (const entry of entries) checkSize(relative(process.cwd(), entry.local) || entry.local, flags, ws, `${file}: `);
  return entries;
}

/** [A-6] The OTA cap, checked on the file's size before anything reads it. */
function checkSize(file: string, flags: Flags, ws: Workspace, prefix = ''): void {
  let limit: number;
  try {
    limit = resolveStartOption<number>('otaMaxFileSize', flags.otaMaxFileSize, ws.dataDir)!;
  } catch (error) {
    if (error instanceof OptionError) throw new CliError(error.message, 2);
    throw error;
  }
  // The running hub refuses a file over its own cap (it may differ from the config: a flag at its start):
  // found out here, before the upload, not after it.
  const hubLimit = ws.hubPid ? readRuntime(ws.dataDir)?.otaMaxFileSize : undefined;
  const byHub = hubLimit !== undefined && hubLimit < limit;
  const problem = fileSizeProblem(file, statSync(resolve(file)).size, byHub ? hubLimit : limit);
  if (problem) throw new CliError(`${prefix}${problem}${byHub ? `: the running hub's limit (pid ${ws.hubPid})` : ''}`, 2);
}

type JobWithTransfers = Job & { transfers: Transfer[] };

/**
 * Follows a job to its end on the hub's live event stream, with a progress bar (on a terminal); the
 * exit code tells the outcome. A hub that stops is named within seconds; Ctrl-C leaves the job as it is.
 */
async function follow(hub: HubClient, id: number, flags: Flags): Promise<void> {
  const fetchJob = () => hub.ok<JobWithTransfers>('GET', `/api/ota/jobs/${id}`);
  if (flags.wait === false) {
    const { transfers: _, ...job } = await fetchJob();
    console.log(flags.json ? JSON.stringify(job) : `job #${id} queued`);
    return;
  }
  let bar: TransferBars | undefined;
  let job: Job | undefined;
  const announce = setTimeout(() => {
    if (job?.state === 'queued' && !flags.json) console.log(`job #${id} queued: it starts when ${job.device} is online`);
  }, 1000);
  const interrupted = () => {
    bar?.stop();
    console.error(`mqttkit: stopped following; ${leftAs(id, job)}: follow it with 'mqttkit ota jobs' (or end it with 'mqttkit ota cancel ${id}')`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  const timeoutS = wholeNumber(flags.timeout ?? '3600', '--timeout', 1, 7 * 24 * 3600);
  try {
    const ended = await hub.stream(
      '',
      async (event, data) => {
        if (event === 'hello') job = await fetchJob();
        else if (event === 'job' && (data as Job).id === id) job = data as Job;
        else return false;
        if (job.progress && !flags.json) {
          bar ??= new TransferBars([job.device], false);
          bar.update(job);
        }
        return FINISHED.includes(job.state);
      },
      timeoutS * 1000,
    );
    if (!ended) {
      bar?.stop();
      throw new CliError(
        `stopped following after ${timeoutS} s (--timeout); ${leftAs(id, job)}: follow it with 'mqttkit ota jobs' (or end it with 'mqttkit ota cancel ${id}')`,
      );
    }
  } catch (error) {
    bar?.stop();
    if (error instanceof CliError && error.message.startsWith('stopped following')) throw error;
    if (error instanceof CliError) throw new CliError(`${error.message}; ${leftAs(id, job)}: it runs when the hub is back ('mqttkit ota jobs' shows it)`);
    throw error;
  } finally {
    clearTimeout(announce);
    process.off('SIGINT', interrupted);
  }
  bar?.stop();
  report(await fetchJob(), flags.json === true);
}

/** What becomes of a job the CLI stops following. */
function leftAs(id: number, job: Job | undefined): string {
  if (job?.state === 'running') return `job #${id} keeps running in the hub`;
  return `job #${id} stays ${job?.state ?? 'queued'}`;
}

function report(job: JobWithTransfers, json: boolean): void {
  if (json) console.log(JSON.stringify(job, null, 2));
  else console.log(`${job.state === 'succeeded' ? 'ok' : job.state}: ${job.device}: ${printable(job.message ?? '')}`);
  if (job.state !== 'succeeded') process.exitCode = 1;
}

/** Follows a rollout on the live event stream: one line per job state, then the rollout's end. */
async function followRollout(hub: HubClient, id: number, json: boolean, devices: string[], timeoutS: number): Promise<void> {
  const fetchRollout = () => hub.ok<Rollout & { jobs: Job[] }>('GET', `/api/ota/rollouts/${id}`);
  const printed = new Map<number, string>();
  let bars: TransferBars | undefined;
  const show = (job: Job) => {
    if (json) return;
    if (job.progress) {
      bars ??= new TransferBars(devices, true);
      bars.update(job);
    }
    // Without bars (a job not yet started) the state changes are lines; the bars say the rest.
    if (bars || printed.get(job.id) === job.state) return;
    console.log(`  ${job.device}: ${job.state}${job.message ? ` (${printable(job.message)})` : ''}`);
    printed.set(job.id, job.state);
  };
  let ended: boolean;
  try {
    ended = await hub.stream(
      '',
      async (event, data) => {
        if (event === 'hello') {
          const rollout = await fetchRollout();
          rollout.jobs.forEach(show);
          return rollout.state !== 'running';
        }
        if (event === 'job' && (data as Job).rolloutId === id) show(data as Job);
        return event === 'rollout' && (data as Rollout).id === id && (data as Rollout).state !== 'running';
      },
      timeoutS * 1000,
    );
  } catch (error) {
    bars?.stop();
    if (error instanceof CliError)
      throw new CliError(`${error.message}; the rollout continues when it starts again (mqttkit ota rollout --resume to follow it)`);
    throw error;
  }
  if (!ended) {
    bars?.stop();
    throw new CliError(`stopped following after ${timeoutS} s (--timeout); rollout #${id} goes on in the hub (mqttkit ota rollout --resume to follow it)`);
  }
  const rollout = await fetchRollout();
  rollout.jobs.forEach(show);
  bars?.stop();
  if (json) console.log(JSON.stringify(rollout, null, 2));
  else console.log(`rollout #${id} ${rollout.state}: ${rollout.message ?? ''}`);
  if (rollout.state !== 'succeeded') process.exitCode = 1;
}
