/**
 * The OTA feature: runs queued jobs (push, sync, firmware) when their device is online, keeps a
 * retained "pending" flag so sleeping devices stay awake for them, drives fleet rollouts canary-first,
 * and records what devices say about themselves (version, last reboot, last exception).
 * Jobs live in the database, so they survive restarts and the CLI can queue and follow them.
 */
import { readFileSync } from 'node:fs';
import type { HubLink } from '../broker/hub-link.js';
import type { DeviceRecord } from '../core/device.js';
import type { EventBus } from '../core/events.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { Logger } from '../log/logger.js';
import { FINISHED, type Job, type JobProgress, type JobState, type OtaStore } from '../store/ota-store.js';
import type { DeviceChannel } from './device-channel.js';
import { readManifest } from './manifest.js';
import { FIRMWARE_TARGET, parseReport, pendingTopic, sha1, triggerMessage, triggerTopic, type TransferReport } from './protocol.js';
import { servePull } from './pull-server.js';

export interface DeviceRoute {
  /** Where the device connects from: the only address the pull server serves. */
  deviceAddress: string;
  /** Where the device reaches the hub: the pull server listens there. */
  hubAddress: string;
}

export interface OtaOptions {
  transferTimeoutMs: number;
  rebootTimeoutMs: number;
  commandTimeoutMs: number;
  /** The hub's address for devices when the broker cannot tell (external broker). */
  hubAddress?: string | undefined;
}

class JobFailure extends Error {
  constructor(
    message: string,
    readonly state: JobState = 'failed',
  ) {
    super(message);
  }
}

