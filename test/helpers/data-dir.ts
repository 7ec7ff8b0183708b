/** Data-dir tools for state tests: a hub run that is expected to refuse, and snapshots of what is on disk. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BIN, PINCODE } from './hub-process.js';

export interface HubRun {
  /** The exit code; null when the hub started (it was stopped by this helper then). */
  code: number | null;
  started: boolean;
  output: string;
}

/**
 * Runs `mqttkit start` on the data dir until it exits. A hub that starts instead (prints its banner)
 * is stopped, and the run reports `started: true`.
 */
export function runHub(dataDir: string, args: string[] = [], { pincode = PINCODE as string | null } = {}): Promise<HubRun> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'start',
      '--data-dir',
      dataDir,
      '--mqtt-host',
      '127.0.0.1',
      '--mqtt-port',
      '0',
      '--hap-host',
      '127.0.0.1',
      '--hap-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--http-port',
      '0',
      ...(pincode ? ['--pincode', pincode] : []),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let started = false;
  const collect = (d: Buffer) => {
    output += d.toString();
    if (!started && output.includes('mqttkit is running')) {
      started = true;
      child.kill('SIGTERM');
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(deadline);
      resolve({ code: started ? null : code, started, output });
    }),
  );
}

/** Every file under `dir` (relative path → size, mode and sha256), to prove that nothing changed. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const stat = statSync(path);
        out[relative(dir, path)] = `${stat.size} ${(stat.mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
      }
    }
  };
  walk(dir);
  return out;
}

/** The HomeKit storage files of a data dir by kind, e.g. `{ AccessoryInfo: 'homekit/AccessoryInfo.0E5A….json' }` (first bridge). */
export function homekitFile(dataDir: string, kind: 'AccessoryInfo' | 'IdentifierCache'): string {
  const name = readdirSync(join(dataDir, 'homekit')).find((f) => f.startsWith(`${kind}.`) && f.endsWith('.json'));
  if (!name) throw new Error(`no ${kind} file in ${dataDir}/homekit`);
  return join('homekit', name);
}
