/**
 * A real PgBouncer (Debian `pgbouncer`) in transaction pooling in front of a test cluster, on a free
 * loopback port, as the unprivileged user PostgreSQL runs as (PgBouncer refuses root too).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, listening } from './mosquitto.js';

export interface RunningPgBouncer {
  /** The cluster's URL with PgBouncer's port instead. */
  url(databaseUrl: string): string;
  stop(): Promise<void>;
}

export async function startPgBouncer(binary: string, databaseUrl: string, settings: Record<string, string> = {}): Promise<RunningPgBouncer> {
  const target = new URL(databaseUrl);
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-pgbouncer-'));
  const port = await freePort();
  const user = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  writeFileSync(join(dir, 'users.txt'), `"${user}" "${password}"\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${target.hostname} port=${target.port}`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      'auth_type = plain',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`),
      '',
    ].join('\n'),
  );
  let runAs: string[] = [];
  if (userInfo().uid === 0) {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:') || l.startsWith('nobody:'))!;
    const [name, , uid, gid] = line.split(':');
    for (const f of [dir, join(dir, 'users.txt'), join(dir, 'pgbouncer.ini')]) chownSync(f, Number(uid), Number(gid));
    chmodSync(dir, 0o700);
    runAs = ['runuser', '-u', name!, '--'];
  }
  const argv = [...runAs, binary, join(dir, 'pgbouncer.ini')];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  if (!(await listening(child, port))) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`pgbouncer did not start:\n${log}`);
  }
  return {
    url(databaseUrl: string) {
      const via = new URL(databaseUrl);
      via.port = String(port);
      return via.toString();
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