export class OtaService {
  readonly #running = new Map<string, number>(); // device -> job id
  readonly #pendingFlags = new Set<string>();
  readonly #rollouts = new Set<number>();
  readonly #offs: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: HubLink,
    private readonly channel: DeviceChannel,
    private readonly store: OtaStore,
    private readonly registry: DeviceRegistry,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly route: (deviceId: string) => DeviceRoute | undefined,
    private readonly options: OtaOptions,
  ) {}

  start(): void {
    this.store.requeueRunning();
    this.#offs.push(
      this.bus.on('device:announced', (device) => this.#observe(device)),
      this.bus.on('device:state', () => this.#tick()),
    );
    this.#timer = setInterval(() => this.#tick(), 300);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    for (const off of this.#offs.splice(0)) off();
  }

  /** Starts every queued job whose device is online and idle; raises or clears the pending flags. */
  #tick(): void {
    const queued = this.store.jobsIn('queued');
    const waiting = new Set(queued.map((j) => j.device));
    for (const device of waiting) this.#setPending(device, true);
    for (const device of [...this.#pendingFlags]) if (!waiting.has(device) && !this.#running.has(device)) this.#setPending(device, false);
    for (const job of queued) {
      if (this.#running.has(job.device) || this.registry.get(job.device)?.state !== 'online') continue;
      if (!this.store.startJob(job.id)) continue;
      this.#running.set(job.device, job.id);
      void this.#run(job).finally(() => {
        this.#running.delete(job.device);
        // What the device says about itself may have changed (version, reboot reason): ask again.
        const device = this.registry.get(job.device);
        if (device?.state === 'online') this.#observe(device);
        this.#tick();
      });
    }
    for (const id of this.store.runningRollouts()) {
      if (!this.#rollouts.has(id)) {
        this.#rollouts.add(id);
        void this.#driveRollout(id).finally(() => this.#rollouts.delete(id));
      }
    }
  }

  #setPending(device: string, pending: boolean): void {
    if (pending === this.#pendingFlags.has(device)) return;
    if (pending) this.#pendingFlags.add(device);
    else this.#pendingFlags.delete(device);
    // Retained, so a sleepy device sees it as soon as it wakes and subscribes. [O-7]
    this.link.publish(pendingTopic(device), pending ? '1' : '', { qos: 1, retain: true }).catch(() => {});
  }

  async #run(job: Job): Promise<void> {
    const log = this.log.child({ device: job.device, job: job.id });
    log.info(`OTA ${job.kind} started`);
    try {
      const message = job.kind === 'push' ? await this.#push(job) : job.kind === 'sync' ? await this.#sync(job) : await this.#firmware(job);
      this.store.finishJob(job.id, 'succeeded', message);
      log.info(`OTA ${job.kind} succeeded: ${message}`);
    } catch (error) {
      const state = error instanceof JobFailure ? error.state : 'failed';
      const message = (error as Error).message;
      this.store.finishJob(job.id, state, message);
      log.warn(`OTA ${job.kind} ${state}: ${message}`);
    }
  }

  #progress(job: Job, progress: JobProgress): void {
    this.store.setProgress(job.id, progress);
  }

  async #push(job: Job): Promise<string> {
    const spec = job.spec as { file: string; as: string; reboot: boolean };
    const bytes = readLocal(spec.file);
    this.#progress(job, { files: 0, filesTotal: 1, bytes: 0, bytesTotal: bytes.length, step: `sending ${spec.as}` });
    const since = Date.now();
    const report = await this.#transfer(job, spec.as, bytes, spec.reboot);
    if (!report.ok) throw new JobFailure(`${spec.as}: ${report.error ?? 'transfer failed'}`);
    this.#progress(job, { files: 1, filesTotal: 1, bytes: bytes.length, bytesTotal: bytes.length, step: 'done' });
    if (!spec.reboot) {
      const committed = await this.channel.commandJson<{ committed: string[]; error?: string }>(job.device, 'commit', this.options.commandTimeoutMs);
      if (committed.error) throw new JobFailure(committed.error);
      return `${spec.as} (${bytes.length} bytes) transferred and committed`;
    }
    await this.#backOnline(job.device, since);
    return `${spec.as} (${bytes.length} bytes) transferred; the device rebooted and is back`;
  }

  async #sync(job: Job): Promise<string> {
    const spec = job.spec as { manifest: string };
    const entries = readManifest(spec.manifest).map((e) => ({ ...e, bytes: readLocal(e.local) }));
    const wanted = new Map(entries.map((e) => [e.path, sha1(e.bytes)]));
    this.#progress(job, { files: 0, filesTotal: entries.length, bytes: 0, bytesTotal: 0, step: 'asking for hashes' });
    const before = await this.channel.commandJson<Record<string, string>>(job.device, 'hashes', this.options.commandTimeoutMs);
    const changed = entries.filter((e) => before[e.path] !== wanted.get(e.path));
    if (changed.length === 0) return `up to date (${entries.length} files)`;
    const bytesTotal = changed.reduce((n, e) => n + e.bytes.length, 0);
    let bytesDone = 0;
    for (const [i, entry] of changed.entries()) {
      this.#progress(job, { files: i, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: `sending ${entry.path}` });
      const report = await this.#transfer(job, entry.path, entry.bytes, false);
      if (!report.ok) throw new JobFailure(`${entry.path}: ${report.error ?? 'transfer failed'} (nothing was committed)`);
      bytesDone += entry.bytes.length;
    }
    this.#progress(job, { files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'committing' });
    const committed = await this.channel.commandJson<{ committed: string[]; error?: string }>(job.device, 'commit', this.options.commandTimeoutMs);
    if (committed.error) throw new JobFailure(committed.error);
    this.#progress(job, { files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'rebooting' });
    const since = Date.now();
    await this.channel.command(job.device, 'reboot', this.options.commandTimeoutMs);
    await this.#backOnline(job.device, since);
    this.#progress(job, { files: changed.length, filesTotal: changed.length, bytes: bytesDone, bytesTotal, step: 'verifying' });
    const after = await this.channel.commandJson<Record<string, string>>(job.device, 'hashes', this.options.commandTimeoutMs);
    const wrong = entries.filter((e) => after[e.path] !== wanted.get(e.path)).map((e) => e.path);
    if (wrong.length > 0) throw new JobFailure(`after the update these files differ from the manifest: ${wrong.join(', ')}`);
    return `${changed.length} of ${entries.length} files sent (${bytesDone} bytes), committed, rebooted, verified`;
  }

  async #firmware(job: Job): Promise<string> {
    const spec = job.spec as { image: string };
    const image = readLocal(spec.image);
    const partitions = await this.channel.commandJson<{ count: number }>(job.device, 'partitions', this.options.commandTimeoutMs);
    if (partitions.count < 2) throw new JobFailure(`${job.device} has a single firmware partition: it cannot be updated over the air`);
    const before = (await this.channel.commandJson<{ firmware: string }>(job.device, 'getversion', this.options.commandTimeoutMs)).firmware;
    this.#progress(job, { files: 0, filesTotal: 1, bytes: 0, bytesTotal: image.length, step: 'sending the image' });
    const report = await this.#transfer(job, FIRMWARE_TARGET, image, false);
    if (!report.ok) throw new JobFailure(`firmware: ${report.error ?? 'transfer failed'}`);
    this.#progress(job, { files: 1, filesTotal: 1, bytes: image.length, bytesTotal: image.length, step: 'rebooting into the new firmware' });
    const since = Date.now();
    await this.channel.command(job.device, 'reboot', this.options.commandTimeoutMs);
    // [O-6] keepversion only for a device that came back, answers, and runs the new version.
    let after: string;
    try {
      await this.#backOnline(job.device, since);
      after = (await this.channel.commandJson<{ firmware: string }>(job.device, 'getversion', this.options.commandTimeoutMs)).firmware;
    } catch (error) {
      throw new JobFailure(`rolled back: ${(error as Error).message}; keepversion not sent`, 'rolled-back');
    }
    if (after === before) throw new JobFailure(`rolled back: the device came back on the old version ${before}; keepversion not sent`, 'rolled-back');
    await this.channel.command(job.device, 'keepversion', this.options.commandTimeoutMs);
    this.store.updateInfo(job.device, { firmware: after });
    return `firmware ${before} -> ${after}, confirmed (keepversion sent)`;
  }

  /** One pull transfer [O-1]: serve the bytes, trigger the device, wait for its report. */
  async #transfer(job: Job, target: string, bytes: Buffer, reboot: boolean): Promise<TransferReport> {
    const route = await this.#routeTo(job.device);
    const hash = sha1(bytes);
    const server = await servePull({ bytes, host: route.hubAddress, allowedAddress: route.deviceAddress, timeoutMs: this.options.transferTimeoutMs, log: this.log, deviceId: job.device });
    const waiting = this.channel.next(job.device, 'OTA', this.options.transferTimeoutMs, (text) => {
      const report = parseReport(text);
      return report.ok && report.value.file === target;
    });
    let report: TransferReport;
    try {
      await this.link.publish(triggerTopic(job.device), triggerMessage(route.hubAddress, server.port, target, hash, reboot), { qos: 1, retain: false });
      const parsed = parseReport(await waiting.answer);
      report = parsed.ok ? parsed.value : { file: target, ok: false, hash: null, error: parsed.error };
    } catch (error) {
      waiting.cancel();
      report = { file: target, ok: false, hash: null, error: (error as Error).message };
    } finally {
      server.close();
    }
    this.store.recordTransfer({ jobId: job.id, device: job.device, file: target, bytes: bytes.length, ok: report.ok, error: report.error, at: Date.now() });
    return report;
  }

  async #routeTo(device: string): Promise<DeviceRoute> {
    const known = this.route(device);
    if (known) return known;
    // An external broker does not tell us the device's address: the device does, after `open`. [O-4]
    const waiting = this.channel.next(device, 'OTA', this.options.commandTimeoutMs, (text) => text.includes('"address"'));
    await this.channel.command(device, 'open', this.options.commandTimeoutMs);
    const { address } = JSON.parse(await waiting.answer) as { address?: string };
    if (!address || !this.options.hubAddress) throw new JobFailure(`cannot route a transfer to ${device}: ${address ? 'set --ota-host to the hub\'s address' : 'the device did not say its address'}`);
    return { deviceAddress: address, hubAddress: this.options.hubAddress };
  }

  /** Waits for a live `$state online` after `since` (the device rebooted and reconnected). */
  #backOnline(device: string, since: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${device} did not come back online within ${Math.round(this.options.rebootTimeoutMs / 1000)} s`));
      }, this.options.rebootTimeoutMs);
      const off = this.bus.on('device:announced', (d) => {
        if (d.id === device && Date.now() > since) {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    });
  }

  /** Canary devices first; then the rest, K at a time; stop at the first failure. [O-8] */
  async #driveRollout(id: number): Promise<void> {
    const rollout = this.store.rollout(id);
    if (!rollout) return;
    const { devices, canary, concurrency, manifest } = rollout.spec;
    const latest = () => new Map(this.store.rolloutJobs(id).map((j) => [j.device, j]));
    const finished = (j: Job | undefined) => j !== undefined && FINISHED.includes(j.state);
    const failedJob = () => [...latest().values()].find((j) => finished(j) && j.state !== 'succeeded');
    const waitFor = async (ids: string[]) => {
      while (!ids.every((d) => finished(latest().get(d)))) await sleep(200);
    };
    const launch = (device: string) => {
      const job = latest().get(device);
      if (!job || (finished(job) && job.state !== 'succeeded')) this.store.addJob('sync', device, { manifest }, id);
    };

    const canaries = devices.slice(0, canary);
    canaries.forEach(launch);
    await waitFor(canaries);
    let failure = failedJob();
    if (failure) {
      this.store.finishRollout(id, 'failed', `canary ${failure.device} failed (${failure.message}); the other ${devices.length - canaries.length} devices were not touched`);
      return;
    }
    const rest = devices.slice(canary);
    const inFlight = new Set<string>();
    for (const device of rest) {
      if (latest().get(device)?.state === 'succeeded') continue;
      while (inFlight.size >= concurrency) {
        await sleep(200);
        for (const d of inFlight) if (finished(latest().get(d))) inFlight.delete(d);
      }
      if ((failure = failedJob())) break;
      launch(device);
      inFlight.add(device);
    }
    await waitFor([...inFlight]);
    failure = failedJob();
    if (failure) {
      const untouched = rest.filter((d) => !latest().has(d)).length;
      this.store.finishRollout(id, 'failed', `${failure.device} failed (${failure.message}); ${untouched} devices were not touched`);
      return;
    }
    this.store.finishRollout(id, 'succeeded', `${devices.length} devices updated`);
  }

  /** Learns what a device says about itself when it comes online (only devices that answer commands). */
  #observe(device: DeviceRecord): void {
    const route = this.route(device.id);
    if (route) this.store.updateInfo(device.id, { address: route.deviceAddress });
    const info = this.store.info(device.id);
    if (info.answersCommands === false || this.#running.has(device.id)) return;
    void (async () => {
      try {
        const version = await this.channel.commandJson<{ firmware?: string; app?: string }>(device.id, 'getversion', 3000);
        const lastReboot = await this.channel.command(device.id, 'msg_reboot', 3000);
        const lastException = await this.channel.command(device.id, 'msg_exception', 3000);
        this.store.updateInfo(device.id, { answersCommands: true, firmware: version.firmware, app: version.app, lastReboot, lastException });
      } catch {
        if (info.answersCommands === undefined) this.store.updateInfo(device.id, { answersCommands: false });
      }
    })();
  }
}

function readLocal(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new JobFailure(`cannot read ${file}: ${(error as Error).message}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

