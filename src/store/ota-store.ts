/**
 * OTA jobs, the transfer log, rollouts, device logs and per-device observations. Columns holding JSON
 * are checked by schema when read: a damaged row is named (table, row, field) and ends as failed, so
 * the hub keeps running and other jobs run. [D-3]
 */
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import type { SqlEngine } from './engine/sql-engine.js';

export type JobKind = 'push' | 'sync' | 'firmware';
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'rolled-back' | 'cancelled';
/** The end states: a job in one of them never changes again. [O-9] */
export const FINISHED: readonly JobState[] = ['succeeded', 'failed', 'rolled-back', 'cancelled'];

export interface JobProgress {
  files: number;
  filesTotal: number;
  bytes: number;
  bytesTotal: number;
  step: string;
  /** [O-26] Where the job's time went, once its run is over. */
  timing?: JobTiming;
}

/** [O-26] Who had the job at a moment: the hub itself, the device (answering, reacting, rebooting), or the bytes on their way. */
export type TimingWho = 'hub' | 'device' | 'wire';

/** [O-26] A job's time from its start to the end of its run, in ms, split by who had it; `spans` in order. */
export interface JobTiming {
  totalMs: number;
  hubMs: number;
  deviceMs: number;
  wireMs: number;
  /** The first transfer's trigger until its first byte went (the device's request in between). */
  firstByteMs?: number;
  spans: Array<{ who: TimingWho; what: string; ms: number }>;
}

