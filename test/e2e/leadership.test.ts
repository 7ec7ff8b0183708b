/**
 * [H-1] Two hubs on one PostgreSQL: the lock decides which is active. A real throwaway cluster; the
 * "active hub" is a real process killed with SIGKILL, and a partition is a proxy that stops passing bytes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Leadership, type LeadershipTiming } from '../../src/hub/leadership.js';
import { eventually } from '../helpers/hub-process.js';
import { POSTGRES_MISSING, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const LEADERSHIP = new URL('../../src/hub/leadership.js', import.meta.url).href;
/** A process that takes the active role and says so (inline: every file under dist/test is run as a test). */
const CHILD = `
import { Leadership } from ${JSON.stringify(LEADERSHIP)};
const leadership = new Leadership(process.argv[1], {
  active: () => void process.stdout.write('active\\n'),
  standby: (why) => void process.stdout.write('standby ' + why + '\\n'),
});
await leadership.start();
setInterval(() => {}, 1 << 30);
`;
const FAST: LeadershipTiming = { retryMs: 200, checkMs: 200, stepDownMs: 600, sessionTimeoutMs: 1500 };

/** A Leadership whose role changes are recorded with their times. */
function watched(url: string, timing?: LeadershipTiming) {
  const changes: Array<{ role: 'active' | 'standby'; at: number; why?: string }> = [];
  const problems: string[] = [];
  const leadership = new Leadership(
    url,
    { active: () => void changes.push({ role: 'active', at: Date.now() }), standby: (why) => void changes.push({ role: 'standby', at: Date.now(), why }) },
    timing,
    (problem) => problems.push(problem),
  );
  return { leadership, changes, problems };
}

describe('active and standby hub (PostgreSQL advisory lock)', () => {
  let cluster: RunningPostgres | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  before(async () => {
    const bin = requirePostgres();
    if (bin) cluster = await startPostgres(bin);
  });
  after(async () => {
    for (const clean of cleanups.reverse()) await clean();
    await cluster?.stop();
  });

  it('a standby takes the active role within seconds of the active process being killed (kill -9)', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = await cluster.createDatabase();
    const child = spawn(process.execPath, ['--input-type=module', '--eval', CHILD, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(() => out.includes('active'), 15_000, `the first process to be active (it printed: ${out})`);

    const standby = watched(url);
    cleanups.push(() => standby.leadership.stop());
    await standby.leadership.start();
    assert.equal(standby.leadership.role, 'standby', 'the lock is held: the second hub waits');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(standby.leadership.role, 'standby', 'and keeps waiting while the active one lives');

    const killedAt = Date.now();
    child.kill('SIGKILL');
    await eventually(() => standby.leadership.role === 'active', 10_000, 'the standby to take over');
    const takeover = standby.changes.find((c) => c.role === 'active')!.at - killedAt;
    t.diagnostic(`takeover after kill -9: ${takeover} ms`);
    assert.ok(takeover < 5000, `took ${takeover} ms`);
  });

  it('an active hub cut off from the database steps down before the standby takes over (never two active)', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = new URL(await cluster.createDatabase());
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);

    const a = watched(viaProxy.toString(), FAST);
    cleanups.push(() => a.leadership.stop());
    await a.leadership.start();
    assert.equal(a.leadership.role, 'active');
    const b = watched(url.toString(), FAST);
    cleanups.push(() => b.leadership.stop());
    await b.leadership.start();
    assert.equal(b.leadership.role, 'standby');

    proxy.freeze(); // the cable between hub A and the database is pulled: no close, no answer
    await eventually(() => b.leadership.role === 'active', 10_000, 'B to take over once PostgreSQL ends A’s silent session');
    const aDown = a.changes.find((c) => c.role === 'standby');
    const bUp = b.changes.find((c) => c.role === 'active')!;
    assert.ok(aDown, 'A stepped down on its own');
    assert.ok(aDown.at < bUp.at, `A stepped down (${aDown.at}) before B became active (${bUp.at})`);
    assert.match(aDown.why ?? '', /did not answer|session ended/);

    proxy.thaw(); // the cable is back: A finds the lock taken and stays standby
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(a.leadership.role, 'standby');
    assert.equal(b.leadership.role, 'active');
  });

  it('a hub whose start takes longer than the session timeout keeps the lock (the session proves itself meanwhile)', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = await cluster.createDatabase();
    let started = false;
    const slow = new Leadership(
      url,
      {
        active: async () => {
          await new Promise((r) => setTimeout(r, FAST.sessionTimeoutMs * 2));
          started = true;
        },
        standby: () => {},
      },
      FAST,
    );
    cleanups.push(() => slow.stop());
    const starting = slow.start();
    await eventually(() => slow.role === 'active', 10_000, 'the first to take the lock'); // then the second tries
    const other = watched(url, FAST);
    cleanups.push(() => other.leadership.stop());
    await other.leadership.start();
    await starting;
    assert.ok(started);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(other.changes, [], 'the other hub never became active while the first was starting');
    assert.equal(slow.role, 'active');
  });

  it('a database that is down at start: the hub waits as standby, says why once, and becomes active when it is up', async (t) => {
    if (!cluster) return t.skip(POSTGRES_MISSING);
    const url = new URL(await cluster.createDatabase());
    const proxy = new TcpProxy(Number(url.port));
    await proxy.start();
    const port = proxy.port;
    await proxy.stop(); // nothing listens there now
    cleanups.push(() => proxy.stop());
    url.port = String(port);

    const a = watched(url.toString(), FAST);
    cleanups.push(() => a.leadership.stop());
    await a.leadership.start();
    assert.equal(a.leadership.role, 'standby');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(a.problems.length, 1, `one message for one problem, not one per retry: ${a.problems.join(' | ')}`);
    assert.match(a.problems[0]!, /cannot reach the database/);

    await proxy.start(port);
    await eventually(() => a.leadership.role === 'active', 10_000, 'the hub to become active once the database is up');
  });
});
