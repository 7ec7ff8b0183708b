/**
 * Issue 16, ESP-NOW: a gateway (mqttkit.espnow.Gateway) and three battery peripherals
 * (mqttkit.espnow.Peripheral), the real device library on CPython, on a simulated ESP-NOW medium (a
 * UDP relay that is also the attacker's radio), against a real hub, with hap-controller as the iPhone.
 * Pairing goes through `mqttkit espnow pair` (a one-time code in the peripheral's espnow_pair.json, as
 * copied over USB); values reach HomeKit, each peripheral its own accessory; a HomeKit write waits for a
 * sleeping peripheral's next wake; replayed, forged, reordered, spoofed and stale frames are refused and
 * counted in the gateway's `stats`, and nothing of them reaches HomeKit; the broker lets a gateway speak
 * only for its paired peripherals (docs/protocol.md [E-1]...[E-10]).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { HttpClient } from 'hap-controller';
import type { MqttClient } from 'mqtt';
import { Air, espnowFrame, FRAME, frameKind } from '../helpers/espnow-air.js';
import { characteristicId, pair } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cliAsync, connectAdmin, connectDevice, subackCode } from '../helpers/mqtt-device.js';
import { deviceRoot, type RunningDevice, removeRoot, runDevice } from '../helpers/python-device.js';
import { requireTool } from '../helpers/system-tools.js';

const GATEWAY_SCRIPT = fileURLToPath(new URL('../../../test/device/espnow_gateway.py', import.meta.url));
const PERIPHERAL_SCRIPT = fileURLToPath(new URL('../../../test/device/espnow_peripheral.py', import.meta.url));
const GATEWAY = 'espnow-gw';
const GW_MAC = '02aa00000001';
const PERIPHERALS = ['soil-1', 'soil-2', 'soil-3'] as const;
const MAC: Record<string, string> = { 'soil-1': '02bb00000001', 'soil-2': '02bb00000002', 'soil-3': '02bb00000003' };
/** soil-1 plays an ESP8266 (pc/espnow.py refuses what its espnow lacks and drops broadcasts it cannot hear). */
const CHIP: Record<string, string> = { 'soil-1': 'esp8266', 'soil-2': 'esp32', 'soil-3': 'esp32' };

interface Stats {
  frames: number;
  relayed: number;
  unpaired: number;
  bad_tag: number;
  stale: number;
  reused_txid: number;
  malformed: number;
  repeated: number;
  peripherals: string[];
  waiting: number;
}

