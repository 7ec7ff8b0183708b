/** Runs the MicroPython device library under CPython, as the tests' real device. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './hub-process.js';

export const LIBRARY = fileURLToPath(new URL('../../../device/micropython', import.meta.url));
/** Runs a device program on CPython with the PC stand-in as `mqttkit.port` (never installed on a board). */
export const RUNNER = join(LIBRARY, 'pc', 'run.py');
export const PROBE = fileURLToPath(new URL('../../../test/device/probe.py', import.meta.url));
export const EXAMPLES = join(LIBRARY, 'examples');

export interface DeviceEvent {
  at: number;
  [key: string]: unknown;
}

export interface RunningDevice {
  child: ChildProcess;
  root: string;
  events: DeviceEvent[];
  output(): string;
  waitFor(predicate: (e: DeviceEvent) => boolean, ms?: number, what?: string): Promise<DeviceEvent>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function deviceRoot(config: Record<string, unknown>): string {
  const root = mkdtempSync(join(tmpdir(), 'mqttkit-device-'));
  writeFileSync(join(root, 'config.json'), JSON.stringify(config));
  return root;
}

export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

export function runDevice(python: string, script: string, root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): RunningDevice {
  const child = spawn(python, ['-u', RUNNER, script, ...args], {
    env: { ...process.env, ...env, MQTTKIT_ROOT: root },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: DeviceEvent[] = [];
  let output = '';
  let pending = '';
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      try {
        events.push({ at: Date.now(), ...(JSON.parse(line) as object) });
      } catch {
        // not an event line
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    root,
    events,
    output: () => output,
    exited,
    waitFor: (predicate, ms = 10_000, what = 'a device event') =>
      eventually(() => events.find(predicate), ms, `${what}; device output:\n${output.slice(-2000)}`),
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
