/**
 * What the management commands (`device`, `user`, …) work on: the data dir's database, whether a hub
 * runs there, and which broker it uses. They work with the hub running or not.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import type { DynsecClient } from '../broker/mosquitto/dynsec.js';
import { parseJson } from '../core/json.js';
import { AccountStore } from '../store/account-store.js';
import { readBrokerCredentials } from '../store/broker-credentials.js';
import { DATABASE_FILE } from '../store/database.js';
import { openEngine } from '../store/engine/open.js';
import type { SqlEngine } from '../store/engine/sql-engine.js';
import { readRuntime, runningHubPid } from '../store/runtime-file.js';
import { checkState, describeProblems } from '../store/state-check.js';
import { StateStore } from '../store/state-store.js';
import { CONFIG_FILE, OptionError, resolveStartOption } from './options.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface Workspace {
  dataDir: string;
  /** The store's engine: the data dir's SQLite file, or PostgreSQL with --database-url. */
  db: SqlEngine;
  accounts: AccountStore;
  store: StateStore;
  hubPid: number | undefined;
  /** Set when devices live on an external broker (Mosquitto) rather than the embedded one. */
  externalUrl: string | undefined;
  close(): Promise<void>;
}

export interface WorkspaceFlags {
  dataDir?: string;
  mqttUrl?: string;
  databaseUrl?: string;
}

export function addWorkspaceOptions(command: Command): Command {
  return command
    .option('--data-dir <DIR>', "the hub's data dir (default: ./data) [MQTTKIT_DATA_DIR]")
    .option('--mqtt-url <URL>', "the external broker devices use, if any (default: from the data dir's config) [MQTTKIT_MQTT_URL]")
    .option('--database-url <URL>', "the hub's PostgreSQL database, if it uses one (default: from the data dir's config) [MQTTKIT_DATABASE_URL]");
}

export async function openWorkspace(flags: WorkspaceFlags, { create = false } = {}): Promise<Workspace> {
  const dataDir = resolve(flags.dataDir ?? process.env.MQTTKIT_DATA_DIR ?? './data');
  const databaseUrl = databaseUrlOf(flags, dataDir);
  // [D-3] A command must not turn a damaged store into a new one either (SQLite takes an empty file for an empty database).
  const problems = checkState(dataDir, { deep: false, external: databaseUrl !== undefined });
  if (problems.length > 0) throw new CliError(describeProblems(dataDir, problems, 'use it'));
  if (databaseUrl === undefined && !existsSync(join(dataDir, DATABASE_FILE))) {
    if (!create) throw new CliError(`no mqttkit data in ${dataDir}: pass --data-dir, or start the hub there first`);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  }
  let db: SqlEngine;
  try {
    db = await openEngine({ dataDir, databaseUrl });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const runtime = readRuntime(dataDir);
  const hubPid = runningHubPid(dataDir);
  const externalUrl =
    flags.mqttUrl ??
    (process.env.MQTTKIT_MQTT_URL || undefined) ??
    configuredUrl(dataDir) ??
    (hubPid && runtime && !runtime.mqtt.embedded ? runtime.mqtt.address : undefined);
  return { dataDir, db, accounts: new AccountStore(db), store: new StateStore(db), hubPid, externalUrl, close: () => db.close() };
}

/** --database-url, MQTTKIT_DATABASE_URL or config.json's databaseUrl, checked like `mqttkit start` checks it. */
function databaseUrlOf(flags: WorkspaceFlags, dataDir: string): string | undefined {
  try {
    return resolveStartOption<string>('databaseUrl', flags.databaseUrl, dataDir);
  } catch (error) {
    if (error instanceof OptionError) throw new CliError(error.message, 2);
    throw error;
  }
}

function configuredUrl(dataDir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, CONFIG_FILE), 'utf8');
  } catch {
    return undefined;
  }
  // Only the broker's address matters here; `mqttkit start` checks the whole file and names a bad key.
  const parsed = parseJson(text, z.looseObject({ mqttUrl: z.string().optional() }));
  if (!parsed.ok) throw new CliError(`${join(dataDir, CONFIG_FILE)}: ${parsed.error}: fix it (see 'mqttkit start --help' for its keys)`);
  return parsed.value.mqttUrl;
}

/** Runs `fn` with the dynamic-security API of the workspace's external broker. */
export async function withDynsec<T>(workspace: Workspace, fn: (dynsec: DynsecClient) => Promise<T>): Promise<T> {
  const credentials = readBrokerCredentials(workspace.dataDir);
  if (!credentials || !workspace.externalUrl) {
    throw new CliError(
      `devices live on ${workspace.externalUrl ?? 'an external broker'}, but ${workspace.dataDir} holds no broker login: run 'mqttkit mosquitto-config' with this --data-dir`,
    );
  }
  const { DynsecClient } = await import('../broker/mosquitto/dynsec.js');
  const dynsec = await DynsecClient.connect(workspace.externalUrl, credentials.username, credentials.password);
  try {
    return await fn(dynsec);
  } finally {
    await dynsec.close();
  }
}

/** Wraps an action: a CliError prints its message and sets the exit code; the database is closed. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      if (error instanceof CliError) {
        console.error(`mqttkit: ${error.message}`);
        process.exitCode = error.exitCode;
        return;
      }
      console.error(`mqttkit: ${(error as Error).message}`);
      process.exitCode = 1;
    }
  };
}

/** A whole-number option, or a CliError (exit 2) that names the flag and the allowed range. */
export function wholeNumber(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new CliError(`${flag}: '${text}' is not a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}`, 2);
  }
  return n;
}
