/**
 * Issue 15: the questions people ask, through a real hub: `GET /api/query` (login required, inputs
 * bounded and named) and `mqttkit query series|memory|firmware` (a table, or --json), through the
 * running hub's API and, once it has stopped, from the store. The hub keeps each device's last `stats`
 * answer ([O-22]) as it passes, which is what `memory` asks about. Scripted devices over real MQTT.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync } from '../helpers/mqtt-device.js';
import { type ScriptedDevice, startScriptedDevice } from '../helpers/ota-device.js';

const stats = (mem_free: number) => ({ uptime_s: 42, reconnects: 0, published: 7, received: 3, dropped: 0, queued: 0, mem_free });

describe('queries in the API and the CLI', { timeout: 180_000 }, () => {
  let hub: RunningHub;
  let token: string;
  const devices: ScriptedDevice[] = [];

  before(async () => {
    hub = await startHub();
    token = readFileSync(join(hub.dataDir, 'hub-token'), 'utf8').trim();
    const url = hub.info.mqtt.address;
    devices.push(await startScriptedDevice(url, 'q-low', { kind: 'esp32', firmware: '1.26.0', answers: { stats: stats(12_000) } }));
    devices.push(await startScriptedDevice(url, 'q-ok', { kind: 'esp32', answers: { stats: stats(90_000) } }));
  });
  after(async () => {
    for (const d of devices) await d.stop().catch(() => {});
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  /** `auth` null: no credential at all. */
  const api = async (query: string, auth: string | null = token) => {
    const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/query?${query}`, {
      headers: auth === null ? {} : { authorization: `Bearer ${auth}` },
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  const cli = (...args: string[]) => cliAsync(['query', ...args, '--data-dir', hub.dataDir]);

  it('needs a login, and names each bad input (400) before any SQL runs', async () => {
    const anonymous = await api('kind=memory&below=50000', null);
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.json.error), /log in first/);
    assert.equal((await api('kind=memory&below=50000', 'not-a-token')).status, 401);
    const tooMany = await api('kind=series&device=q-low&service=Switch&characteristic=On&from=0&to=86400000&bucket=1s');
    assert.equal(tooMany.status, 400);
    assert.match(String(tooMany.json.error), /^bucket: the range holds 86400 buckets of this size, over the limit of 5000/);
    const below = await api('kind=memory&below=lots');
    assert.equal(below.status, 400);
    assert.match(String(below.json.error), /^below: a whole number of bytes/);
    const kind = await api('kind=everything');
    assert.equal(kind.status, 400);
    assert.match(String(kind.json.error), /^kind: one of series, memory, firmware/);
    const version = await api(`kind=firmware&version=${'9'.repeat(300)}`);
    assert.match(String(version.json.error), /^version: at most 200 characters/);
  });

  it('firmware: the devices whose runtime is not the given one, once their getversion is known', async () => {
    const answer = await eventually(
      async () => {
        const { status, json } = await api('kind=firmware&version=1.27.0&of=runtime');
        const listed = json.devices as Array<{ device: string; version: string | null }> | undefined;
        return status === 200 && listed?.length === 1 && listed[0]!.version !== null ? json : undefined;
      },
      20_000,
      "q-low's getversion in the store",
    );
    assert.deepEqual(answer.devices, [{ device: 'q-low', version: '1.26.0' }]);
    const table = await cli('firmware', '1.27.0', '--runtime');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^DEVICE\s+RUNTIME\n/);
    assert.match(table.stdout, /^q-low\s+1\.26\.0$/m);
    assert.doesNotMatch(table.stdout, /q-ok/);
  });

  it("memory: a device's stats answer is kept as it passes; the devices under the threshold are listed by the API and the CLI", async () => {
    assert.deepEqual((await api('kind=memory&below=50000')).json.devices, [], 'nobody has asked for stats yet');
    for (const id of ['q-low', 'q-ok']) {
      const asked = await cliAsync(['cmd', id, 'stats', '--data-dir', hub.dataDir]);
      assert.equal(asked.status, 0, asked.stderr);
    }
    const { status, json } = await api('kind=memory&below=50000');
    assert.equal(status, 200);
    const listed = json.devices as Array<{ device: string; memFree: number; statsAt: number }>;
    assert.deepEqual(
      listed.map((d) => [d.device, d.memFree]),
      [['q-low', 12_000]],
    );
    assert.ok(Math.abs(listed[0]!.statsAt - Date.now()) < 60_000, 'when the answer came');
    const table = await cli('memory', '--below', '50000');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^DEVICE\s+MEM FREE\s+STATS FROM\nq-low\s+12000\s+/);
    const json_ = await cli('memory', '--below', '100000', '--json');
    assert.deepEqual(
      (JSON.parse(json_.stdout) as { devices: Array<{ device: string }> }).devices.map((d) => d.device),
      ['q-low', 'q-ok'],
    );
    const bad = await cli('memory', '--below', '-5');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--below: at least 1/);
  });

  it('series: the values a device reported, in buckets; a range too fine for 5000 buckets is refused by the CLI naming --bucket', async () => {
    // Each scripted device said Switch On = 0 when it connected: one sample each, recorded within a second or two.
    const answer = await eventually(
      async () => {
        const { json } = await api(`kind=series&device=q-low&service=Switch&characteristic=On&from=${Date.now() - 3_600_000}&bucket=1h`);
        return (json.buckets as unknown[] | undefined)?.length ? json : undefined;
      },
      15_000,
      "q-low's Switch On in the history",
    );
    const buckets = answer.buckets as Array<{ count: number; min: number; max: number; avg: number }>;
    assert.equal(buckets.length, 1);
    assert.deepEqual([buckets[0]!.min, buckets[0]!.max, buckets[0]!.avg], [0, 0, 0]);
    const table = await cli('series', 'q-low', 'Switch', 'On', '--from', '1h', '--bucket', '10m');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^BUCKET START\s+COUNT\s+AVG\s+MIN\s+MAX\n\d{4}-\d\d-\d\dT[\d:.]+Z\s+\d+\s+0\s+0\s+0$/m);
    const fine = await cli('series', 'q-low', 'Switch', 'On', '--from', '30d', '--bucket', '1s');
    assert.equal(fine.status, 2);
    assert.match(fine.stderr, /--bucket: the range holds \d+ buckets of this size, over the limit of 5000: take a larger bucket or a shorter range/);
  });

  it('with the hub stopped, the CLI answers from the store the same way', async () => {
    const live = JSON.parse((await cli('firmware', '1.27.0', '--runtime', '--json')).stdout) as unknown;
    assert.equal(await hub.stop('SIGTERM'), 0);
    const stored = await cli('firmware', '1.27.0', '--runtime', '--json');
    assert.equal(stored.status, 0, stored.stderr);
    assert.deepEqual(JSON.parse(stored.stdout), live);
    const memory = await cli('memory', '--below', '50000');
    assert.match(memory.stdout, /^q-low\s+12000\s+/m);
  });
});
