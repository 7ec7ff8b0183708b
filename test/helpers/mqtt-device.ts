/** Devices and admins as MQTT.js clients, logging in the way mqttkit expects (client id = username). */
import { spawn, spawnSync } from 'node:child_process';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { BIN } from './hub-process.js';

export const devicePassword = (id: string) => `pw-${id}-0123456789`;

export function connectDevice(
  url: string,
  id: string,
  options: { password?: string; will?: { topic: string; payload: string } } & IClientOptions = {},
): Promise<MqttClient> {
  const { password, will, ...rest } = options;
  return mqtt.connectAsync(url, {
    clientId: id,
    username: id,
    password: password ?? devicePassword(id),
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...(will ? { will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true } } : {}),
    ...rest,
  });
}

/** Runs the mqttkit CLI to completion. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the mqttkit CLI without blocking the test's event loop (devices and servers keep running). */
export function cliAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return cliBounded(args, 0, env);
}

/**
 * The same, killed after `ms` (0: never) so a hang fails the test instead of stalling it: `killed` is
 * then true and stderr says so.
 */
export function cliBounded(
  args: string[],
  ms = 60_000,
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number | null; stdout: string; stderr: string; killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = ms > 0 ? setTimeout(() => ((killed = true), child.kill('SIGKILL')), ms) : undefined;
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr: killed ? `${stderr}\n(killed after ${ms} ms)` : stderr, killed });
    });
  });
}

/** Creates an admin account through the CLI and returns its password. */
export function addAdmin(dataDir: string, name: string, extra: string[] = []): string {
  const result = cli(['user', 'add', name, '--admin', '--json', '--data-dir', dataDir, ...extra]);
  if (result.status !== 0) throw new Error(`user add failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { password: string }).password;
}

export async function connectAdmin(url: string, name: string, password: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: name, username: name, password, protocolVersion: 4, reconnectPeriod: 0 });
}

/** The SUBACK code for one filter: the granted QoS, or 128 for a refusal (MQTT.js rejects on 128). */
export async function subackCode(client: MqttClient, filter: string): Promise<number> {
  try {
    return (await client.subscribeAsync(filter, { qos: 1 }))[0]!.qos;
  } catch (error) {
    const granted = (error as { packet?: { granted?: number[] } }).packet?.granted;
    if (granted) return granted[0]!;
    throw error;
  }
}
