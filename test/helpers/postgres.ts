/**
 * A real, throwaway PostgreSQL cluster for the tests: `initdb` in a temp dir, `pg_ctl` on a free
 * loopback port, a generated password (scram-sha-256, no trust), removed by `stop()`.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster runs as the
 * `postgres` user the Debian package creates (or `nobody`), through `runuser`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './mosquitto.js';

const run = promisify(execFile);

export interface RunningPostgres {
  /** The cluster's superuser URL without a database name: add one with `databaseUrl(name)`. */
  url: string;
  port: number;
  dir: string;
  /** A `postgres://…/<name>` URL for a database of this cluster (create it first with `createDatabase`). */
  databaseUrl(name: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** The server's log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** The directory of Debian's PostgreSQL binaries (the newest installed major version). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/**
 * The bin dir, or: with CI=true, throws (CI must install it); outside CI, undefined (the caller skips,
 * e.g. `if (!cluster) return t.skip(POSTGRES_MISSING)`). Callable from `before`, which cannot skip.
 */
export function requirePostgres(t?: { skip(message: string): void }): string | undefined {
  const dir = postgresBinDir();
  if (dir) return dir;
  if (process.env.CI === 'true') throw new Error(`${POSTGRES_MISSING}; CI must install it in .ci/run`);
  t?.skip(POSTGRES_MISSING); // a test context can skip itself; a suite's `before` cannot
  return undefined;
}

export const POSTGRES_MISSING = 'postgresql is not installed (apt-get install postgresql)';

function unprivilegedUser(): { name: string; uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const wanted of ['postgres', 'nobody']) {
    const line = passwd.find((l) => l.startsWith(`${wanted}:`));
    if (!line) continue;
    const [, , uid, gid] = line.split(':');
    return { name: wanted, uid: Number(uid), gid: Number(gid) };
  }
  throw new Error('running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as');
}

export async function startPostgres(binDir: string): Promise<RunningPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-postgres-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const password = randomBytes(18).toString('base64url');
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const user = unprivilegedUser();
  if (user) {
    chmodSync(dir, 0o700);
    chownSync(dir, user.uid, user.gid);
    chownSync(passwordFile, user.uid, user.gid);
  }
  const as = (binary: string, args: string[]) =>
    user ? run('runuser', ['-u', user.name, '--', join(binDir, binary), ...args]) : run(join(binDir, binary), args);
  // PostgreSQL cannot take port 0, so the port is picked free and may be taken before the server binds
  // it (an outgoing connection of a test running beside this one can get it as its local port): a start
  // that fails on the bind is retried on another port, anything else is reported at once.
  let port = 0;
  try {
    await as('initdb', ['-D', data, '-U', 'mqttkit', '--auth=scram-sha-256', `--pwfile=${passwordFile}`, '-E', 'UTF8', '--no-sync']);
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await as('pg_ctl', [
          '-D',
          data,
          '-l',
          logFile,
          '-w',
          '-t',
          '60',
          '-o',
          `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`,
          'start',
        ]);
        break;
      } catch (error) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        if (attempt >= 5 || !/could not bind .*Address already in use/.test(log)) throw error;
        rmSync(logFile, { force: true });
      }
    }
  } catch (error) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${String(error)}\n${log}`);
  }
  const base = `postgres://mqttkit:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  let created = 0;
  const cluster: RunningPostgres = {
    url: base,
    port,
    dir,
    databaseUrl: (name) => `${base}/${name}`,
    async createDatabase(name = `test_${process.pid}_${++created}`) {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: `${base}/postgres` });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await client.end();
      }
      return `${base}/${name}`;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop() {
      try {
        await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone (a test killed it on purpose)
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