export interface Job {
  id: number;
  kind: JobKind;
  device: string;
  spec: Record<string, unknown>;
  state: JobState;
  message: string | null;
  progress: JobProgress | null;
  rolloutId: number | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface Transfer {
  jobId: number | null;
  device: string;
  file: string;
  bytes: number;
  ok: boolean;
  error: string | null;
  at: number;
}

export interface Rollout {
  id: number;
  spec: { manifest: string; pattern: string; canary: number; concurrency: number; devices: string[] };
  state: 'running' | 'succeeded' | 'failed' | 'cancelled';
  message: string | null;
  createdAt: number;
}

export interface DeviceInfo {
  address?: string;
  firmware?: string;
  app?: string;
  lastReboot?: string;
  lastException?: string;
  answersCommands?: boolean;
  /** [O-12] Its `getversion` said `"rid": 1`: commands go with a request id it echoes. */
  echoesRid?: boolean;
  /** What `getversion` said: `"ota"` (the OTA protocol it speaks) and `"partition"` (the running firmware partition). [O-6] [O-11] */
  otaProtocol?: number;
  partition?: string;
  /** Set by hand (`mqttkit device set <id> ota-protocol 1|2`); absent: detected. [O-11] */
  otaProtocolSetting?: 1 | 2;
  /** Set from the dashboard (POST /api/devices/:id/name): the name people see, and HomeKit's default one. */
  name?: string;
  /** People's notes on the device (POST /api/devices/:id/notes), at most NOTES_MAX characters. */
  notes?: string;
  /** [O-22] The device's last `stats` answer (its known fields), and when the hub heard it (`at`, ms). */
  stats?: StatsRecord;
}

/** [O-22] What is kept of a `stats` answer: the protocol's counters, `mem_free`, and when it came. */
export interface StatsRecord {
  at: number;
  uptime_s?: number;
  reconnects?: number;
  published?: number;
  received?: number;
  dropped?: number;
  queued?: number;
  mem_free?: number | null;
}

interface JobRow {
  id: number;
  kind: JobKind;
  device: string;
  spec: string;
  state: JobState;
  message: string | null;
  progress: string | null;
  rollout_id: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

const path = z.string().min(1).max(4096);
/** What each job kind's `spec` column holds (written by the API, read by the OTA service). */
const JOB_SPECS = {
  push: z.looseObject({ file: path, as: z.string().min(1).max(1024), reboot: z.boolean() }),
  sync: z.looseObject({ manifest: path }),
  firmware: z.looseObject({ image: path }),
} as const;
const jobKind = z.enum(['push', 'sync', 'firmware']);
const jobState = z.enum(['queued', 'running', 'succeeded', 'failed', 'rolled-back', 'cancelled']);
const whole = z.number().int().min(0);
const ms = z.number().min(0);
const timingSchema = z.looseObject({
  totalMs: ms,
  hubMs: ms,
  deviceMs: ms,
  wireMs: ms,
  firstByteMs: ms.optional(),
  spans: z.array(z.looseObject({ who: z.enum(['hub', 'device', 'wire']), what: z.string().max(200), ms })).max(100),
});
const progressSchema = z.looseObject({
  files: whole,
  filesTotal: whole,
  bytes: whole,
  bytesTotal: whole,
  step: z.string().max(1000),
  timing: timingSchema.optional(),
});
const rolloutSpec = z.looseObject({
  manifest: path,
  pattern: z.string().max(1000),
  canary: whole,
  concurrency: z.number().int().min(1),
  devices: z.array(z.string().max(200)),
});
const rolloutState = z.enum(['running', 'succeeded', 'failed', 'cancelled']);
// A device may answer null where it has nothing to say (e.g. getversion's "app"): stored as null, read as absent.
/** The longest text kept of what a device says (an exception's traceback fits; a 64 KiB answer does not). */
const MAX_SAID = 10_000;
const said = z
  .string()
  .max(MAX_SAID)
  .nullish()
  .transform((v) => v ?? undefined);
const infoSchema = z.looseObject({
  address: said,
  firmware: said,
  app: said,
  lastReboot: said,
  lastException: said,
  answersCommands: z.boolean().optional(),
  echoesRid: z.boolean().optional(),
  otaProtocol: z.number().int().min(1).max(99).optional(),
  partition: said,
  otaProtocolSetting: z.union([z.literal(1), z.literal(2)]).optional(),
  name: said,
  notes: said,
  // A kept answer that no longer fits is dropped alone (asked again, it comes back), not the whole row.
  stats: z
    .looseObject({
      at: z.number().min(0),
      uptime_s: z.number().optional(),
      reconnects: z.number().optional(),
      published: z.number().optional(),
      received: z.number().optional(),
      dropped: z.number().optional(),
      queued: z.number().optional(),
      mem_free: z.number().nullable().optional(),
    })
    .optional()
    .catch(undefined),
});

/** Told of a row that cannot be used (the hub logs it; the CLI prints it). */
export type OnDamagedRow = (where: string, problem: string) => void;
const printDamaged: OnDamagedRow = (where, problem) => console.error(`mqttkit: ${where}: ${problem}`);

const LOG_KEEP_PER_DEVICE = 500;
const NO_SPEC: Record<string, unknown> = {};

export class OtaStore {
  readonly #onDamaged: OnDamagedRow;
  /** Who hears that a job or rollout was queued, started or ended (the OTA scheduler: no poll). */
  readonly #changeListeners = new Set<() => void>();
  /** Per device, the info update under way: each reads the one before it, none is lost. */
  readonly #infoUpdates = new Map<string, Promise<void>>();
  readonly #progressWrites = new Map<number, Promise<void>>();

  constructor(
    readonly engine: SqlEngine,
    onDamaged: OnDamagedRow = printDamaged,
  ) {
    this.#onDamaged = onDamaged;
  }

  /** Calls `listener` after a job or rollout is queued, started or ended; returns the function that stops it. */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#changeListeners) listener();
  }

  async addJob(kind: JobKind, device: string, spec: Record<string, unknown>, rolloutId: number | null = null): Promise<number> {
    const id = await this.engine.insert("INSERT INTO ota_jobs (kind, device, spec, state, rollout_id, created_at) VALUES (?, ?, ?, 'queued', ?, ?)", [
      kind,
      device,
      JSON.stringify(spec),
      rolloutId,
      Date.now(),
    ]);
    this.#changed();
    return id;
  }

