/**
 * `<data dir>/hub.json`: written while a hub runs, so CLI commands and tests find its ports, and a
 * second hub on the same data dir is refused instead of corrupting state. Its fields: docs/data.md [D-8].
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import { writeFileAtomic } from './atomic-file.js';

export interface RuntimeInfo {
  pid: number;
  startedAt: string;
  mqtt: { address: string; embedded: boolean; host?: string; port?: number; tlsPort?: number | undefined };
  // `?`: JSON drops undefined, so a field written as undefined reads back absent.
  bridges: Array<{ index: number; name: string; port?: number | undefined; username: string; setupURI?: string | undefined }>;
  httpPort?: number | undefined;
  /** The address the API listens on (`--http-host`): the CLI connects there (loopback for 0.0.0.0 or ::). */
  httpHost?: string | undefined;
  /** The running hub's OTA cap in bytes: the CLI refuses a larger file before sending it. */
  otaMaxFileSize?: number | undefined;
  /** The API serves HTTPS with this certificate: the CLI trusts exactly it (SHA-256 pin), nothing else. */
  httpTls?: { certFile: string; fingerprint256: string } | undefined;
}

export const RUNTIME_FILE = 'hub.json';
/**
 * [D-8] The running hub's local API token, beside hub.json: owner-only (0600), a new one at each hub
 * start, removed at stop. Whoever can read the data dir is the hub's owner already; the CLI sends it as
 * `Authorization: Bearer …` to the hub's API (docs/api.md ). Never logged.
 */
export const TOKEN_FILE = 'hub-token';

const port = z.number().int().min(0).max(65535);
const runtimeSchema = z.looseObject({
  pid: z.number().int().positive(),
  startedAt: z.string(),
  mqtt: z.looseObject({ address: z.string(), embedded: z.boolean(), host: z.string().optional(), port: port.optional(), tlsPort: port.optional() }),
  bridges: z.array(
    z.looseObject({ index: z.number().int().min(0), name: z.string(), port: port.optional(), username: z.string(), setupURI: z.string().optional() }),
  ),
  httpPort: port.optional(),
  httpHost: z.string().optional(),
  otaMaxFileSize: z.number().int().positive().optional(),
  httpTls: z.looseObject({ certFile: z.string(), fingerprint256: z.string().regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/) }).optional(),
});

/** Thrown for a hub.json that exists but cannot be read as one: named, with the fix. */
export class RuntimeFileError extends Error {}

/** What hub.json says; undefined when there is none. A damaged one is refused by name (the key and the fix). [D-8] */
export function readRuntime(dataDir: string): RuntimeInfo | undefined {
  const file = join(dataDir, RUNTIME_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = parseJson(text, runtimeSchema);
  if (parsed.ok) return parsed.value;
  throw new RuntimeFileError(`${file} is damaged (${parsed.error}): the running hub rewrites it at start; if no hub runs on ${dataDir}, remove the file`);
}

/** The pid of a hub that is running on this data dir, if any (a stale file from a crash is ignored). */
export function runningHubPid(dataDir: string): number | undefined {
  const info = readRuntime(dataDir);
  if (!info || info.pid === process.pid) return undefined;
  try {
    process.kill(info.pid, 0);
    return info.pid;
  } catch {
    return undefined;
  }
}

export function writeRuntime(dataDir: string, info: RuntimeInfo): void {
  writeFileAtomic(join(dataDir, RUNTIME_FILE), `${JSON.stringify(info, null, 2)}\n`);
}

export function removeRuntime(dataDir: string): void {
  rmSync(join(dataDir, RUNTIME_FILE), { force: true });
}

/** Makes and writes a fresh local token (the last hub's token stops working). */
export function writeHubToken(dataDir: string): string {
  const token = `mkl_${randomBytes(32).toString('base64url')}`;
  writeFileAtomic(join(dataDir, TOKEN_FILE), `${token}\n`, { mode: 0o600 });
  return token;
}

export function readHubToken(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, TOKEN_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function removeHubToken(dataDir: string): void {
  rmSync(join(dataDir, TOKEN_FILE), { force: true });
}