describe('ESP-NOW peripherals through a gateway', { timeout: 240_000 }, () => {
  let hub: RunningHub;
  let air: Air;
  let controller: HttpClient;
  let admin: MqttClient;
  let python: string | undefined;
  let gateway: RunningDevice;
  let gatewayRoot = '';
  const roots = new Map<string, string>();
  const devices: RunningDevice[] = [];
  const clients: MqttClient[] = [];
  const messages: Array<{ topic: string; payload: string }> = [];

  const skip = (t: TestContext) => {
    python ??= requireTool(t, 'python3', ['python3'], 'apt-get install python3');
    return !python || !hub;
  };
  const track = (c: MqttClient) => {
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  /** One wake of a peripheral: the process starts, sends, and deep-sleeps (ends). */
  const wake = async (id: string, temperature: number) => {
    const device = runDevice(python!, PERIPHERAL_SCRIPT, roots.get(id)!, [String(temperature)], {
      MQTTKIT_ESPNOW_AIR: air.address,
      MQTTKIT_ESPNOW_MAC: MAC[id]!,
      MQTTKIT_ESPNOW_CHIP: CHIP[id]!,
    });
    devices.push(device);
    const code = await device.exited;
    assert.equal(code, 0, `peripheral ${id} ended with ${code}:\n${device.output()}`);
    return device;
  };
  const stats = async (): Promise<Stats> => {
    const result = await cliAsync(['cmd', GATEWAY, 'stats', '--data-dir', hub.dataDir]);
    assert.equal(result.status, 0, result.stderr);
    return (JSON.parse(result.stdout) as { espnow: Stats }).espnow;
  };
  const read = async (id: string, service: string, characteristic: string) => {
    const aidIid = characteristicId(await controller.getAccessories(), id, service, characteristic);
    if (!aidIid) return undefined;
    return (await controller.getCharacteristics([aidIid])).characteristics[0]!.value;
  };
  const states = async () =>
    new Map(
      (JSON.parse((await cliAsync(['devices', '--json', '--data-dir', hub.dataDir])).stdout) as Array<{ id: string; state: string }>).map((d) => [
        d.id,
        d.state,
      ]),
    );
  const peripheralTraffic = (from: number) => messages.slice(from).filter((m) => /^HomeKit\/soil-\d\//.test(m.topic) && !m.topic.endsWith('/set'));

  before(async () => {
    hub = await startHub();
    air = await Air.open();
    admin = track(await connectAdmin(hub.info.mqtt.address, 'watcher', addAdmin(hub.dataDir, 'watcher')));
    admin.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }));
    await admin.subscribeAsync('HomeKit/#', { qos: 1 });
    ({ client: controller } = await pair(hub.info.bridges[0]!.port!));
  });

  after(async () => {
    for (const d of devices) await d.kill();
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await controller?.close();
    air?.close();
    await hub?.stop();
    if (hub) removeDataDir(hub.dataDir);
    for (const root of [gatewayRoot, ...roots.values()]) if (root) removeRoot(root);
  });

  it('pairs three peripherals with one-time codes; their values reach HomeKit, each its own accessory, sleeping between sends', async (t) => {
    if (skip(t)) return;
    gatewayRoot = deviceRoot({ broker: '127.0.0.1', port: hub.info.mqtt.port, device_id: GATEWAY, backoff_min: 0.2, backoff_max: 2 });
    gateway = runDevice(python!, GATEWAY_SCRIPT, gatewayRoot, [], { MQTTKIT_ESPNOW_AIR: air.address, MQTTKIT_ESPNOW_MAC: GW_MAC });
    devices.push(gateway);
    await gateway.waitFor((e) => e.status === 'broker ok', 15_000, 'the gateway on MQTT');
    await eventually(async () => (await states()).get(GATEWAY) === 'online', 10_000, 'the hub sees the gateway');

    for (const [n, id] of PERIPHERALS.entries()) {
      const root = deviceRoot({ device_id: id, espnow_timeout_ms: 1000 });
      roots.set(id, root);
      const paired = await cliAsync(['espnow', 'pair', GATEWAY, id, '--out', join(root, 'espnow_pair.json'), '--data-dir', hub.dataDir]);
      assert.equal(paired.status, 0, paired.stderr);
      assert.match(readFileSync(join(root, 'espnow_pair.json'), 'utf8'), /^\{"code":"[0-9a-f]{32}"\}\n$/);
      const node = await wake(id, 20 + n);
      assert.ok(
        node.events.some((e) => e.status === 'espnow paired'),
        node.output(),
      );
      assert.ok(
        node.events.some((e) => e.status === 'espnow sent'),
        node.output(),
      );
      assert.equal(existsSync(join(root, 'espnow_pair.json')), false, 'the one-time code is gone once used');
      assert.equal(existsSync(join(root, 'espnow.json')), true, 'the key is kept on the peripheral');
    }
    // The pairing code never went over the air: no frame carries it.
    for (const id of PERIPHERALS) {
      const key = Buffer.from((JSON.parse(readFileSync(join(roots.get(id)!, 'espnow.json'), 'utf8')) as { key: string }).key, 'hex');
      assert.ok(!air.frames.some((f) => f.msg.includes(key)), `${id}'s key is not on the air`);
    }

    for (const [n, id] of PERIPHERALS.entries()) {
      await eventually(async () => (await read(id, 'TemperatureSensor', 'CurrentTemperature')) === 20 + n, 10_000, `${id}'s temperature in HomeKit`);
    }
    const db = await controller.getAccessories();
    assert.equal(
      new Set(PERIPHERALS.map((id) => characteristicId(db, id, 'TemperatureSensor', 'CurrentTemperature')!.split('.')[0])).size,
      3,
      'three accessories',
    );
    await eventually(
      async () => {
        const s = await states();
        return PERIPHERALS.every((id) => s.get(id) === 'sleeping');
      },
      10_000,
      'each peripheral sleeping between sends',
    );
    const listed = JSON.parse((await cliAsync(['espnow', 'list', '--json', '--data-dir', hub.dataDir])).stdout) as Array<{
      peripheral: string;
      gateway: string;
    }>;
    assert.deepEqual(
      listed.map((p) => [p.peripheral, p.gateway]),
      PERIPHERALS.map((id) => [id, GATEWAY]),
    );
  });

  it('a HomeKit write to a sleeping peripheral waits at the gateway and reaches it on its next wake', async (t) => {
    if (skip(t)) return;
    const aidIid = characteristicId(await controller.getAccessories(), 'soil-1', 'Switch', 'On')!;
    const answer = await controller.setCharacteristics({ [aidIid]: true });
    assert.ok(!JSON.stringify(answer).includes('-70402'), JSON.stringify(answer));
    await eventually(async () => (await stats()).waiting === 1, 10_000, 'the write waiting at the gateway');
    const node = await wake('soil-1', 20);
    assert.ok(
      node.events.some((e) => e.write === 'On' && e.value === 1),
      `the write reached the peripheral:\n${node.output()}`,
    );
    // Confirmed by the peripheral (through the gateway), so HomeKit keeps it, and the retained /set is cleared.
    await eventually(() => messages.some((m) => m.topic === 'HomeKit/soil-1/Switch/On' && m.payload === '1'), 10_000, 'the confirmation');
    await eventually(() => messages.some((m) => m.topic === 'HomeKit/soil-1/Switch/On/set' && m.payload === ''), 10_000, 'the retained /set cleared');
    assert.ok([true, 1].includes((await read('soil-1', 'Switch', 'On')) as number), 'On in HomeKit (bools come back as 1)');
    assert.equal((await stats()).waiting, 0);
  });

  it('a REPLY lost on the air: the peripheral retries, gets the same REPLY, applies the write in that wake, and ends sleeping ([E-12])', async (t) => {
    if (skip(t)) return;
    const aidIid = characteristicId(await controller.getAccessories(), 'soil-2', 'Switch', 'On')!;
    await controller.setCharacteristics({ [aidIid]: true });
    await eventually(async () => (await stats()).waiting === 1, 10_000, 'the write waiting at the gateway');
    const before = await stats();
    let dropped = 0;
    // the air loses the first REPLY that carries the write (downlinks are broadcast: no radio retry)
    air.hold = (f) => f.src === GW_MAC && frameKind(f.msg) === FRAME.REPLY && f.msg.includes(Buffer.from('Switch/On')) && dropped++ === 0;
    const mark = messages.length;
    const node = await wake('soil-2', 21);
    air.hold = undefined;
    assert.equal(dropped >= 1, true, 'a REPLY with the write was dropped');
    assert.ok(
      node.events.some((e) => e.write === 'On' && e.value === 1),
      `the write reached the peripheral in the same wake:\n${node.output()}`,
    );
    await eventually(() => messages.slice(mark).some((m) => m.topic === 'HomeKit/soil-2/Switch/On' && m.payload === '1'), 10_000, 'the confirmation');
    await eventually(
      () =>
        messages
          .slice(mark)
          .filter((m) => m.topic === 'HomeKit/soil-2/$state')
          .at(-1)?.payload === 'sleeping 60',
      10_000,
      '$state ends sleeping 60',
    );
    const after = await stats();
    assert.equal(after.waiting, 0, 'confirmed: no longer waiting');
    assert.equal(after.repeated - before.repeated, 1, 'the retried DATA was answered again');
    assert.equal(after.reused_txid, before.reused_txid, 'and not refused');
  });

  it('an attacker on the air replays, forges, reorders, spoofs and delays frames: all refused, counted in stats, nothing reaches HomeKit', async (t) => {
    if (skip(t)) return;
    const before = await stats();
    const mark = messages.length;
    const captured = air.frames.filter((f) => f.src === MAC['soil-2']);
    const data = captured.filter((f) => frameKind(f.msg) === FRAME.DATA && f.msg.includes(Buffer.from('21.0'))).at(-1)!.msg;
    const wakeFrame = captured.filter((f) => frameKind(f.msg) === FRAME.WAKE).at(-1)!.msg;
    assert.ok(data.includes(Buffer.from('21.0')), 'the captured frame carries soil-2 temperature');

    // replay: the last DATA and WAKE of soil-2, as they were
    air.send(MAC['soil-2']!, GW_MAC, data);
    air.send(MAC['soil-2']!, GW_MAC, wakeFrame);
    // forge: the same DATA with another temperature (the tag no longer fits)
    const forged = Buffer.from(data);
    forged.write('99.0', forged.indexOf('21.0'));
    air.send(MAC['soil-2']!, GW_MAC, forged);
    // spoof: a paired peripheral's address with a key of our own; an address nobody paired; a pairing
    // request while no window is open
    const mine = Buffer.alloc(32, 7);
    const now = Math.floor(Date.now() / 1000);
    air.send(MAC['soil-1']!, GW_MAC, espnowFrame(mine, MAC['soil-1']!, FRAME.DATA, 10_000, now, Buffer.from('{"Switch/On":0}')));
    air.send('02cc00000009', GW_MAC, espnowFrame(mine, '02cc00000009', FRAME.DATA, 1, now, Buffer.from('{"Switch/On":0}')));
    air.send('02cc00000009', 'ffffffffffff', espnowFrame(mine, '02cc00000009', FRAME.PAIR, 1, 0, Buffer.concat([Buffer.alloc(16), Buffer.from('soil-9')])));
    // delay: an authentic frame (soil-2's own key) whose timestamp is an hour old
    const key2 = Buffer.from((JSON.parse(readFileSync(join(roots.get('soil-2')!, 'espnow.json'), 'utf8')) as { key: string }).key, 'hex');
    air.send(
      MAC['soil-2']!,
      GW_MAC,
      espnowFrame(key2, MAC['soil-2']!, FRAME.DATA, 2 ** 31, now - 3600, Buffer.from('{"TemperatureSensor/CurrentTemperature":98}')),
    );

    // reorder: soil-3's DATA of one wake is held back; its next wake goes through; then the held one arrives
    air.hold = (f) => f.src === MAC['soil-3'] && frameKind(f.msg) === FRAME.DATA;
    const held = await wake('soil-3', 30);
    assert.ok(
      held.events.some((e) => e.status === 'espnow no reply'),
      held.output(),
    );
    assert.equal((await states()).get('soil-3'), 'sleeping', 'a wake whose data never arrived leaves it sleeping');
    air.hold = undefined;
    const late = air.frames.filter((f) => f.src === MAC['soil-3'] && frameKind(f.msg) === FRAME.DATA).at(-1)!.msg;
    await wake('soil-3', 31);
    await eventually(async () => (await read('soil-3', 'TemperatureSensor', 'CurrentTemperature')) === 31, 10_000, "soil-3's newer value");
    air.send(MAC['soil-3']!, GW_MAC, late);

    // A copy of a peripheral's latest WAKE or DATA within seconds of it is answered again from the
    // gateway's last exchange (the peripheral's own retry looks the same [E-12]), counted `repeated`;
    // older ones are `reused_txid`. Either way nothing is relayed.
    const expected = { replayed: 3, bad_tag: 2, unpaired: 2, stale: 1 };
    const replayed = (s: Stats) => s.reused_txid + s.repeated - before.reused_txid - before.repeated;
    const after = await eventually(
      async () => {
        const s = await stats();
        return replayed(s) >= expected.replayed && s.stale > before.stale ? s : undefined;
      },
      10_000,
      'the refusals counted',
    );
    assert.deepEqual(
      {
        replayed: replayed(after),
        bad_tag: after.bad_tag - before.bad_tag,
        unpaired: after.unpaired - before.unpaired,
        stale: after.stale - before.stale,
      },
      expected,
    );
    assert.equal(after.relayed - before.relayed, 1, "only soil-3's second wake was relayed");
    // Nothing of it reached MQTT or HomeKit: the only peripheral traffic is soil-3's genuine wake.
    const traffic = peripheralTraffic(mark);
    assert.deepEqual([...new Set(traffic.map((m) => m.topic.split('/')[1]))], ['soil-3'], JSON.stringify(traffic));
    assert.ok(!traffic.some((m) => ['99', '99.0', '98', '30', '30.0'].includes(m.payload)), JSON.stringify(traffic));
    assert.equal(await read('soil-2', 'TemperatureSensor', 'CurrentTemperature'), 21);
    assert.equal(await read('soil-3', 'TemperatureSensor', 'CurrentTemperature'), 31);
    assert.ok([true, 1].includes((await read('soil-1', 'Switch', 'On')) as number), 'On in HomeKit (bools come back as 1)');
  });

  it('the broker lets a gateway speak only for its paired peripherals; unpairing revokes it; a peripheral id cannot log in', async (t) => {
    if (skip(t)) return;
    const unpaired = await cliAsync(['espnow', 'unpair', 'soil-1', '--json', '--data-dir', hub.dataDir]);
    assert.equal(unpaired.status, 0, unpaired.stderr);
    assert.equal((JSON.parse(unpaired.stdout) as { gatewayForgot: boolean }).gatewayForgot, true, 'the gateway heard it and forgot the key');
    await gateway.waitFor(
      () => gateway.events.filter((e) => e.status === 'broker ok').length >= 2,
      15_000,
      'the gateway reconnected (its subscriptions made anew)',
    );
    const before = await stats();
    const mark = messages.length;
    await wake('soil-1', 50);
    await eventually(async () => (await stats()).unpaired > before.unpaired, 10_000, "soil-1's frames refused as unpaired");
    assert.deepEqual(peripheralTraffic(mark), [], 'an unpaired peripheral reaches nobody');

    // The gateway's own account, as a client that does not follow the protocol (its password is on its flash).
    await gateway.kill();
    const password = readFileSync(join(gatewayRoot, 'mqtt_password'), 'utf8').trim();
    const rogue = track(await connectDevice(hub.info.mqtt.address, GATEWAY, { password }));
    assert.equal(await subackCode(rogue, 'HomeKit/soil-1/#'), 128, 'no longer its peripheral');
    assert.equal(await subackCode(rogue, 'HomeKit/soil-2/#'), 1, 'still its peripheral');
    await rogue.publishAsync('HomeKit/soil-1/TemperatureSensor/CurrentTemperature', '66', { qos: 1 });
    await rogue.publishAsync('HomeKit/soil-2/TemperatureSensor/CurrentTemperature', '22', { qos: 1 });
    await eventually(async () => (await read('soil-2', 'TemperatureSensor', 'CurrentTemperature')) === 22, 10_000, "the paired peripheral's value");
    // Unpaired, soil-1 left HomeKit [E-14]; had the broker taken the publish, it would be back with 66.
    assert.equal(await read('soil-1', 'TemperatureSensor', 'CurrentTemperature'), undefined, "the unpaired one's publish was dropped");

    // Another device account is no gateway of anyone's.
    const other = track(await connectDevice(hub.info.mqtt.address, 'other-gw'));
    assert.equal(await subackCode(other, 'HomeKit/soil-2/#'), 128);
    await other.publishAsync('HomeKit/soil-2/TemperatureSensor/CurrentTemperature', '77', { qos: 1 });
    await rogue.publishAsync('HomeKit/soil-2/TemperatureSensor/CurrentTemperature', '23', { qos: 1 });
    await eventually(async () => (await read('soil-2', 'TemperatureSensor', 'CurrentTemperature')) === 23, 10_000, 'the gateway again');
    assert.ok(!messages.some((m) => m.payload === '77' || m.payload === '66'), 'dropped at the broker: no subscriber saw them');

    // A paired peripheral has no MQTT login: its id is refused, whatever the password.
    await assert.rejects(connectDevice(hub.info.mqtt.address, 'soil-2'), /Not authorized|not authorized/i);
  });
});
