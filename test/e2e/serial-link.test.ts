/**
 * Issue 16, Wi-Fi-less hosts: mqttkit.link.Host and mqttkit.link.Bridge (the device library on CPython)
 * joined by a pseudo-terminal wire (test/device/link_relay.py) that the test cuts, mends and fills with
 * noise, against the real hub: the host's values reach HomeKit (hap-controller), HomeKit writes reach the
 * host, commands are answered, time comes from the network (SNTP), and a cut wire, a noisy wire and a
 * bridge reset lose no QoS 1 message; the bridge resets a silent host; the bridge keeps no password.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { accessoryBySerial, characteristicId, characteristicValue, pair } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin } from '../helpers/mqtt-device.js';
import { deviceRoot, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { DEVICE_SCRIPTS as DEVICE, Wire } from '../helpers/serial-wire.js';
import { requireTool } from '../helpers/system-tools.js';

const ID = 'serial-1';
const VALUES = `HomeKit/${ID}/LightSensor/CurrentAmbientLightLevel`;

/** A one-shot SNTP server on loopback: answers every query with a fixed transmit time. */
const NTP_TIME = 1_900_000_000; // 2030-03-17, seconds since 1970
function startNtp(): Promise<Socket> {
  const server = createSocket('udp4');
  server.on('message', (query, peer) => {
    if (query.length < 48) return;
    const answer = Buffer.alloc(48);
    answer[0] = 0x24; // LI 0, version 4, mode 4 (server)
    answer.writeUInt32BE(NTP_TIME + 2_208_988_800, 40);
    server.send(answer, peer.port, peer.address);
  });
  return new Promise((resolve) => server.bind(0, '127.0.0.1', () => resolve(server)));
}

