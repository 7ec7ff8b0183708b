/**
 * Issue 13: an idle hub does not wake. With devices connected and a dashboard's live stream open, and
 * nothing happening, none of the hub's own timers fires more than once in a 4 s window (a poll would
 * fire on every tick), and no timer in the process repeats faster than every 5 s. The real hub runs in
 * a child process; test/helpers/timer-census.ts counts its timers from inside (test-only preload).
 * Measured, not asserted here: the CPU and wake-ups of `npm run bench` scenario 8.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';
import type { Census } from '../helpers/timer-census.js';

const CENSUS = fileURLToPath(new URL('../helpers/timer-census.js', import.meta.url));
/** Shorter than the slowest legitimate periodic check (a live stream's 5 s look at its token). */
const WINDOW_MS = 4000;

describe('an idle hub does not wake (issue 13)', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  const clients: MqttClient[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mqttkit-idle-'));
  after(async () => {
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('fires none of its own timers twice in 4 s, and repeats no timer faster than every 5 s, with devices connected and a live stream open', async (t) => {
    const dataDir = tempDataDir();
    const created = cli(['token', 'create', 'idle-test', '--json', '--data-dir', dataDir]);
    assert.equal(created.status, 0, created.stderr);
    const token = (JSON.parse(created.stdout) as { token: string }).token;
    const out = join(dir, 'census.json');
    hub = await startHub({ dataDir, env: { NODE_OPTIONS: `--import ${pathToFileURL(CENSUS).href}`, TIMER_CENSUS_OUT: out } });

    // A device that promised a keepalive [P-20], one that did not, and a sleeper: each said something once.
    for (const [id, say] of [
      ['kept', ['$keepalive', '3600']],
      ['plain', ['$state', 'online']],
      ['sleeper', ['$state', 'sleeping 600']],
    ] as const) {
      const device = await connectDevice(hub.info.mqtt.address, id);
      device.on('error', () => {});
      clients.push(device);
      await device.publishAsync(`HomeKit/${id}/Switch/On`, '1', { qos: 1 });
      await device.publishAsync(`HomeKit/${id}/${say[0]}`, say[1], { qos: 1 });
    }
    // The dashboard, open and idle.
    const stream = await new Promise<IncomingMessage>((resolve, reject) =>
      get({ host: '127.0.0.1', port: hub!.info.httpPort, path: '/api/events', headers: { authorization: `Bearer ${token}` }, agent: false }, resolve).on(
        'error',
        reject,
      ),
    );
    assert.equal(stream.statusCode, 200);
    stream.on('data', () => {});
    const api = async () =>
      (await (await fetch(`http://127.0.0.1:${hub!.info.httpPort}/api/devices`, { headers: { authorization: `Bearer ${token}` } })).json()) as Array<{
        id: string;
        state: string;
      }>;
    await eventually(async () => (await api()).filter((d) => d.state !== 'offline').length === 3, 10_000, 'the three devices known');

    // What the devices said is written in a batch a second later and checkpointed a second after that:
    // work, not idling. The window starts once it is done (nothing outside the hub can see it end).
    await new Promise((r) => setTimeout(r, 3000));
    hub.child.kill('SIGUSR2'); // the census starts counting
    await new Promise((r) => setTimeout(r, WINDOW_MS)); // the idle window is what is measured
    hub.child.kill('SIGUSR2'); // and writes what fired
    const census = await eventually(() => existsSync(out) && (JSON.parse(readFileSync(out, 'utf8')) as Census), 5000, 'the census');
    stream.destroy();
    t.diagnostic(`fired in ${WINDOW_MS} ms: ${JSON.stringify(census.fired)}`);
    t.diagnostic(`armed: ${JSON.stringify(census.armed)}`);

    assert.ok(
      census.armed.some((t) => t.own),
      `the census sees the hub's own timers: ${JSON.stringify(census.armed)}`,
    );
    const polls = census.fired.filter((f) => f.own && f.count > 1).map((f) => `${f.site} fired ${f.count} times`);
    assert.deepEqual(polls, [], `an idle hub runs no poll of its own (fired: ${JSON.stringify(census.fired)})`);
    const fast = census.armed.filter((t) => t.repeat && t.ms < 5000).map((t) => `${t.site} every ${t.ms} ms`);
    assert.deepEqual(fast, [], 'no timer in the hub process repeats faster than every 5 s');
  });
});