  /**
   * A row as a job. A row whose kind, state, spec or progress cannot be read ends as failed (if it had
   * not ended), with a message naming the row and the field; it never reaches the job runners.
   */
  async #toJob(r: JobRow): Promise<Job> {
    const kind = jobKind.safeParse(r.kind);
    const state = jobState.safeParse(r.state);
    const spec = kind.success ? parseJson(r.spec, JOB_SPECS[kind.data]) : undefined;
    const progress = r.progress === null ? undefined : parseJson(r.progress, progressSchema);
    const job: Job = {
      id: r.id,
      kind: r.kind,
      device: r.device,
      spec: spec?.ok ? spec.value : NO_SPEC,
      state: r.state,
      message: r.message,
      progress: progress?.ok ? progress.value : null,
      rolloutId: r.rollout_id,
      createdAt: r.created_at,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
    };
    const problem = !kind.success
      ? `kind: '${String(r.kind).slice(0, 40)}' is not push, sync or firmware`
      : !state.success
        ? `state: '${String(r.state).slice(0, 40)}' is not a job state`
        : spec && !spec.ok
          ? `spec: ${spec.error}`
          : progress && !progress.ok
            ? `progress: ${progress.error}`
            : undefined;
    if (problem === undefined) return job;
    const message = `ota_jobs row ${r.id}: ${problem}: the job cannot run (its stored row is damaged); queue it again`;
    if (!state.success || !FINISHED.includes(state.data)) {
      this.#onDamaged(`job #${r.id}`, message);
      // A row whose state is not one the hub knows is not matched by `finishJob`: it is failed by id.
      await this.engine.run(
        "UPDATE ota_jobs SET state = 'failed', message = ?, finished_at = ? WHERE id = ? AND state NOT IN ('succeeded', 'failed', 'rolled-back', 'cancelled')",
        [message, Date.now(), r.id],
      );
      return { ...job, state: 'failed', message, finishedAt: Date.now() };
    }
    // An ended job keeps its end; only what it shows is left out.
    return job;
  }

  async #jobs(sql: string, params: ReadonlyArray<string | number>): Promise<Job[]> {
    const jobs: Job[] = [];
    for (const row of await this.engine.all<JobRow>(sql, params)) jobs.push(await this.#toJob(row));
    return jobs;
  }

  async job(id: number): Promise<Job | undefined> {
    const row = await this.engine.get<JobRow>('SELECT * FROM ota_jobs WHERE id = ?', [id]);
    return row ? this.#toJob(row) : undefined;
  }

  async jobs(limit = 100): Promise<Job[]> {
    return this.#jobs('SELECT * FROM ota_jobs ORDER BY id DESC LIMIT ?', [limit]);
  }

