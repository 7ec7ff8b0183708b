/**
 * issue 13: the CLI is a client of the running hub's API. It authenticates with the local token the
 * hub writes at each start (owner-only; any other token is refused), follows jobs on the live event
 * stream with a bound (a hub that dies is named within seconds), leaves a job queued on Ctrl-C and
 * says so, and `cmd --timeout` reaches the hub. Real hub and CLI processes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { BIN, eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cli, cliAsync, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

/** A CLI child whose output is watched while it runs; killed after `ms` so a hang fails the test. */
function watchCli(args: string[], ms = 60_000) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const exited = new Promise<{ status: number | null; at: number }>((resolve) =>
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, at: Date.now() });
    }),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

const tokenFile = (dataDir: string) => join(dataDir, 'hub-token');

async function api(hub: RunningHub, path: string, token: string | undefined, method = 'GET', body?: unknown) {
  const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}${path}`, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('the CLI talks to the running hub through its API', { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'mqttkit-cli-api-'));
  const file = join(work, 'main.py');
  const hubs: RunningHub[] = [];
  const clients: MqttClient[] = [];

  before(() => writeFileSync(file, 'print("mine")\n'));
  after(async () => {
    for (const c of clients) c.end(true);
    for (const h of hubs) {
      await h.stop('SIGKILL');
      removeDataDir(h.dataDir);
    }
    rmSync(work, { recursive: true, force: true });
  });

  /** A hub with an admin client that plays a device's `$state`. */
  const hubWithAdmin = async () => {
    const hub = await startHub();
    hubs.push(hub);
    const admin = await connectAdmin(hub.info.mqtt.address!, 'tester', addAdmin(hub.dataDir, 'tester'));
    admin.on('error', () => {});
    clients.push(admin);
    const state = async (device: string, value: 'online' | 'offline') => {
      await admin.publishAsync(`HomeKit/${device}/Switch/On`, '0', { qos: 1 });
      await admin.publishAsync(`HomeKit/${device}/$state`, value, { qos: 1 });
      await eventually(() => cli(['devices', '--json', '--data-dir', hub.dataDir]).stdout.includes(`"state": "${value}"`), 10_000, `${device} ${value}`);
    };
    return { hub, state };
  };

  it('the hub writes a local token owner-only, a new one at each start, and refuses a wrong or missing one (401)', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const path = tokenFile(hub.dataDir);
    assert.ok(existsSync(path), 'the hub writes its local token beside hub.json');
    assert.equal(statSync(path).mode & 0o777, 0o600, 'owner-only');
    const token = readFileSync(path, 'utf8').trim();
    assert.ok(token.length >= 40, 'a long random value');
    assert.doesNotMatch(hub.output(), new RegExp(token), 'never logged');
    assert.equal((await api(hub, '/api/devices', token)).status, 200, 'the local token opens the API');
    const wrong = await api(hub, '/api/devices', `${token.slice(0, -4)}AAAA`);
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.json.error), /invalid API token/);
    assert.equal((await api(hub, '/api/devices', undefined)).status, 401);
    assert.equal((await api(hub, '/api/ota/jobs/1/cancel', 'mkl_not-the-token', 'POST', {})).status, 401);

    // A restart makes a new token: the old one no longer opens anything; a stop removes the file.
    assert.equal(await hub.stop('SIGTERM'), 0);
    assert.equal(existsSync(path), false, 'removed at stop');
    const again = await startHub({ dataDir: hub.dataDir });
    hubs.push(again);
    const fresh = readFileSync(path, 'utf8').trim();
    assert.notEqual(fresh, token);
    assert.equal((await api(again, '/api/devices', token)).status, 401, "the last start's token is refused");
    assert.equal((await api(again, '/api/devices', fresh)).status, 200);
  });

  it('a hub that dies while `ota push` follows its job: the CLI says so within seconds and the job stays queued', async () => {
    const { hub, state } = await hubWithAdmin();
    await state('dozy', 'offline');
    const push = watchCli(['ota', 'push', 'dozy', file, '--data-dir', hub.dataDir]);
    await eventually(() => /job #(\d+) queued: it starts when dozy is online/.test(push.stdout()), 20_000, 'the CLI to say the job waits');
    const id = /job #(\d+) queued/.exec(push.stdout())![1];
    const killedAt = Date.now();
    await hub.stop('SIGKILL');
    const { status, at } = await push.exited;
    assert.equal(status, 1, `the CLI ends with exit code 1 (stderr: ${push.stderr()})`);
    assert.ok(at - killedAt < 15_000, `the CLI noticed within 15 s (took ${at - killedAt} ms)`);
    assert.match(
      push.stderr(),
      new RegExp(`the hub on .* has stopped; job #${id} stays queued: it runs when the hub is back \\('mqttkit ota jobs' shows it\\)`),
    );
    const jobs = JSON.parse(cli(['ota', 'jobs', '--json', '--data-dir', hub.dataDir]).stdout) as Array<{ id: number; state: string }>;
    assert.equal(jobs.find((j) => j.id === Number(id))?.state, 'queued');
  });

  it('Ctrl-C while `ota push` follows a queued job leaves it queued and says how to follow it', async () => {
    const { hub, state } = await hubWithAdmin();
    await state('napper', 'offline');
    const push = watchCli(['ota', 'push', 'napper', file, '--data-dir', hub.dataDir]);
    await eventually(() => /job #(\d+) queued: it starts when napper is online/.test(push.stdout()), 20_000, 'the CLI to say the job waits');
    const id = /job #(\d+) queued/.exec(push.stdout())![1];
    push.child.kill('SIGINT');
    const { status } = await push.exited;
    assert.equal(status, 130, `stderr: ${push.stderr()}`);
    assert.match(push.stderr(), new RegExp(`job #${id} stays queued: follow it with 'mqttkit ota jobs' \\(or end it with 'mqttkit ota cancel ${id}'\\)`));
    const jobs = JSON.parse(cli(['ota', 'jobs', '--json', '--data-dir', hub.dataDir]).stdout) as Array<{ id: number; state: string }>;
    assert.equal(jobs.find((j) => j.id === Number(id))?.state, 'queued', 'the job is still queued');
    assert.equal(hub.child.exitCode, null, 'the hub runs on');
  });

  it('`logs -f` prints the earlier lines, then each new one as it arrives, and ends when the hub stops', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const chatty = await connectDevice(hub.info.mqtt.address!, 'chatty');
    chatty.on('error', () => {});
    clients.push(chatty);
    await chatty.publishAsync('stat/chatty/Log', 'line 1', { qos: 1 });
    await eventually(() => cli(['logs', 'chatty', '--data-dir', hub.dataDir]).stdout.includes('Log line 1'), 10_000, 'the first line kept');
    const logs = watchCli(['logs', 'chatty', '-f', '-n', '5', '--data-dir', hub.dataDir]);
    await eventually(() => logs.stdout().includes('Log line 1'), 10_000, 'the earlier line');
    await chatty.publishAsync('stat/chatty/Log', 'line 2', { qos: 1 });
    await eventually(() => logs.stdout().includes('Log line 2'), 10_000, 'the new line');
    assert.equal(logs.stdout().match(/line 1/g)?.length, 1, 'each line once');
    await hub.stop('SIGKILL');
    const { status } = await logs.exited;
    assert.equal(status, 1, `stderr: ${logs.stderr()}`);
    assert.match(logs.stderr(), /the hub on .* has stopped/);
  });

  it('`cmd --timeout` is the time the hub waits for the answer', async () => {
    const { hub, state } = await hubWithAdmin();
    await state('mute', 'online');
    // Something listens as `mute` but never answers.
    const mute = await connectDevice(hub.info.mqtt.address!, 'mute');
    mute.on('error', () => {});
    clients.push(mute);
    await mute.subscribeAsync('cmnd/mute/OTA', { qos: 1 });
    const started = Date.now();
    const result = await cliAsync(['cmd', 'mute', 'stats', '--timeout', '2', '--data-dir', hub.dataDir]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /mute did not answer on stat\/mute\/Log within 2 s/);
    assert.ok(Date.now() - started < 12_000, "not the hub's default 15 s");
    const bad = await cliAsync(['cmd', 'mute', 'stats', '--timeout', 'soon', '--data-dir', hub.dataDir]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--timeout: 'soon' is not a whole number from 1 to 3600/);
  });
});
