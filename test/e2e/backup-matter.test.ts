/**
 * Issue 17: `mqttkit backup` carries the Matter bridge (`<data>/matter/`: fabrics, keys, pairing code)
 * and the dashboard's `--http-tls auto` certificate, so a restored hub is the same hub to every Matter
 * controller (no new commissioning, the same endpoint numbers) and to browsers and the CLI (the same
 * certificate fingerprint). One commissioning by matter.js's own controller serves every test.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import type { ClientNode } from '@matter/main';
import type { MqttClient } from 'mqtt';
import { readBackup, rewriteBackup } from '../helpers/backup-file.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { bridgedDevice, clusterState, freeUdpPort, type MatterController, readAttribute, startMatterController } from '../helpers/matter-controller.js';
import { cli, cliAsync, connectDevice } from '../helpers/mqtt-device.js';

/** The SHA-256 fingerprint of the certificate the dashboard serves (as a browser's exception pins it). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('backup and restore of the Matter bridge and the HTTPS certificate', { timeout: 180_000 }, () => {
  const dirs: string[] = [];
  const hubs: RunningHub[] = [];
  const clients: MqttClient[] = [];
  const controllerDir = mkdtempSync(join(tmpdir(), 'mqttkit-matter-controller-'));
  let controller: MatterController;
  let peer: ClientNode;
  let matterPort: number;
  let fingerprint: string;
  let numbers: { node: number; temperature: number };
  let backup: string;
  let uniqueId: unknown;
  const newDir = () => {
    const dir = tempDataDir();
    dirs.push(dir);
    return dir;
  };
  const args = () => ['--matter', '--matter-port', String(matterPort), '--http-tls', 'auto', '--log-level', 'warn'];

  before(async () => {
    matterPort = await freeUdpPort();
    const original = await startHub({ dataDir: newDir(), args: args() });
    hubs.push(original);
    const sensor = await connectDevice(original.info.mqtt.address, 'b-sensor');
    sensor.on('error', () => {});
    clients.push(sensor);
    await sensor.publishAsync('HomeKit/b-sensor/TemperatureSensor/CurrentTemperature', '21.5', { qos: 1 });
    const code = /Matter pairing code: (\d{11})/.exec(original.output())?.[1];
    assert.ok(code, original.output());
    controller = await startMatterController(controllerDir);
    peer = await controller.commission(matterPort, code);
    const temperature = await eventually(
      () => bridgedDevice(peer, 'b-sensor')?.children.find((e) => clusterState(e, 'temperatureMeasurement') !== undefined),
      15_000,
      'the temperature endpoint',
    );
    numbers = { node: bridgedDevice(peer, 'b-sensor')!.node.number!, temperature: temperature.number! };
    fingerprint = await servedFingerprint(original.info.httpPort!);
    uniqueId = await readAttribute(peer, 0, 'basicInformation', 'uniqueId');
    assert.match(String(uniqueId), /^[0-9a-f]{32}$/);
  });

  after(async () => {
    for (const client of clients) await client.endAsync().catch(() => {});
    await controller?.close().catch(() => {});
    for (const hub of hubs) await hub.stop('SIGKILL');
    dirs.forEach(removeDataDir);
    rmSync(controllerDir, { recursive: true, force: true });
  });

  it("backs up, while the hub runs, Matter's files as one set and the certificate with its key", async () => {
    backup = join(newDir(), 'hub.backup');
    const result = await cliAsync(['backup', backup, '--data-dir', hubs[0]!.dataDir]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Matter: \d+ files \(fabrics, keys, pairing code\), copied once unchanged for 250 ms/);
    assert.match(result.stdout, /HTTPS: the dashboard's certificate and its key/);
    const names = readBackup(readFileSync(backup)).entries.map((e) => e.name);
    for (const name of [
      'matter/pairing.json',
      'matter/mqttkit/fabrics.fabrics',
      'matter/mqttkit/root.operationalCredentials.nocs',
      'https/cert.pem',
      'https/key.pem',
    ])
      assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    assert.ok(!names.some((name) => /matter\.(lock|pid)$|\.tmp$/.test(name)), "matter.js's lock, pid and temp files are not state");
  });

  it('restores into a new data dir: the controller reads without commissioning anew, at the same endpoint numbers; the same certificate', async () => {
    await hubs[0]!.stop('SIGTERM');
    const restored = join(newDir(), 'restored');
    const result = cli(['restore', backup, '--data-dir', restored]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Matter: the bridge with its fabrics and pairing code/);
    for (const [path, mode] of [
      ['matter', 0o700],
      ['matter/mqttkit', 0o700],
      ['matter/pairing.json', 0o600],
      ['matter/mqttkit/fabrics.fabrics', 0o600],
      ['https', 0o700],
      ['https/key.pem', 0o600],
    ] as const)
      assert.equal(statSync(join(restored, path)).mode & 0o777, mode, path);

    const hub = await startHub({ dataDir: restored, pincode: null, args: args() });
    hubs.push(hub);
    const sensor = await connectDevice(hub.info.mqtt.address, 'b-sensor');
    sensor.on('error', () => {});
    clients.push(sensor);
    await sensor.publishAsync('HomeKit/b-sensor/TemperatureSensor/CurrentTemperature', '23', { qos: 1 });
    // The controller's old session died with the old process: it reads over CASE with its fabric, which the restored hub must hold.
    await eventually(
      async () => (await readAttribute(peer, numbers.temperature, 'temperatureMeasurement', 'measuredValue').catch(() => undefined)) === 2300,
      30_000,
      `measuredValue 2300 read at endpoint ${numbers.temperature} of the restored hub`,
    );
    assert.equal(bridgedDevice(peer, 'b-sensor')?.node.number, numbers.node, 'the same bridged node number');
    // An ecosystem that keys the bridge on its UniqueID (Home Assistant's Matter server) sees the same bridge.
    assert.equal(await readAttribute(peer, 0, 'basicInformation', 'uniqueId'), uniqueId, 'the same UniqueID in another data dir');
    assert.equal(await servedFingerprint(hub.info.httpPort!), fingerprint, 'the same certificate: no new browser warning, the CLI pin holds');
  });

  it('refuses a forged entry name or a damaged Matter or HTTPS file, naming it, before writing anything', () => {
    const bytes = readFileSync(backup);
    const rename = (from: string, to: string) => rewriteBackup(bytes, (entries) => entries.map((e) => (e.name === from ? { ...e, name: to } : e)));
    const replace = (name: string, data: string) =>
      rewriteBackup(bytes, (entries) => entries.map((e) => (e.name === name ? { ...e, data: Buffer.from(data) } : e)));
    const nodes = 'matter/mqttkit/root.operationalCredentials.nocs';
    const cases: Array<[string, Buffer, RegExp]> = [
      ...[
        'matter/mqttkit/../../mqttkit.db',
        'matter/../../../etc/cron.d/x',
        '/etc/passwd',
        'matter/mqttkit/sub/file',
        'matter/mqttkit/matter.lock',
        'https/other.pem',
        '../outside',
      ].map((forged): [string, Buffer, RegExp] => [
        `the forged name ${forged}`,
        rename(nodes, forged),
        new RegExp(`holds an entry that is not a state file \\(${JSON.stringify(forged).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`),
      ]),
      [
        'a damaged Matter file',
        replace(nodes, '{"damaged'),
        /does not hold a consistent state:\n.*matter\/mqttkit\/root\.operationalCredentials\.nocs is damaged \(not JSON/,
      ],
      ['a damaged pairing file', replace('matter/pairing.json', '{"passcode":1}'), /matter\/pairing\.json is damaged/],
      [
        'a certificate without its key',
        rewriteBackup(bytes, (entries) => entries.filter((e) => e.name !== 'https/key.pem')),
        /https\/key\.pem is missing while https\/cert\.pem is there/,
      ],
      [
        'an oversized Matter file',
        rewriteBackup(bytes, (entries) => entries.map((e) => (e.name === nodes ? { ...e, size: 2 << 20 } : e))),
        /root\.operationalCredentials\.nocs is 2097152 bytes, more than the 1048576/,
      ],
    ];
    for (const [what, content, message] of cases) {
      const file = join(newDir(), 'bad.backup');
      writeFileSync(file, content);
      const target = join(newDir(), 'target');
      const result = cli(['restore', file, '--data-dir', target]);
      assert.notEqual(result.status, 0, what);
      assert.match(result.stderr, message, what);
      assert.ok(!existsSync(target), `${what}: nothing was written`);
    }
  });
});
