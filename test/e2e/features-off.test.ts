/**
 * Features switched off (docs/architecture.md): `--no-ota` runs no job, publishes no pending flag and
 * refuses `mqttkit ota push` saying why; `--no-homekit` opens no HAP port while MQTT works as ever.
 * Real hub processes, real broker, the real CLI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { addAdmin, cli, cliAsync, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

const work = mkdtempSync(join(tmpdir(), 'mqttkit-features-'));
const hubs: RunningHub[] = [];
const clients: MqttClient[] = [];
after(async () => {
  for (const c of clients) c.end(true);
  for (const h of hubs) await h.stop();
  for (const h of hubs) removeDataDir(h.dataDir);
  rmSync(work, { recursive: true, force: true });
});

/** A message through the broker and back: anything retained for an earlier subscription has arrived by then. */
async function roundTrip(client: MqttClient, topic: string): Promise<void> {
  const seen = new Promise<void>((resolve) => client.on('message', (t) => t === topic && resolve()));
  await client.subscribeAsync(topic, { qos: 1 });
  await client.publishAsync(topic, 'x', { qos: 1 });
  await seen;
}

describe('features switched off', () => {
  it('--no-ota: ota push is refused saying the hub runs without OTA; a job queued before stays queued with no pending flag while its device listens, and can still be cancelled', {
    timeout: 120_000,
  }, async () => {
    const dataDir = tempDataDir();
    const file = join(work, 'main.py');
    writeFileSync(file, 'print(1)\n');
    // With OTA on: a job for a device nobody plays is queued (and would raise its pending flag).
    let hub = await startHub({ dataDir });
    const password = addAdmin(dataDir, 'tester');
    let admin = await connectAdmin(hub.info.mqtt.address, 'tester', password);
    await admin.publishAsync('HomeKit/sleepy/$state', 'online', { qos: 1, retain: true });
    await eventually(async () => (await cliAsync(['device', 'list', '--data-dir', dataDir])).stdout.includes('sleepy'), 10_000, 'sleepy known');
    const queued = await cliAsync(['ota', 'push', 'sleepy', file, '--no-wait', '--json', '--data-dir', dataDir]);
    assert.equal(queued.status, 0, queued.stderr);
    const job = (JSON.parse(queued.stdout) as { id: number }).id;
    admin.end(true);
    await hub.stop();

    hub = await startHub({ dataDir, args: ['--no-ota'] });
    hubs.push(hub);
    const refused = await cliAsync(['ota', 'push', 'sleepy', file, '--no-wait', '--data-dir', dataDir]);
    assert.notEqual(refused.status, 0, 'ota push is refused');
    assert.match(refused.stderr, /runs without OTA \(--no-ota/);

    admin = await connectAdmin(hub.info.mqtt.address, 'tester', password);
    clients.push(admin);
    const flags: string[] = [];
    admin.on('message', (topic, payload) => topic === 'cmnd/sleepy/OTA/pending' && flags.push(payload.toString()));
    await admin.subscribeAsync('cmnd/sleepy/OTA/pending', { qos: 1 });
    // The device is online and listens: with OTA on, the job would start now.
    const device = await connectDevice(hub.info.mqtt.address, 'sleepy');
    clients.push(device);
    device.on('error', () => {});
    await device.subscribeAsync('cmnd/sleepy/OTA', { qos: 1 });
    await device.publishAsync('HomeKit/sleepy/$state', 'online', { qos: 1, retain: true });
    await eventually(() => hub.output().includes('OTA is off'), 10_000, 'the hub says OTA is off');
    await eventually(async () => (await cliAsync(['device', 'list', '--data-dir', dataDir])).stdout.match(/sleepy.*online/), 10_000, 'sleepy online');
    await roundTrip(admin, 'test/barrier');
    assert.deepEqual(flags, [], 'no pending flag is published');
    const shown = JSON.parse((await cliAsync(['ota', 'jobs', '--json', '--data-dir', dataDir])).stdout) as Array<{ id: number; state: string }>;
    assert.equal(shown.find((j) => j.id === job)?.state, 'queued', 'no job runs');
    const cancelled = await cliAsync(['ota', 'cancel', String(job), '--data-dir', dataDir]);
    assert.equal(cancelled.status, 0, cancelled.stderr);
  });

  it('--no-homekit: no bridge is published (no HAP port), and MQTT devices work as ever', { timeout: 60_000 }, async () => {
    const hub = await startHub({ args: ['--no-homekit'] });
    hubs.push(hub);
    assert.deepEqual(hub.info.bridges, [], 'no bridge, so no HAP port');
    await hub.printed(/without HomeKit/);
    const device = await connectDevice(hub.info.mqtt.address, 'thermo');
    clients.push(device);
    await device.publishAsync('HomeKit/thermo/TemperatureSensor/CurrentTemperature', '21.5', { qos: 1 });
    const token = (JSON.parse(cli(['token', 'create', 'tests', '--json', '--data-dir', hub.dataDir]).stdout) as { token: string }).token;
    const value = await eventually(
      async () => {
        const response = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
        const text = await response.text();
        return text.includes('21.5') && text;
      },
      10_000,
      'the value reaches the hub',
    );
    assert.match(value, /thermo/);
  });
});
