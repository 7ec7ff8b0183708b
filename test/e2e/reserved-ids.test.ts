/**
 * Issue 10, finding 6: a device `OTA` could publish `HomeKit/OTA`, `stat/OTA` and `tele/OTA`, the OTA
 * triggers of devices named `HomeKit`, `stat` and `tele`. Ids that name the hub's topics are refused
 * ([P-2]), and no device may publish a bare `<root>/<id>` at all ([S-3]).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { addAdmin, cli, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

/** The CONNACK return code of a refused connection, 0 when it connected. */
async function connackCode(url: string, id: string): Promise<number> {
  try {
    (await connectDevice(url, id)).end(true);
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

describe('reserved device ids and topic spaces', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  const clients: MqttClient[] = [];
  after(async () => {
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it("refuses ids that name the hub's topics, at connect and in the CLI", async () => {
    hub = await startHub();
    const url = hub.info.mqtt.address;
    const watcher = await connectAdmin(url, 'watcher', addAdmin(hub.dataDir, 'watcher'));
    clients.push(watcher);
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync(['HomeKit/OTA', 'stat/OTA', 'tele/OTA', 'cmnd/OTA', 'HomeKit/OTA/$name'], { qos: 1 });

    // The attack of the issue: device OTA publishes the trigger topics of HomeKit, stat and tele.
    const code = await connackCode(url, 'OTA');
    if (code === 0) {
      const ota = await connectDevice(url, 'OTA');
      clients.push(ota);
      for (const topic of ['HomeKit/OTA', 'stat/OTA', 'tele/OTA']) await ota.publishAsync(topic, '{"host":"192.0.2.66","port":8266}', { qos: 1 });
      // Delivered in order: once this marker arrives, so would have the triggers.
      await ota.publishAsync('HomeKit/OTA/$name', 'marker', { qos: 1 });
      await eventually(() => seen.includes('HomeKit/OTA/$name'), 5000, 'the marker');
    }
    assert.deepEqual(
      seen.filter((t) => t !== 'HomeKit/OTA/$name'),
      [],
      'no OTA trigger reached a subscriber',
    );
    assert.equal(code, 2, 'CONNACK 2: identifier rejected');
    for (const id of ['HomeKit', 'homekit', 'stat', 'Tele', 'cmnd', 'ota']) assert.equal(await connackCode(url, id), 2, id);
    await hub.printed(/'OTA' is reserved/);

    const added = cli(['device', 'add', 'HomeKit', '--data-dir', hub.dataDir]);
    assert.equal(added.status, 2);
    assert.match(added.stderr, /'HomeKit' is reserved/);
    assert.equal(cli(['user', 'add', 'stat', '--admin', '--data-dir', hub.dataDir]).status, 2);
  });

  it('lets no device publish a bare <root>/<id>, while its own topics below that still pass', async () => {
    const url = hub!.info.mqtt.address;
    const watcher = clients[0]!;
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync(['HomeKit/#', 'stat/#', 'tele/#'], { qos: 1 });
    const device = await connectDevice(url, 'plain-1');
    clients.push(device);
    for (const topic of ['HomeKit/plain-1', 'stat/plain-1', 'tele/plain-1']) await device.publishAsync(topic, 'x', { qos: 1 });
    for (const topic of ['HomeKit/plain-1/$name', 'stat/plain-1/Log', 'tele/plain-1/STATE']) await device.publishAsync(topic, 'x', { qos: 1 });
    await eventually(() => ['HomeKit/plain-1/$name', 'stat/plain-1/Log', 'tele/plain-1/STATE'].every((t) => seen.includes(t)), 5000, "the device's own topics");
    assert.deepEqual(
      seen.filter((t) => t.split('/').length === 2),
      [],
      'bare topics were dropped',
    );
    assert.ok(device.connected, 'a misdirected publish does not cost the device its connection');
  });
});
