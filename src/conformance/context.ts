/** What every group of checks works with: the probe, the hub's stores, the limits, and the results so far. */
import type { AccountStore } from '../store/account-store.js';
import type { Job, JobKind, OtaStore } from '../store/ota-store.js';
import type { StateStore } from '../store/state-store.js';
import type { Probe } from './probe.js';
import { type Outcome, RULES, type RuleId, type RuleResult } from './rules.js';

/** OTA jobs through the running hub's API (the CLI implements it: src/cli/hub-jobs.ts). */
export interface HubJobs {
  /** Queues a job as `mqttkit ota push/sync` do (`spec`: `{file, as, reboot}` or `{manifest}`); its number. */
  queue(kind: JobKind, device: string, spec: Record<string, unknown>): Promise<number>;
  /** The job once it has ended, or as it is after `ms`. */
  finished(id: number, ms: number): Promise<Job>;
  cancel(id: number, by: string): Promise<void>;
}

export interface Context {
  id: string;
  probe: Probe;
  jobs: HubJobs;
  accounts: AccountStore;
  ota: OtaStore;
  devices: StateStore;
  /** With the embedded broker the hub can drop a device's connection; an external broker cannot. */
  embedded: boolean;
  /** The longest wait for one step (an answer, a report, a job, a reconnect). */
  timeoutMs: number;
  /** How long to wait for the device to go to sleep on its own (the sleep/wake check). */
  sleepWaitMs: number;
  /** A folder for the small generated files the OTA checks send. */
  workDir: string;
  results: Results;
  /** What the device said about itself. */
  facts: Facts;
  /** Progress lines for a person watching (not in --json). */
  say(line: string): void;
}

export interface Facts {
  version?: Record<string, unknown>;
  /** The device's files as `hashes` last answered. */
  hashes?: Record<string, string>;
  /** The device's address as the hub or its `open` answer knows it. */
  address?: string;
}

/** A command's answer is due within this (the hub waits 15 s for `mqttkit cmd`). */
export const COMMAND_MS = 10_000;

export class Results {
  readonly #results = new Map<RuleId, { result: Outcome; reason: string }>();

  pass(id: RuleId, reason = ''): void {
    this.#set(id, 'pass', reason);
  }

  fail(id: RuleId, reason: string): void {
    this.#set(id, 'fail', reason);
  }

  skip(id: RuleId, reason: string): void {
    this.#set(id, 'skip', reason);
  }

  /** Pass when `problem` is undefined, else fail with it. */
  check(id: RuleId, problem: string | undefined, passReason = ''): void {
    if (problem === undefined) this.pass(id, passReason);
    else this.fail(id, problem);
  }

  has(id: RuleId): boolean {
    return this.#results.has(id);
  }

  /** A failed check keeps its failure: a later pass of the same rule does not hide it. */
  #set(id: RuleId, result: Outcome, reason: string): void {
    if (this.#results.get(id)?.result === 'fail') return;
    this.#results.set(id, { result, reason });
  }

  /** Every rule in table order; one never reached is a skip that says so. */
  all(stoppedBecause?: string): RuleResult[] {
    return RULES.map((rule) => ({
      ...rule,
      ...(this.#results.get(rule.id) ?? { result: 'skip' as const, reason: `not tested: ${stoppedBecause ?? 'not reached'}` }),
    }));
  }
}
