/** OTA jobs, the transfer log, rollouts, device logs and per-device observations. */
import type { Db } from './database.js';

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

const toJob = (r: JobRow): Job => ({
  id: r.id,
  kind: r.kind,
  device: r.device,
  spec: JSON.parse(r.spec) as Record<string, unknown>,
  state: r.state,
  message: r.message,
  progress: r.progress ? (JSON.parse(r.progress) as JobProgress) : null,
  rolloutId: r.rollout_id,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

const LOG_KEEP_PER_DEVICE = 500;

export class OtaStore {
  readonly #s;
  /** Who hears that a job or rollout was queued, started or ended (the OTA scheduler: no poll). */
  readonly #changeListeners = new Set<() => void>();

  constructor(db: Db) {
    this.#s = {
      addJob: db.prepare("INSERT INTO ota_jobs (kind, device, spec, state, rollout_id, created_at) VALUES (?, ?, ?, 'queued', ?, ?)"),
      job: db.prepare<[number], JobRow>('SELECT * FROM ota_jobs WHERE id = ?'),
      jobs: db.prepare<[number], JobRow>('SELECT * FROM ota_jobs ORDER BY id DESC LIMIT ?'),
      jobsIn: db.prepare<[string], JobRow>('SELECT * FROM ota_jobs WHERE state = ? ORDER BY id'),
      rolloutJobs: db.prepare<[number], JobRow>('SELECT * FROM ota_jobs WHERE rollout_id = ? ORDER BY id'),
      deviceJobs: db.prepare<[string], JobRow>('SELECT * FROM ota_jobs WHERE device = ? ORDER BY id DESC LIMIT 20'),
      start: db.prepare("UPDATE ota_jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'"),
      requeue: db.prepare("UPDATE ota_jobs SET state = 'queued', message = ? WHERE state = 'running'"),
      progress: db.prepare('UPDATE ota_jobs SET progress = ? WHERE id = ?'),
      // Only an unfinished job ends: the first end wins (a cancel is not overwritten by the run it stopped).
      finish: db.prepare("UPDATE ota_jobs SET state = ?, message = ?, finished_at = ? WHERE id = ? AND state IN ('queued', 'running')"),
      unfinished: db.prepare<[], JobRow>("SELECT * FROM ota_jobs WHERE state IN ('queued', 'running') ORDER BY id"),
      transfer: db.prepare('INSERT INTO ota_transfers (job_id, device, file, bytes, ok, error, at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      transfers: db.prepare<[number], { job_id: number | null; device: string; file: string; bytes: number; ok: number; error: string | null; at: number }>('SELECT * FROM ota_transfers WHERE job_id = ? ORDER BY id'),
      addRollout: db.prepare("INSERT INTO rollouts (spec, state, created_at) VALUES (?, 'running', ?)"),
      rollout: db.prepare<[number], { id: number; spec: string; state: Rollout['state']; message: string | null; created_at: number }>('SELECT * FROM rollouts WHERE id = ?'),
      runningRollouts: db.prepare<[], { id: number }>("SELECT id FROM rollouts WHERE state = 'running' ORDER BY id"),
      finishRollout: db.prepare("UPDATE rollouts SET state = ?, message = ?, finished_at = ? WHERE id = ? AND state = 'running'"),
      lastRollout: db.prepare<[], { id: number }>('SELECT id FROM rollouts ORDER BY id DESC LIMIT 1'),
      resumeRollout: db.prepare("UPDATE rollouts SET state = 'running', message = NULL WHERE id = ?"),
      log: db.prepare('INSERT INTO device_logs (device, topic, text, at) VALUES (?, ?, ?, ?)'),
      prune: db.prepare('DELETE FROM device_logs WHERE device = ? AND id <= (SELECT id FROM device_logs WHERE device = ? ORDER BY id DESC LIMIT 1 OFFSET ?)'),
      logsAfter: db.prepare<[string, number, number], { id: number; topic: string; text: string; at: number }>('SELECT id, topic, text, at FROM device_logs WHERE device = ? AND id > ? ORDER BY id LIMIT ?'),
      lastLogId: db.prepare<[string], { id: number }>('SELECT COALESCE(MAX(id), 0) AS id FROM device_logs WHERE device = ?'),
      info: db.prepare<[string], { info: string }>('SELECT info FROM device_info WHERE device = ?'),
      setInfo: db.prepare('INSERT INTO device_info (device, info, updated_at) VALUES (?, ?, ?) ON CONFLICT(device) DO UPDATE SET info = excluded.info, updated_at = excluded.updated_at'),
    };
  }

  /** Calls `listener` after a job or rollout is queued, started or ended; returns the function that stops it. */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#changeListeners) listener();
  }

  addJob(kind: JobKind, device: string, spec: Record<string, unknown>, rolloutId: number | null = null): number {
    const id = Number(this.#s.addJob.run(kind, device, JSON.stringify(spec), rolloutId, Date.now()).lastInsertRowid);
    this.#changed();
    return id;
  }

  job(id: number): Job | undefined {
    const row = this.#s.job.get(id);
    return row ? toJob(row) : undefined;
  }

  jobs(limit = 100): Job[] {
    return this.#s.jobs.all(limit).map(toJob);
  }

  jobsIn(state: JobState): Job[] {
    return this.#s.jobsIn.all(state).map(toJob);
  }

  deviceJobs(device: string): Job[] {
    return this.#s.deviceJobs.all(device).map(toJob);
  }

  rolloutJobs(id: number): Job[] {
    return this.#s.rolloutJobs.all(id).map(toJob);
  }

  /** Marks a queued job running; false if someone else did. */
  startJob(id: number): boolean {
    return this.#notify(this.#s.start.run(Date.now(), id).changes === 1);
  }

  /** After a hub restart, jobs that were running start over. */
  requeueRunning(): void {
    this.#s.requeue.run('the hub restarted during this job; it runs again');
  }

  setProgress(id: number, progress: JobProgress): void {
    this.#s.progress.run(JSON.stringify(progress), id);
  }

  /** Ends a queued or running job; false if it had ended already (its end stays). */
  finishJob(id: number, state: JobState, message: string): boolean {
    return this.#notify(this.#s.finish.run(state, message, Date.now(), id).changes === 1);
  }

  /** Queued and running jobs: those that still need their files. */
  unfinishedJobs(): Job[] {
    return this.#s.unfinished.all().map(toJob);
  }

  recordTransfer(t: Transfer): void {
    this.#s.transfer.run(t.jobId, t.device, t.file, t.bytes, t.ok ? 1 : 0, t.error, t.at);
  }

  transfers(jobId: number): Transfer[] {
    return this.#s.transfers.all(jobId).map((r) => ({ jobId: r.job_id, device: r.device, file: r.file, bytes: r.bytes, ok: r.ok === 1, error: r.error, at: r.at }));
  }

  addRollout(spec: Rollout['spec']): number {
    const id = Number(this.#s.addRollout.run(JSON.stringify(spec), Date.now()).lastInsertRowid);
    this.#changed();
    return id;
  }

  rollout(id: number): Rollout | undefined {
    const row = this.#s.rollout.get(id);
    return row ? { id: row.id, spec: JSON.parse(row.spec) as Rollout['spec'], state: row.state, message: row.message, createdAt: row.created_at } : undefined;
  }

  runningRollouts(): number[] {
    return this.#s.runningRollouts.all().map((r) => r.id);
  }

  /** Ends a running rollout; false if it had ended already. */
  finishRollout(id: number, state: Rollout['state'], message: string): boolean {
    return this.#notify(this.#s.finishRollout.run(state, message, Date.now(), id).changes === 1);
  }

  /** `mqttkit ota rollout --resume`: the rollout runs again (the hub skips devices already updated); false if unknown. */
  resumeRollout(id: number): boolean {
    return this.#notify(this.#s.resumeRollout.run(id).changes === 1);
  }

  #notify(changed: boolean): boolean {
    if (changed) this.#changed();
    return changed;
  }

  lastRolloutId(): number | undefined {
    return this.#s.lastRollout.get()?.id;
  }

  /** Keeps one device log line; returns it as `logsAfter` would (its id orders it). */
  appendLog(device: string, topic: string, text: string): { id: number; topic: string; text: string; at: number } {
    const at = Date.now();
    const id = Number(this.#s.log.run(device, topic, text, at).lastInsertRowid);
    this.#s.prune.run(device, device, LOG_KEEP_PER_DEVICE);
    return { id, topic, text, at };
  }

  logsAfter(device: string, afterId: number, limit = 200): Array<{ id: number; topic: string; text: string; at: number }> {
    return this.#s.logsAfter.all(device, afterId, limit);
  }

  lastLogId(device: string): number {
    return this.#s.lastLogId.get(device)?.id ?? 0;
  }

  info(device: string): DeviceInfo {
    const row = this.#s.info.get(device);
    return row ? (JSON.parse(row.info) as DeviceInfo) : {};
  }

  updateInfo(device: string, change: DeviceInfo): void {
    this.#s.setInfo.run(device, JSON.stringify({ ...this.info(device), ...change }), Date.now());
  }
}
