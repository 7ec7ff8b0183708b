/** Runs the real `mqttkit start` in a child process on free loopback ports and a temp data dir. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RuntimeInfo, readRuntime } from '../../src/store/runtime-file.js';

export const PINCODE = '031-45-154';
export const BIN = fileURLToPath(new URL('../../../bin/mqttkit.js', import.meta.url));

/** The node flags and environment the launcher's `#!/usr/bin/env -S VAR=value node --flag` line asks for: a hub in a test runs as an installed one does. */
export function launcherSettings(bin = BIN): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0]!;
  const words = /^#!\/usr\/bin\/env -S (.*)$/.exec(first)?.[1]?.split(' ') ?? [];
  const node = words.indexOf('node');
  const env = Object.fromEntries(words.slice(0, Math.max(0, node)).map((w) => w.split('=', 2) as [string, string]));
  return { env, flags: node < 0 ? [] : words.slice(node + 1) };
}

export interface RunningHub {
  child: ChildProcess;
  dataDir: string;
  info: RuntimeInfo;
  output(): string;
  /**
   * Waits until the output matches: the hub writes its log through a pipe, so a line about what a
   * client just saw (a refused CONNECT) can arrive after the client's own answer.
   */
  printed(pattern: RegExp, ms?: number): Promise<void>;
  /** Sends the signal and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Re-reads hub.json (bridges opened later show there). */
  refresh(): RuntimeInfo;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'mqttkit-test-'));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface StartHubOptions {
  dataDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** null: let the hub generate (or reuse) its own setup code. */
  pincode?: string | null;
  /** The launcher to run (default: this checkout's bin/mqttkit.js), e.g. an installed package's. */
  bin?: string;
  /** The hub's working directory (default: the test's). */
  cwd?: string;
}

export async function startHub(options: StartHubOptions = {}): Promise<RunningHub> {
  const dataDir = options.dataDir ?? tempDataDir();
  const external = options.args?.includes('--mqtt-url') ?? false;
  const args = [
    options.bin ?? BIN,
    'start',
    '--data-dir',
    dataDir,
    ...(external ? [] : ['--mqtt-host', '127.0.0.1', '--mqtt-port', '0']),
    '--hap-host',
    '127.0.0.1',
    '--hap-port',
    '0',
    '--http-host',
    '127.0.0.1',
    '--http-port',
    '0',
    ...(options.pincode === null ? [] : ['--pincode', options.pincode ?? PINCODE]),
    '--log-level',
    'info',
    ...(options.args ?? []),
  ];
  // BENCH_HUB_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the hubs of a bench run (NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = process.env.BENCH_HUB_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const launcher = launcherSettings(options.bin);
  const child = spawn(process.execPath, [...launcher.flags, ...nodeArgs, ...args], {
    env: { ...launcher.env, ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: options.cwd,
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const deadline = Date.now() + 30_000;
  let info: RuntimeInfo | undefined;
  while (!info) {
    const candidate = readRuntime(dataDir);
    if (candidate?.pid === child.pid && output.includes('mqttkit is running')) info = candidate;
    else if (child.exitCode !== null) throw new Error(`hub exited with ${child.exitCode}:\n${output}`);
    else if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`hub did not start within 30 s:\n${output}`);
    } else await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    dataDir,
    info,
    output: () => output,
    printed: async (pattern, ms = 5000) => {
      await eventually(() => pattern.test(output), ms, `${pattern} in the hub's output; it printed (last 3000 characters):\n${output.slice(-3000)}`);
    },
    refresh: () => readRuntime(dataDir)!,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (process.env.MQTTKIT_TEST_DEBUG) process.stderr.write(`--- hub output (${dataDir}) ---\n${output}\n`);
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

/** Polls `probe` until it returns a value that is not undefined/false, or fails after `ms`. */
export async function eventually<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
