/**
 * What a firmware author and a HomeKit controller are told: one meaning per version ([P-22]: `$firmware`
 * is the app version HomeKit shows, getversion's `firmware` the runtime under it), and the bridge's HAP
 * id printed with the pairing information (hub.json's `bridges[].username`, docs/data.md [D-8]).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';

describe('versions and ids a user is shown', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  let device: MqttClient | undefined;
  after(async () => {
    await device?.endAsync(true);
    if (hub) {
      await hub.stop();
      removeDataDir(hub.dataDir);
    }
  });

  it("prints each bridge's HAP id (the username a controller needs) in the start banner", async () => {
    hub = await startHub();
    const username = hub.info.bridges[0]!.username;
    assert.match(username, /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    assert.ok(hub.output().includes(`HAP id ${username}`), hub.output());
  });

  it("shows the device's $firmware as its app version in `devices` and `device show`, beside getversion's runtime firmware", async () => {
    assert.ok(hub);
    const id = 'version-probe';
    device = await connectDevice(hub.info.mqtt.address, id, { will: { topic: `HomeKit/${id}/$state`, payload: 'offline' } });
    // The device answers getversion with a stale `app` (as an app that forgot to update it would):
    // the app version shown is still the `$firmware` HomeKit shows.
    device.on('message', (topic, payload) => {
      if (topic !== `cmnd/${id}/OTA`) return;
      const rid = /^#(\d+) /.exec(payload.toString())?.[1];
      const command = payload.toString().replace(/^#\d+ /, '');
      const answer = command.startsWith('getversion')
        ? JSON.stringify({ firmware: '1.22.0', app: '0.9.0', library: null, platform: 'test', python: null, ota: 2 })
        : command.startsWith('msg_reboot')
          ? 'power on'
          : 'no exception recorded';
      void device!.publishAsync(`stat/${id}/Log`, rid ? `#${rid} ${answer}` : answer);
    });
    await device.subscribeAsync([`cmnd/${id}/OTA`, `HomeKit/${id}/#`], { qos: 1 });
    await device.publishAsync(`HomeKit/${id}/$firmware`, 'v2.1.0-beta', { retain: true, qos: 1 });
    await device.publishAsync(`HomeKit/${id}/Switch/On`, '1', { qos: 1 });
    await device.publishAsync(`HomeKit/${id}/$state`, 'online', { retain: true, qos: 1 });
    const show = async () =>
      JSON.parse((await cliAsync(['device', 'show', id, '--json', '--data-dir', hub!.dataDir])).stdout) as { app: string | null; firmware: string | null };
    await eventually(async () => (await show()).firmware === '1.22.0', 20_000, 'the hub asked getversion');
    assert.deepEqual(await show().then(({ app, firmware }) => ({ app, firmware })), { app: 'v2.1.0-beta', firmware: '1.22.0' });
    const table = (await cliAsync(['devices', '--data-dir', hub.dataDir])).stdout;
    const line = table.split('\n').find((l) => l.startsWith(id)) ?? '';
    assert.match(line, /\bv2\.1\.0-beta +1\.22\.0\b/, table); // the APP and FIRMWARE columns
  });

  it('refuses a command to a sleeping device at once, saying commands are not queued (docs/protocol.md [P-23])', async () => {
    assert.ok(hub && device);
    await device.publishAsync('HomeKit/version-probe/$state', 'sleeping 600', { retain: true, qos: 1 });
    await eventually(
      async () => JSON.parse((await cliAsync(['device', 'show', 'version-probe', '--json', '--data-dir', hub!.dataDir])).stdout).state === 'sleeping',
      10_000,
      'asleep',
    );
    const result = await cliAsync(['cmd', 'version-probe', 'stats', '--timeout', '5', '--data-dir', hub.dataDir]);
    assert.equal(result.status, 1, result.stdout);
    assert.match(result.stderr, /version-probe is sleeping; it said it wakes in about \d+ s: commands are not queued/);
  });
});
