/**
 * What the hub keeps about a device (versions, its answers, the name and notes a person gave it): one
 * over-long answer does not take the rest with it, and a removed device's row goes with it, so a device
 * that takes the id later does not inherit the old one's HomeKit name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

describe("a device info row over the device's life", { timeout: 90_000 }, () => {
  let hub: RunningHub;
  let base: string;
  let token: string;
  const clients: MqttClient[] = [];

  before(async () => {
    hub = await startHub();
    base = `http://127.0.0.1:${hub.info.httpPort}`;
    token = (JSON.parse(cli(['token', 'create', 'info', '--json', '--data-dir', hub.dataDir]).stdout) as { token: string }).token;
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await hub?.stop();
    if (hub) removeDataDir(hub.dataDir);
  });

  const api = async (path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  async function device(id: string, password: string): Promise<MqttClient> {
    const client = await connectDevice(hub.info.mqtt.address, id, { password });
    clients.push(client);
    await client.publishAsync(`HomeKit/${id}/Switch/On`, '0', { qos: 1 });
    await eventually(async () => ((await api(`/api/devices/${id}`)).status === 200 ? true : undefined), 10_000, `${id} known`);
    return client;
  }

  it("a device's 64 KiB exception text is cut, and the name and notes given to it stay", async () => {
    const client = await device('long-answer', 'first-device-password');
    assert.equal((await api('/api/devices/long-answer/name', { name: 'Garage light' })).status, 200);
    assert.equal((await api('/api/devices/long-answer/notes', { notes: 'left of the door' })).status, 200);
    // The device answers (on stat/<id>/Log) the hub's msg_exception, asked after every `$state online`, with 64 KiB of text.
    await client.subscribeAsync('cmnd/long-answer/OTA', { qos: 1 });
    client.on('message', (topic, payload) => {
      if (topic === 'cmnd/long-answer/OTA' && payload.toString().startsWith('msg_exception'))
        client.publish('stat/long-answer/Log', `Traceback: ${'x'.repeat(64 * 1024 - 100)}`);
      else if (topic === 'cmnd/long-answer/OTA' && payload.toString().startsWith('getversion'))
        client.publish('stat/long-answer/Log', JSON.stringify({ firmware: '1.0', app: '1.0' }));
      else if (topic === 'cmnd/long-answer/OTA') client.publish('stat/long-answer/Log', 'power on');
    });
    await client.publishAsync('HomeKit/long-answer/$state', 'online', { qos: 1, retain: true });
    const view = await eventually(
      async () => {
        const v = (await api('/api/devices/long-answer')).body;
        return typeof v.lastException === 'string' && v.lastException.startsWith('Traceback') ? v : undefined;
      },
      20_000,
      'the exception text stored',
    );
    assert.ok((view.lastException as string).length <= 10_000);
    assert.equal(view.name, 'Garage light');
    assert.equal(view.notes, 'left of the door');
  });

  it("a removed device's given name and notes do not pass to the next device with its id", async () => {
    const first = await device('front-door', 'first-device-password');
    assert.equal((await api('/api/devices/front-door/name', { name: 'Front door lock' })).status, 200);
    assert.equal((await api('/api/devices/front-door/notes', { notes: 'the old lock' })).status, 200);
    first.end(true);
    const removed = cli(['device', 'remove', 'front-door', '--data-dir', hub.dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    await device('front-door', 'another-device-password');
    const view = (await api('/api/devices/front-door')).body;
    assert.notEqual(view.name, 'Front door lock');
    assert.ok(!view.notes, `notes: ${String(view.notes)}`);
  });
});