  async jobsIn(state: JobState): Promise<Job[]> {
    return (await this.#jobs('SELECT * FROM ota_jobs WHERE state = ? ORDER BY id', [state])).filter((j) => j.state === state);
  }

  async deviceJobs(device: string): Promise<Job[]> {
    return this.#jobs('SELECT * FROM ota_jobs WHERE device = ? ORDER BY id DESC LIMIT 20', [device]);
  }

  async rolloutJobs(id: number): Promise<Job[]> {
    return this.#jobs('SELECT * FROM ota_jobs WHERE rollout_id = ? ORDER BY id', [id]);
  }

  /** Marks a queued job running; false if someone else did. */
  async startJob(id: number): Promise<boolean> {
    const { changes } = await this.engine.run("UPDATE ota_jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'", [Date.now(), id]);
    return this.#notify(changes === 1);
  }

  /** After a hub restart, jobs that were running start over. */
  async requeueRunning(): Promise<void> {
    await this.engine.run("UPDATE ota_jobs SET state = 'queued', message = ? WHERE state = 'running'", ['the hub restarted during this job; it runs again']);
  }

  /** Progress writes of one job land in the order they were made (a job's steps do not wait for them). */
  setProgress(id: number, progress: JobProgress): Promise<void> {
    const text = JSON.stringify(progress);
    const before = this.#progressWrites.get(id) ?? Promise.resolve();
    const write = before.catch(() => {}).then(() => this.engine.run('UPDATE ota_jobs SET progress = ? WHERE id = ?', [text, id]).then(() => {}));
    const settled = write.catch(() => {});
    this.#progressWrites.set(id, settled);
    void settled.then(() => {
      if (this.#progressWrites.get(id) === settled) this.#progressWrites.delete(id);
    });
    return write;
  }

  /** Resolves when the job's progress writes made so far are done (whether they worked or not). */
  async progressSaved(id: number): Promise<void> {
    await this.#progressWrites.get(id);
  }

  /** Ends a queued or running job; false if it had ended already (its end stays). */
  async finishJob(id: number, state: JobState, message: string): Promise<boolean> {
    // Only an unfinished job ends: the first end wins (a cancel is not overwritten by the run it stopped).
    const { changes } = await this.engine.run("UPDATE ota_jobs SET state = ?, message = ?, finished_at = ? WHERE id = ? AND state IN ('queued', 'running')", [
      state,
      message,
      Date.now(),
      id,
    ]);
    return this.#notify(changes === 1);
  }

  /** Queued and running jobs: those that still need their files. */
  async unfinishedJobs(): Promise<Job[]> {
    return (await this.#jobs("SELECT * FROM ota_jobs WHERE state IN ('queued', 'running') ORDER BY id", [])).filter((j) => !FINISHED.includes(j.state));
  }

  async recordTransfer(t: Transfer): Promise<void> {
    await this.engine.run('INSERT INTO ota_transfers (job_id, device, file, bytes, ok, error, at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      t.jobId,
      t.device,
      t.file,
      t.bytes,
      t.ok ? 1 : 0,
      t.error,
      t.at,
    ]);
  }

  async transfers(jobId: number): Promise<Transfer[]> {
    const rows = await this.engine.all<{ job_id: number | null; device: string; file: string; bytes: number; ok: number; error: string | null; at: number }>(
      'SELECT * FROM ota_transfers WHERE job_id = ? ORDER BY id',
      [jobId],
    );
    return rows.map((r) => ({ jobId: r.job_id, device: r.device, file: r.file, bytes: r.bytes, ok: r.ok === 1, error: r.error, at: r.at }));
  }

  async addRollout(spec: Rollout['spec']): Promise<number> {
    const id = await this.engine.insert("INSERT INTO rollouts (spec, state, created_at) VALUES (?, 'running', ?)", [JSON.stringify(spec), Date.now()]);
    this.#changed();
    return id;
  }

  async rollout(id: number): Promise<Rollout | undefined> {
    const row = await this.engine.get<{ id: number; spec: string; state: Rollout['state']; message: string | null; created_at: number }>(
      'SELECT * FROM rollouts WHERE id = ?',
      [id],
    );
    if (!row) return undefined;
    const spec = parseJson(row.spec, rolloutSpec);
    const state = rolloutState.safeParse(row.state);
    if (spec.ok && state.success) return { id: row.id, spec: spec.value, state: state.data, message: row.message, createdAt: row.created_at };
    // A damaged rollout cannot be driven: it ends as failed, named, and nothing of it starts.
    const problem = `rollouts row ${row.id}: ${!spec.ok ? `spec: ${spec.error}` : `state: '${String(row.state).slice(0, 40)}' is not a rollout state`}`;
    const message = `${problem}: the rollout cannot run (its stored row is damaged); start a new one with 'mqttkit ota rollout'`;
    this.#onDamaged(`rollout #${row.id}`, message);
    await this.finishRollout(row.id, 'failed', message);
    return { id: row.id, spec: { manifest: '', pattern: '', canary: 0, concurrency: 1, devices: [] }, state: 'failed', message, createdAt: row.created_at };
  }

  async runningRollouts(): Promise<number[]> {
    return (await this.engine.all<{ id: number }>("SELECT id FROM rollouts WHERE state = 'running' ORDER BY id")).map((r) => r.id);
  }

  /** Ends a running rollout; false if it had ended already. */
  async finishRollout(id: number, state: Rollout['state'], message: string): Promise<boolean> {
    const { changes } = await this.engine.run("UPDATE rollouts SET state = ?, message = ?, finished_at = ? WHERE id = ? AND state = 'running'", [
      state,
      message,
      Date.now(),
      id,
    ]);
    return this.#notify(changes === 1);
  }

  /** `mqttkit ota rollout --resume`: the rollout runs again (the hub skips devices already updated); false if unknown. */
  async resumeRollout(id: number): Promise<boolean> {
    return this.#notify((await this.engine.run("UPDATE rollouts SET state = 'running', message = NULL WHERE id = ?", [id])).changes === 1);
  }

  #notify(changed: boolean): boolean {
    if (changed) this.#changed();
    return changed;
  }

  async lastRolloutId(): Promise<number | undefined> {
    return (await this.engine.get<{ id: number }>('SELECT id FROM rollouts ORDER BY id DESC LIMIT 1'))?.id;
  }

  /** Keeps one device log line; returns it as `logsAfter` would (its id orders it). */
  async appendLog(device: string, topic: string, text: string): Promise<{ id: number; topic: string; text: string; at: number }> {
    const at = Date.now();
    const id = await this.engine.insert('INSERT INTO device_logs (device, topic, text, at) VALUES (?, ?, ?, ?)', [device, topic, text, at]);
    await this.engine.run(
      'DELETE FROM device_logs WHERE device = ? AND id <= (SELECT id FROM device_logs WHERE device = ? ORDER BY id DESC LIMIT 1 OFFSET ?)',
      [device, device, LOG_KEEP_PER_DEVICE],
    );
    return { id, topic, text, at };
  }

  async logsAfter(device: string, afterId: number, limit = 200): Promise<Array<{ id: number; topic: string; text: string; at: number }>> {
    return this.engine.all('SELECT id, topic, text, at FROM device_logs WHERE device = ? AND id > ? ORDER BY id LIMIT ?', [device, afterId, limit]);
  }

  async lastLogId(device: string): Promise<number> {
    return (await this.engine.get<{ id: number }>('SELECT COALESCE(MAX(id), 0) AS id FROM device_logs WHERE device = ?', [device]))?.id ?? 0;
  }

  async info(device: string): Promise<DeviceInfo> {
    const row = await this.engine.get<{ info: string }>('SELECT info FROM device_info WHERE device = ?', [device]);
    return row ? this.#parseInfo(device, row.info) : {};
  }

  /** What is known of every device, in one statement (`GET /api/devices`: never a query per device). */
  async infos(): Promise<Map<string, DeviceInfo>> {
    const rows = await this.engine.all<{ device: string; info: string }>('SELECT device, info FROM device_info');
    return new Map(rows.map((r) => [r.device, this.#parseInfo(r.device, r.info)]));
  }

  #parseInfo(device: string, text: string): DeviceInfo {
    const parsed = parseJson(text, infoSchema);
    if (parsed.ok) return parsed.value;
    // Observations are learned again from the device; a hand-set --ota-protocol must be set again.
    this.#onDamaged(
      `device_info row ${device}`,
      `${parsed.error}: what the hub knows of ${device} starts afresh (set 'mqttkit device set ${device} ota-protocol' again if you had)`,
    );
    return {};
  }

  /** A removed device's info (versions, answers, the name and notes a person gave it). */
  async forgetDevice(device: string): Promise<void> {
    await this.engine.run('DELETE FROM device_info WHERE device = ?', [device]);
  }

  /** Merges `change` into what is known of the device; updates of one device run one after another. */
  updateInfo(device: string, change: DeviceInfo): Promise<void> {
    const before = this.#infoUpdates.get(device) ?? Promise.resolve();
    const update = before.catch(() => {}).then(() => this.#updateInfo(device, change));
    const settled = update.catch(() => {});
    this.#infoUpdates.set(device, settled);
    void settled.then(() => {
      if (this.#infoUpdates.get(device) === settled) this.#infoUpdates.delete(device);
    });
    return update;
  }

  async #updateInfo(device: string, change: DeviceInfo): Promise<void> {
    // Cut here, not refused on reading: one over-long answer (a device's 64 KiB msg_exception) must not
    // make the whole row unreadable and take the name and notes a person gave the device with it.
    const bounded = Object.fromEntries(
      Object.entries(change).map(([k, v]) => [k, typeof v === 'string' ? withoutNul(v.length > MAX_SAID ? `${v.slice(0, MAX_SAID - 1)}…` : v) : v]),
    );
    const info = JSON.stringify({ ...(await this.info(device)), ...bounded });
    await this.engine.run(
      'INSERT INTO device_info (device, info, updated_at) VALUES (?, ?, ?) ON CONFLICT(device) DO UPDATE SET info = excluded.info, updated_at = excluded.updated_at',
      [device, info, Date.now()],
    );
  }
}

/** PostgreSQL's JSONB cannot hold U+0000 (the row would be refused): a device's NUL becomes U+FFFD on both engines. */
const withoutNul = (text: string) => (text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text);
