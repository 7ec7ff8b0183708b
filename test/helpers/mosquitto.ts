/** A real Mosquitto broker on a free loopback port, in a temp dir, for the external-broker mode. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './mqtt-device.js';

export interface RunningMosquitto {
  port: number;
  url: string;
  dir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * A port for a server that must be told its port (Mosquitto, PostgreSQL, a hub's fixed ports), picked
 * below the kernel's ephemeral range: a port from listen(0) is free only until it is closed again, and
 * any outgoing connection (a test run makes thousands) may take it as its local port before the server
 * binds it. Below the range only servers bind, and the port is checked free first.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  const floor = 10_000;
  for (let attempt = 0; low - floor >= 1000 && attempt < 20; attempt++) {
    const port = floor + Math.floor(Math.random() * (low - floor));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  return ephemeralPort();
}

/** Ports this process gave out already (their servers may have stopped and a restart reuse them). */
const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0; // not Linux: the kernel's own pick
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Waits (10 s at most) until `port` on loopback takes connections; false if `child` ended or time ran out. */
export async function listening(child: ChildProcess, port: number, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return true;
    if (child.exitCode !== null || Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts Mosquitto with `config`, or with an anonymous loopback-only config when none is given. */
export async function startMosquitto(binary: string, given?: { config: string; port: number }): Promise<RunningMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-mosquitto-'));
  const port = given?.port ?? (await freePort());
  const config = given?.config ?? join(dir, 'mosquitto.conf');
  if (!given) writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', ''].join('\n'));
  const child = spawn(binary, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  if (!(await listening(child, port))) throw new Error(`mosquitto did not start:\n${log}`);
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    child,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Mosquitto as `mqttkit mosquitto-config` sets it up (dynamic security, the hub's broker login saved in
 * `dataDir`, the config in `confDir`), on a free loopback port.
 */
export async function startConfiguredMosquitto(binary: string, dataDir: string, confDir: string): Promise<RunningMosquitto> {
  const port = await freePort();
  const generated = cli(['mosquitto-config', confDir, '--data-dir', dataDir, '--port', String(port), '--host', '127.0.0.1']);
  if (generated.status !== 0) throw new Error(`mqttkit mosquitto-config failed: ${generated.stderr}`);
  return startMosquitto(binary, { config: join(confDir, 'mosquitto.conf'), port });
}
