/**
 * Issue 16, ESP-NOW, the hub's side of pairing (review 16's hub findings): an unpaired gateway gets
 * none of the peripheral's writes, not while the hub waits for its answer, not from a stored session
 * [E-13]; unpairing and removing the gateway take the peripheral's device with them, so its id starts
 * afresh [E-14]; one pairing at a time per peripheral [E-14]; the hub's explanations of a 5xx reach the
 * CLI; pair and unpair are in the security log [A-11]; `pair --out` never reuses an existing file. The
 * gateways are MQTT.js clients answering the hub's commands as mqttkit.espnow.Gateway does (the radio
 * side is espnow.test.ts's), against a real hub with the embedded broker.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { readHubToken } from '../../src/store/runtime-file.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin, devicePassword, subackCode } from '../helpers/mqtt-device.js';
import { postgresBinDir, type RunningPostgres, requirePostgres, startPostgres } from '../helpers/postgres.js';

interface Gateway {
  client: MqttClient;
  /** The commands it heard on cmnd/<id>/OTA. */
  heard: string[];
  /** What reached it on HomeKit/… */
  got: string[];
}

/** What the tests do at one hub: its API (with the CLI's local token), its gateways, its CLI. */
function hubTools(hubOf: () => RunningHub, clients: MqttClient[]) {
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`http://127.0.0.1:${hubOf().info.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${readHubToken(hubOf().dataDir)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  const deviceIds = async () => ((await api('GET', '/api/devices')).json as unknown as Array<{ id: string }>).map((d) => d.id);
  const pairedTo = async () =>
    new Map(
      ((await api('GET', '/api/espnow/pairings')).json as unknown as Array<{ peripheral: string; gateway: string }>).map((p) => [p.peripheral, p.gateway]),
    );

  /** A gateway as mqttkit.espnow.Gateway behaves on MQTT; `answer` says which commands it confirms. */
  const connectGateway = async (id: string, answer: { pair?: boolean; unpair?: boolean; delayMs?: number }, clean = true): Promise<Gateway> => {
    const client = await mqtt.connectAsync(hubOf().info.mqtt.address, {
      clientId: id,
      username: id,
      password: devicePassword(id),
      protocolVersion: 4,
      reconnectPeriod: 0,
      clean,
    });
    client.on('error', () => {});
    clients.push(client);
    const gateway: Gateway = { client, heard: [], got: [] };
    client.on('message', (topic, payload) => {
      if (topic !== `cmnd/${id}/OTA`) return void gateway.got.push(`${topic} ${payload.toString()}`);
      const text = payload.toString();
      gateway.heard.push(text);
      const [name, peripheral] = text.split(' ');
      const reply = (line: string) => setTimeout(() => client.publish(`stat/${id}/Log`, line, { qos: 1 }), answer.delayMs ?? 0);
      if (name === 'espnow_pair' && answer.pair) reply(`espnow: pairing window open for ${peripheral} for 300 s`);
      if (name === 'espnow_unpair' && answer.unpair) reply(`espnow: ${peripheral} unpaired, its key forgotten`);
    });
    await client.subscribeAsync(`cmnd/${id}/OTA`, { qos: 1 });
    await client.publishAsync(`HomeKit/${id}/$state`, 'online', { qos: 1, retain: true });
    await eventually(async () => (await deviceIds()).includes(id), 10_000, `the hub sees ${id}`);
    return gateway;
  };
  /** The gateway reports a value for its peripheral, so the hub holds the peripheral's device (an accessory). */
  const report = async (gateway: Gateway, peripheral: string) => {
    await gateway.client.publishAsync(`HomeKit/${peripheral}/TemperatureSensor/CurrentTemperature`, '21', { qos: 1 });
    await eventually(async () => (await deviceIds()).includes(peripheral), 10_000, `the hub holds ${peripheral}`);
  };
  const pair = async (gateway: string, peripheral: string) => {
    const paired = await cliAsync(['espnow', 'pair', gateway, peripheral, '--json', '--data-dir', hubOf().dataDir]);
    assert.equal(paired.status, 0, paired.stderr);
  };

  return { api, deviceIds, pairedTo, connectGateway, report, pair };
}

describe('ESP-NOW pairing at the hub: revocation, removal, one at a time', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let watcher: MqttClient;
  const clients: MqttClient[] = [];

  before(async () => {
    hub = await startHub();
    watcher = await connectAdmin(hub.info.mqtt.address, 'watcher', addAdmin(hub.dataDir, 'watcher'));
    clients.push(watcher);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  const { api, deviceIds, pairedTo, connectGateway, report, pair } = hubTools(() => hub, clients);

  it("an unpaired gateway gets none of the peripheral's writes: not while the hub waits for its answer, not from a stored session", async () => {
    // A gateway that asks for a persistent session and does not confirm the unpairing (out of reach).
    const gw = await connectGateway('gw-1', { pair: true }, false);
    await pair('gw-1', 'soil-1');
    await eventually(async () => (await subackCode(gw.client, 'HomeKit/soil-1/+/+/set')) === 1, 10_000, 'the gateway subscribed to its writes');
    await report(gw, 'soil-1');
    await watcher.publishAsync('HomeKit/soil-1/Switch/On/set', 'while-paired', { qos: 1 });
    await eventually(() => gw.got.includes('HomeKit/soil-1/Switch/On/set while-paired'), 5000, 'a write while paired reaches the gateway');

    const unpairing = cliAsync(['espnow', 'unpair', 'soil-1', '--json', '--data-dir', hub.dataDir]);
    await eventually(async () => !(await pairedTo()).has('soil-1'), 10_000, 'the pairing gone (the hub now waits for the gateway)');
    assert.ok(gw.client.connected, 'the hub still waits for the gateway’s answer on its connection');
    await watcher.publishAsync('HomeKit/soil-1/Switch/On/set', 'during-unpair', { qos: 1 });
    const unpaired = await unpairing;
    assert.equal(unpaired.status, 0, unpaired.stderr);
    assert.equal((JSON.parse(unpaired.stdout) as { gatewayForgot: boolean }).gatewayForgot, false);
    await eventually(() => !gw.client.connected, 5000, 'the gateway’s connection dropped');
    await watcher.publishAsync('HomeKit/soil-1/Switch/On/set', 'after-unpair', { qos: 1 });

    // It comes back asking for its old session: the hub gives it a clean one, with nothing queued.
    const back = await mqtt.connectAsync(hub.info.mqtt.address, {
      clientId: 'gw-1',
      username: 'gw-1',
      password: devicePassword('gw-1'),
      protocolVersion: 4,
      reconnectPeriod: 0,
      clean: false,
    });
    clients.push(back);
    let sessionPresent: boolean | undefined;
    const got: string[] = [];
    back.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    back.on('connect', (ack) => (sessionPresent = ack.sessionPresent));
    await back.subscribeAsync('HomeKit/gw-1/+/+/set', { qos: 1 });
    await watcher.publishAsync('HomeKit/gw-1/Switch/On/set', 'own', { qos: 1 });
    await eventually(() => got.includes('HomeKit/gw-1/Switch/On/set own'), 5000, 'a write of its own (after anything queued)');
    assert.notEqual(sessionPresent, true, 'no stored session');
    assert.deepEqual(
      [...gw.got, ...got].filter((m) => m.startsWith('HomeKit/soil-1/')),
      ['HomeKit/soil-1/Switch/On/set while-paired'],
      'nothing for soil-1 once unpaired',
    );
  });

  it("unpairing removes the peripheral's device: whoever registers its id next does not get the old accessory", async () => {
    assert.ok(!(await deviceIds()).includes('soil-1'), 'soil-1 is out of the hub (and HomeKit) once unpaired');
    // Open registration: the id is free, as any unused id; what connects under it starts afresh.
    const stranger = await mqtt.connectAsync(hub.info.mqtt.address, {
      clientId: 'soil-1',
      username: 'soil-1',
      password: 'a stranger’s password 1',
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    clients.push(stranger);
    await stranger.publishAsync('HomeKit/soil-1/$state', 'online', { qos: 1, retain: true });
    await eventually(async () => (await api('GET', '/api/devices/soil-1')).status === 200, 10_000, 'the stranger’s new device');
    const view = (await api('GET', '/api/devices/soil-1')).json as { services?: unknown[] };
    assert.ok(!JSON.stringify(view).includes('TemperatureSensor'), `none of the old accessory's services: ${JSON.stringify(view).slice(0, 300)}`);
  });

  it("removing a gateway removes its peripherals' devices", async () => {
    const gw = await connectGateway('gw-2', { pair: true, unpair: true });
    await pair('gw-2', 'soil-2');
    await eventually(async () => (await subackCode(gw.client, 'HomeKit/soil-2/#')) === 1, 10_000, 'gw-2 speaks for soil-2');
    await report(gw, 'soil-2');
    const removed = await cliAsync(['device', 'remove', 'gw-2', '--data-dir', hub.dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    const ids = await deviceIds();
    assert.ok(!ids.includes('gw-2') && !ids.includes('soil-2'), JSON.stringify(ids));
    assert.ok(!(await pairedTo()).has('soil-2'));
  });

  it('a gateway that never opens the window: the CLI says so (not "internal error")', async () => {
    await connectGateway('gw-silent', {});
    const paired = await cliAsync(['espnow', 'pair', 'gw-silent', 'soil-4', '--data-dir', hub.dataDir]);
    assert.equal(paired.status, 1);
    assert.match(paired.stderr, /is gw-silent running mqttkit\.espnow\.Gateway\?/);
    assert.ok(!(await pairedTo()).has('soil-4'), 'nothing paired');
  });

  it('pair --out refuses an existing file (its mode and other links stay): nothing is paired, the code goes nowhere', async (t) => {
    const out = join(hub.dataDir, '..', `espnow-pair-${process.pid}.json`);
    const fresh = `${out}.new`;
    t.after(() => {
      rmSync(out, { force: true });
      rmSync(fresh, { force: true });
    });
    writeFileSync(out, 'notes\n', { mode: 0o644 });
    await connectGateway('gw-out', { pair: true });
    const paired = await cliAsync(['espnow', 'pair', 'gw-out', 'soil-5', '--out', out, '--data-dir', hub.dataDir]);
    const mode = statSync(out).mode & 0o777;
    const text = readFileSync(out, 'utf8');
    assert.equal(paired.status, 1, `exit ${paired.status}, file mode ${mode.toString(8)}: ${paired.stdout}`);
    assert.match(paired.stderr, /exists: remove it .* or choose another --out path/);
    assert.equal(text, 'notes\n');
    assert.ok(!(await pairedTo()).has('soil-5'));
    // A new file is made owner-only, and the CLI says what the code is worth after pairing.
    const ok = await cliAsync(['espnow', 'pair', 'gw-out', 'soil-5', '--out', fresh, '--data-dir', hub.dataDir]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
    assert.match(ok.stdout, /destroy every copy of the code/);
  });

  it('pairing and unpairing are in the security log, with who did it [A-11]', async () => {
    await hub.printed(/ESP-NOW peripheral soil-1 unpaired by mqttkit-cli/);
    const lines = hub
      .output()
      .split('\n')
      .filter((l) => l.includes('"security":"espnow-'))
      .map((l) => JSON.parse(l) as { security: string; msg: string });
    assert.ok(lines.some((l) => l.security === 'espnow-paired' && l.msg === 'ESP-NOW peripheral soil-1 paired to gateway gw-1 by mqttkit-cli'));
    assert.ok(lines.some((l) => l.security === 'espnow-unpaired' && l.msg === 'ESP-NOW peripheral soil-1 unpaired by mqttkit-cli'));
  });
});

// [E-14] On PostgreSQL each check is a round trip to the server: two requests could both pass them.
describe('ESP-NOW pairing at a hub on PostgreSQL: one at a time', { timeout: 120_000 }, () => {
  let postgres: RunningPostgres | undefined;
  let hub: RunningHub | undefined;
  const clients: MqttClient[] = [];
  before(async () => {
    const bin = postgresBinDir();
    if (!bin) return;
    postgres = await startPostgres(bin);
    hub = await startHub({ args: ['--database-url', await postgres.createDatabase('espnow')] });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    await postgres?.stop();
  });
  const { api, pairedTo, connectGateway } = hubTools(() => hub!, clients);

  it('two requests pairing one peripheral to two gateways at once: one wins, the other is refused and its gateway never gets a code', async (t) => {
    if (!hub) return void requirePostgres(t);
    const gateways = await Promise.all(['gw-a', 'gw-b', 'gw-c'].map((id) => connectGateway(id, { pair: true, delayMs: 300 })));
    // Three keep-alive connections open first, so that the three requests reach the hub together.
    await Promise.all([1, 2, 3].map(() => api('GET', '/api/espnow/pairings')));
    const answers = await Promise.all(['gw-a', 'gw-b', 'gw-c'].map((gateway) => api('POST', '/api/espnow/pairings', { gateway, peripheral: 'soil-3' })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 409, 409], JSON.stringify(answers));
    const winner = ['gw-a', 'gw-b', 'gw-c'][answers.findIndex((a) => a.status === 200)]!;
    assert.equal((await pairedTo()).get('soil-3'), winner);
    for (const [n, g] of gateways.entries()) {
      const codes = g.heard.filter((c) => c.startsWith('espnow_pair soil-3 '));
      assert.equal(codes.length, ['gw-a', 'gw-b', 'gw-c'][n] === winner ? 1 : 0, `${['gw-a', 'gw-b', 'gw-c'][n]} heard ${JSON.stringify(g.heard)}`);
    }
    for (const answer of answers.filter((a) => a.status === 409)) assert.match(String(answer.json.error), new RegExp(`paired to gateway ${winner}`));
  });
});
