/**
 * `mqttkit ota push|sync|firmware|jobs|rollout|cancel`: queue OTA jobs for the running hub (through the
 * data dir's database, where they survive restarts), follow them to the end, or end them.
 */
import { existsSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { relative, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { fileSizeProblem } from '../ota/file-size.js';
import { cancelJobInStore, cancelRolloutInStore, type CancelOutcome, type RolloutCancelOutcome } from '../ota/job-control.js';
import { readManifest } from '../ota/manifest.js';
import { uploadsRoot } from '../ota/uploads.js';
import { devicePathProblem } from '../ota/protocol.js';
import { FINISHED, OtaStore, type Job } from '../store/ota-store.js';
import { OptionError, resolveStartOption } from './options.js';
import { action, addWorkspaceOptions, CliError, openWorkspace, wholeNumber, type Workspace, type WorkspaceFlags } from './workspace.js';

type Flags = WorkspaceFlags & { json?: boolean; as?: string; reboot?: boolean; devices?: string; canary?: string; concurrency?: string; resume?: boolean; wait?: boolean; otaMaxFileSize?: string; rollout?: string };

const SIZE_OPTION = ['--ota-max-file-size <SIZE>', 'the largest file to send, e.g. 512k or 32M (default: as the hub: config.json or 16MiB) [MQTTKIT_OTA_MAX_FILE_SIZE]'] as const;

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
    .option('--json', 'print the finished job as JSON')
    .action(
      action((device: string, file: string, flags: Flags) =>
        withHub(flags, async (ws, store) => {
          const local = resolve(file);
          if (!existsSync(local)) throw new CliError(`${file} does not exist`, 2);
          checkSize(file, flags, ws);
          const as = flags.as ?? local.split('/').pop()!;
          const problem = devicePathProblem(as);
          if (problem) throw new CliError(`--as: ${problem}`, 2);
          await follow(store, store.addJob('push', known(ws, device), { file: local, as, reboot: flags.reboot !== false }), flags);
        }),
      ),
    );

  addWorkspaceOptions(ota.command('sync <device> <manifest>').description('send the files that differ from the manifest, commit, reboot, verify'))
    .option(...SIZE_OPTION)
    .option('--no-wait', 'queue the job and return')
    .option('--json', 'print the finished job as JSON')
    .action(
      action((device: string, manifest: string, flags: Flags) =>
        withHub(flags, async (ws, store) => {
          readManifestOrFail(manifest, flags, ws);
          await follow(store, store.addJob('sync', known(ws, device), { manifest: resolve(manifest) }), flags);
        }),
      ),
    );

  addWorkspaceOptions(ota.command('firmware <device> <image>').description('write firmware to the spare partition; confirm it only if the device comes back on it'))
    .option(...SIZE_OPTION)
    .option('--no-wait', 'queue the job and return')
    .option('--json', 'print the finished job as JSON')
    .action(
      action((device: string, image: string, flags: Flags) =>
        withHub(flags, async (ws, store) => {
          if (!existsSync(resolve(image))) throw new CliError(`${image} does not exist`, 2);
          checkSize(image, flags, ws);
          await follow(store, store.addJob('firmware', known(ws, device), { image: resolve(image) }), flags);
        }),
      ),
    );

  addWorkspaceOptions(ota.command('jobs').description('list queued, running and finished jobs'))
    .option('--json', 'print JSON')
    .action(
      action((flags: Flags) => {
        const ws = openWorkspace(flags);
        try {
          const jobs = new OtaStore(ws.db).jobs(50);
          if (flags.json) console.log(JSON.stringify(jobs, null, 2));
          else if (jobs.length === 0) console.log('No OTA jobs yet.');
          else for (const j of jobs) console.log(`#${j.id}  ${j.kind.padEnd(8)} ${j.device.padEnd(24)} ${j.state.padEnd(11)} ${j.message ?? j.progress?.step ?? ''}`);
        } finally {
          ws.close();
        }
      }),
    );

  addWorkspaceOptions(ota.command('rollout [manifest]').description('sync a fleet: canaries first, then the rest K at a time; stops at the first failure'))
    .option('--devices <PATTERN>', "which devices: 'all' or a pattern such as 'relay-*'")
    .option('--canary <N>', 'devices updated (and verified) first', '1')
    .option('--concurrency <K>', 'devices updated at once after the canaries', '2')
    .option('--resume', 'continue the last rollout (after a failure is fixed, or to follow it again)')
    .option(...SIZE_OPTION)
    .option('--json', 'print the result as JSON')
    .action(
      action((manifest: string | undefined, flags: Flags) =>
        withHub(flags, async (ws, store) => {
          let id: number;
          if (flags.resume) {
            const last = store.lastRolloutId();
            if (last === undefined) throw new CliError('there is no rollout to resume');
            id = last;
            ws.db.prepare("UPDATE rollouts SET state = 'running', message = NULL WHERE id = ?").run(id);
          } else {
            if (!manifest || !flags.devices) throw new CliError('give a manifest and --devices (or --resume)', 2);
            readManifestOrFail(manifest, flags, ws);
            const devices = match(ws, flags.devices);
            if (devices.length === 0) throw new CliError(`no device matches '${flags.devices}'`);
            const canary = wholeNumber(flags.canary ?? '1', '--canary', 0);
            const concurrency = wholeNumber(flags.concurrency ?? '2', '--concurrency', 1);
            id = store.addRollout({ manifest: resolve(manifest), pattern: flags.devices, canary, concurrency, devices });
            if (!flags.json) console.log(`rollout #${id}: ${devices.length} devices, ${Math.min(canary, devices.length)} canary, ${concurrency} at a time`);
          }
          await followRollout(ws, store, id, flags.json === true);
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
        const ws = openWorkspace(flags);
        try {
          const outcome = await cancel(ws, flags.rollout !== undefined ? 'cancel-rollout' : 'cancel-job', id);
          if (flags.json) console.log(JSON.stringify(outcome, null, 2));
          else console.log(outcome.message);
          if (outcome.outcome !== 'cancelled') process.exitCode = 1;
        } finally {
          ws.close();
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
 * The running hub cancels (it also stops the work in flight), through a request in the database;
 * with no hub running, the CLI ends the job in the database itself. [O-9]
 */
async function cancel(ws: Workspace, action: 'cancel-job' | 'cancel-rollout', id: number): Promise<CancelOutcome | RolloutCancelOutcome> {
  const store = new OtaStore(ws.db);
  if (!ws.hubPid) {
    const by = `${canceller()} (the hub was not running)`;
    const root = uploadsRoot(ws.dataDir);
    const cancelJob = (jobId: number) => cancelJobInStore(store, root, jobId, by);
    return action === 'cancel-job' ? cancelJob(id) : cancelRolloutInStore(store, id, by, cancelJob);
  }
  const request = ws.accounts.requests.add(action, String(id), canceller());
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { done, result } = ws.accounts.requests.result(request);
    if (done) return result as CancelOutcome | RolloutCancelOutcome;
    if (Date.now() > deadline) throw new CliError(`the hub on ${ws.dataDir} (pid ${ws.hubPid}) did not handle the cancel within 10 s; it may be busy or stuck: try again, or stop it and cancel then`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function withHub(flags: WorkspaceFlags, fn: (ws: Workspace, store: OtaStore) => Promise<void>): Promise<void> {
  const ws = openWorkspace(flags);
  try {
    if (!ws.hubPid) throw new CliError(`no hub is running on ${ws.dataDir}: start it with 'mqttkit start --data-dir ${ws.dataDir}' (jobs run in the hub)`);
    await fn(ws, new OtaStore(ws.db));
  } finally {
    ws.close();
  }
}

function known(ws: Workspace, device: string): string {
  if (!ws.store.loadDevices().some((d) => d.id === device)) throw new CliError(`no device ${device} (see 'mqttkit devices')`);
  return device;
}

function match(ws: Workspace, pattern: string): string[] {
  const ids = ws.store.loadDevices().map((d) => d.id).sort();
  if (pattern === 'all') return ids;
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return ids.filter((id) => regex.test(id));
}

function readManifestOrFail(file: string, flags: Flags, ws: Workspace): void {
  let entries;
  try {
    entries = readManifest(file);
  } catch (error) {
    throw new CliError((error as Error).message, 2);
  }
  for (const entry of entries) checkSize(relative(process.cwd(), entry.local) || entry.local, flags, ws, `${file}: `);
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
  const problem = fileSizeProblem(file, statSync(resolve(file)).size, limit);
  if (problem) throw new CliError(`${prefix}${problem}`, 2);
}


/** Follows a job to its end with a progress bar (on a terminal); the exit code tells the outcome. */
async function follow(store: OtaStore, id: number, flags: Flags): Promise<void> {
  if (flags.wait === false) {
    console.log(flags.json ? JSON.stringify(store.job(id)) : `job #${id} queued`);
    return;
  }
  const tty = process.stdout.isTTY === true && !flags.json;
  const bar = tty ? new cliProgress.SingleBar({ format: ' {bar} {percentage}% | {value}/{total} bytes | {step}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  let announced = false;
  const queuedAt = Date.now();
  let job = store.job(id)!;
  while (!FINISHED.includes(job.state)) {
    if (job.state === 'queued' && !announced && !flags.json && Date.now() - queuedAt > 1000) {
      console.log(`job #${id} queued: it starts when ${job.device} is online`);
      announced = true;
    }
    if (bar && job.progress) {
      if (!bar.isActive) bar.start(Math.max(1, job.progress.bytesTotal), 0, { step: job.progress.step });
      bar.setTotal(Math.max(1, job.progress.bytesTotal));
      bar.update(job.progress.bytes, { step: job.progress.step });
    }
    await new Promise((r) => setTimeout(r, 200));
    job = store.job(id)!;
  }
  bar?.stop();
  report(job, flags.json === true, store);
}

function report(job: Job, json: boolean, store: OtaStore): void {
  if (json) console.log(JSON.stringify({ ...job, transfers: store.transfers(job.id) }, null, 2));
  else console.log(`${job.state === 'succeeded' ? 'ok' : job.state}: ${job.device}: ${job.message ?? ''}`);
  if (job.state !== 'succeeded') process.exitCode = 1;
}

async function followRollout(ws: Workspace, store: OtaStore, id: number, json: boolean): Promise<void> {
  const printed = new Map<string, string>();
  for (;;) {
    const rollout = store.rollout(id)!;
    for (const job of store.rolloutJobs(id)) {
      const line = `${job.device}: ${job.state}${job.message ? ` (${job.message})` : ''}`;
      if (!json && printed.get(`${job.id}`) !== job.state) {
        console.log(`  ${line}`);
        printed.set(`${job.id}`, job.state);
      }
    }
    if (rollout.state !== 'running') {
      if (json) console.log(JSON.stringify({ ...rollout, jobs: store.rolloutJobs(id) }, null, 2));
      else console.log(`rollout #${id} ${rollout.state}: ${rollout.message ?? ''}`);
      if (rollout.state !== 'succeeded') process.exitCode = 1;
      return;
    }
    if (!ws.hubPid) throw new CliError('the hub stopped; the rollout continues when it starts again (mqttkit ota rollout --resume to follow it)');
    await new Promise((r) => setTimeout(r, 300));
  }
}