describe('a Wi-Fi-less host over a serial link to a bridge (issue 16)', { timeout: 240_000 }, () => {
  let hub: RunningHub;
  let controller: HttpClient;
  let admin: MqttClient;
  let python: string | undefined;
  let ntp: Socket;
  const wire = new Wire();
  const roots: string[] = [];
  const processes: RunningDevice[] = [];
  const messages: Array<{ topic: string; payload: string; at: number }> = [];
  let host: RunningDevice;
  let bridge: RunningDevice;
  let hostRoot: string;
  let bridgeRoot: string;

  const startBridge = () => {
    bridge = runDevice(python!, join(DEVICE, 'link_bridge.py'), bridgeRoot);
    processes.push(bridge);
    return bridge;
  };
  const startHost = () => {
    host = runDevice(python!, join(DEVICE, 'link_host.py'), hostRoot, ['--counter']);
    processes.push(host);
    return host;
  };
  const command = async (text: string) => {
    const result = await cliAsync(['cmd', ID, text, '--data-dir', hub.dataDir]);
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trimEnd();
  };
  const published = (device: RunningDevice) => device.events.filter((e) => typeof e.published === 'number').map((e) => e.published as number);
  const arrived = () => new Set(messages.filter((m) => m.topic === VALUES).map((m) => Number(m.payload)));
  const brokerOks = () => host.events.filter((e) => e.status === 'broker ok').length;
  /** Every value the host published up to now reaches the broker (QoS 1 end to end). */
  const allArrive = async (what: string) => {
    const sent = published(host);
    await eventually(() => sent.every((n) => arrived().has(n)), 20_000, `${what}: values missing`).catch((e: Error) => {
      const missing = sent.filter((n) => !arrived().has(n));
      const told = (d: RunningDevice) =>
        d
          .output()
          .split('\n')
          .filter((l) => !l.includes('"published"'))
          .slice(-40)
          .join('\n');
      throw new Error(`${e.message}: ${missing.join(', ')}; the host said:\n${told(host)}\nthe bridge said:\n${told(bridge)}`);
    });
    return sent;
  };

  before(async (t) => {
    python = requireTool(t as unknown as TestContext, 'python3', ['python3'], 'apt-get install python3');
    if (!python) return;
    hub = await startHub();
    admin = await connectAdmin(hub.info.mqtt.address, 'tester', addAdmin(hub.dataDir, 'tester'));
    await admin.subscribeAsync(['HomeKit/#', 'stat/#'], { qos: 1 });
    admin.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString(), at: Date.now() }));
    ({ client: controller } = await pair(hub.info.bridges[0]!.port!));
    ntp = await startNtp();
    await wire.start(python);
    const link = { link_timeout: 2 };
    bridgeRoot = deviceRoot({
      broker: '127.0.0.1',
      port: hub.info.mqtt.port,
      uart: wire.paths.bridge,
      ntp_host: '127.0.0.1',
      ntp_port: ntp.address().port,
      host_reset_after: 4,
      ...link,
    });
    hostRoot = deviceRoot({
      device_id: ID,
      uart: wire.paths.host,
      backoff_min: 0.2,
      backoff_max: 1,
      queue: 400,
      keepalive: 10,
      bridge_reset_after: 3,
      ...link,
    });
    roots.push(bridgeRoot, hostRoot);
    startBridge();
    startHost();
  });

  after(async () => {
    for (const p of processes) {
      p.child.kill('SIGCONT');
      await p.kill();
    }
    await wire.stop();
    ntp?.close();
    await controller?.close().catch(() => {});
    admin?.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    roots.forEach(removeRoot);
  });

  it("the host's values reach HomeKit, a HomeKit write reaches the host, commands are answered, time comes from the network", async (t) => {
    if (!python) return t.skip('no python3');
    await host.waitFor((e) => e.status === 'broker ok', 20_000, 'the host online through the bridge');
    const db = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return accessoryBySerial(current, ID) && characteristicId(current, ID, 'LightSensor', 'CurrentAmbientLightLevel') ? current : undefined;
      },
      15_000,
      'the accessory',
    );
    assert.equal(characteristicValue(db, ID, 'AccessoryInformation', 'Name'), 'Serial probe');
    const light = characteristicId(db, ID, 'LightSensor', 'CurrentAmbientLightLevel')!;
    await eventually(async () => Number((await controller.getCharacteristics([light])).characteristics[0]!.value) >= 3, 10_000, 'a counter value in HomeKit');

    await controller.setCharacteristics({ [characteristicId(db, ID, 'Switch', 'On')!]: true });
    await host.waitFor((e) => e.set === 'On' && e.value === true, 10_000, 'the write at the host');
    await eventually(() => messages.some((m) => m.topic === `HomeKit/${ID}/Switch/On` && m.payload === '1'), 10_000, 'the confirmation');

    const stats = JSON.parse(await command('stats')) as { published: number };
    assert.ok(stats.published >= 3, JSON.stringify(stats));
    const timed = await host.waitFor((e) => e.status === 'time', 10_000, 'network time from the bridge');
    assert.equal(timed.detail, NTP_TIME);
    const link = JSON.parse(await command('link')) as { up: boolean; time: number; frames_in: number };
    assert.equal(link.up, true);
    assert.ok(link.time >= NTP_TIME && link.time < NTP_TIME + 120, `host time ${link.time}`);
    // [L-16] OTA through the bridge: `open` answers the bridge's address, where the host's files are fetched from
    assert.equal(await command('open x'), 'ota open at 127.0.0.1');
  });

  it("the bridge's Wi-Fi going down and coming back reaches the host as status values", async (t) => {
    if (!python) return t.skip('no python3');
    const since = Date.now();
    writeFileSync(join(bridgeRoot, 'wifi_off'), '');
    await host.waitFor((e) => e.status === 'wifi down' && e.at >= since, 10_000, "'wifi down' at the host");
    rmSync(join(bridgeRoot, 'wifi_off'));
    await host.waitFor((e) => e.status === 'wifi up' && e.at >= since, 10_000, "'wifi up' at the host");
  });

  it('a noisy wire (garbage, partial frames, bit flips, duplicates) loses nothing and delivers nothing corrupted', async (t) => {
    if (!python) return t.skip('no python3');
    const seed = Math.floor(Math.random() * 1e9);
    const before = published(host).length;
    await wire.say(`noise ${seed}`);
    await eventually(() => published(host).length >= before + 25, 20_000, 'values published through the noise');
    const counts = await wire.say('clean');
    assert.ok(counts.garbage! + counts.truncated! + counts.flipped! > 0, `the relay did damage frames (seed ${seed}): ${JSON.stringify(counts)}`);
    await allArrive(`noise seed ${seed}`);
    const values = messages.filter((m) => m.topic === VALUES).map((m) => m.payload);
    assert.ok(
      values.every((v) => /^\d+$/.test(v) && published(host).includes(Number(v))),
      `only values the host sent (seed ${seed}): ${values.filter((v) => !published(host).includes(Number(v)))}`,
    );
    const link = JSON.parse(await command('link')) as Record<string, number>;
    assert.ok(
      link.bad_crc! + link.bad_cobs! + link.bad_length! + link.duplicate! + link.stale! > 0,
      `the host saw damage (seed ${seed}): ${JSON.stringify(link)}`,
    );
  });

  it('a cut wire: the host goes offline, publishes on, and every QoS 1 value arrives once the wire is mended', async (t) => {
    if (!python) return t.skip('no python3');
    const oks = brokerOks();
    const since = Date.now();
    await wire.say('cut');
    await host.waitFor((e) => e.status === 'link down' && e.at >= since, 10_000, 'the host sees the link go');
    await eventually(() => messages.some((m) => m.topic === `HomeKit/${ID}/$state` && m.payload === 'offline' && m.at >= since), 10_000, 'the last will');
    const during = published(host).length;
    await eventually(() => published(host).length >= during + 10, 10_000, 'values published while cut');
    await wire.say('mend');
    await eventually(() => brokerOks() > oks, 20_000, 'back online');
    await allArrive('after the cut');
  });

  it('a dead bridge: the host pulls its reset line, and after the reset every QoS 1 value arrives; the bridge keeps none of the host password', async (t) => {
    if (!python) return t.skip('no python3');
    const oks = brokerOks();
    const since = Date.now();
    await bridge.kill();
    await host.waitFor((e) => e.status === 'link down' && e.at >= since, 10_000, 'the host sees the bridge gone');
    const during = published(host).length;
    await eventually(() => published(host).length >= during + 5, 10_000, 'values published while the bridge is down');
    // [L-12] bridge_reset_after (3 s here) of link down: the host pulls the bridge's reset line
    await host.waitFor((e) => e.reset_line === 'bridge' && e.level === 0 && e.at >= since, 15_000, 'the host resets the bridge');
    startBridge(); // the reset line restarts the board: here, the bridge process
    await eventually(() => brokerOks() > oks, 20_000, 'back online through the new bridge');
    await allArrive('after the bridge reset');

    const password = readFileSync(join(hostRoot, 'mqtt_password'), 'utf8').trim();
    assert.ok(password.length >= 16);
    for (const p of processes.filter((d) => d.root === bridgeRoot)) assert.ok(!p.output().includes(password), 'the bridge never prints the password');
    for (const name of readdirSync(bridgeRoot)) {
      const path = join(bridgeRoot, name);
      if (statSync(path).isFile()) assert.ok(!readFileSync(path, 'utf8').includes(password), `the bridge's ${name} holds no password`);
    }
  });

  it('the bridge resets a host that stays silent, and the host comes back', async (t) => {
    if (!python) return t.skip('no python3');
    const oks = brokerOks();
    const since = Date.now();
    const frozen = host;
    frozen.child.kill('SIGSTOP'); // a hung host: its UART falls silent
    const pulled = await bridge.waitFor((e) => e.reset_line === 'host' && e.level === 0 && e.at >= since, 20_000, 'the bridge pulls the host reset line');
    assert.ok(pulled.at - since >= 3000, 'not before host_reset_after');
    // The reset line restarts the board: here, the host process.
    frozen.child.kill('SIGCONT');
    await frozen.kill();
    startHost();
    await host.waitFor((e) => e.status === 'broker ok', 20_000, 'the host back online');
    assert.ok(oks >= 1);
    await eventually(() => messages.some((m) => m.topic === `HomeKit/${ID}/$state` && m.payload === 'online' && m.at > since), 10_000, '$state online again');
  });
});
