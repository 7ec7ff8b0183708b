/**
 * [O-12] A device may log on stat/<id>/Log at any time, JSON included (many firmwares log JSON
 * records). The session's first `getversion` goes without a request id even to a device that echoes
 * ids, so a JSON log line published while it waits must not be taken for its answer: the hub would
 * record no firmware version and take the real answer for `msg_reboot`'s.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';

describe('a JSON log line while the hub waits for getversion', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  let device: MqttClient | undefined;
  after(async () => {
    await device?.endAsync(true);
    if (hub) {
      await hub.stop();
      removeDataDir(hub.dataDir);
    }
  });

  it('is kept as a log line; the real answer sets the versions and msg_reboot gets its own answer', async () => {
    hub = await startHub();
    const id = 'json-logger';
    device = await connectDevice(hub.info.mqtt.address, id, { will: { topic: `HomeKit/${id}/$state`, payload: 'offline' } });
    device.on('message', (topic, payload) => {
      if (topic !== `cmnd/${id}/OTA`) return;
      const rid = /^#(\d+) /.exec(payload.toString())?.[1];
      const command = payload.toString().replace(/^#\d+ /, '');
      const answer = command.startsWith('getversion')
        ? JSON.stringify({ firmware: '1.22.0', app: '3.0.0', platform: 'esp32', ota: 2, rid: 1 })
        : command.startsWith('msg_reboot')
          ? 'power on'
          : 'no exception recorded';
      void (async () => {
        // A log record the firmware writes on its own, as it may at any time (docs/ota.md §3, "Log lines").
        if (command.startsWith('getversion')) await device!.publishAsync(`stat/${id}/Log`, JSON.stringify({ event: 'wifi', rssi: -61 }), { qos: 1 });
        await device!.publishAsync(`stat/${id}/Log`, rid ? `#${rid} ${answer}` : answer, { qos: 1 });
      })();
    });
    await device.subscribeAsync([`cmnd/${id}/OTA`, `HomeKit/${id}/#`], { qos: 1 });
    await device.publishAsync(`HomeKit/${id}/Switch/On`, '1', { qos: 1 });
    await device.publishAsync(`HomeKit/${id}/$state`, 'online', { retain: true, qos: 1 });
    const show = async () =>
      JSON.parse((await cliAsync(['device', 'show', id, '--json', '--data-dir', hub!.dataDir])).stdout) as {
        firmware: string | null;
        lastReboot: string | null;
        lastException: string | null;
      };
    await eventually(async () => (await show()).lastException !== null, 20_000, 'the hub asked its questions');
    const shown = await show();
    assert.deepEqual({ firmware: shown.firmware, lastReboot: shown.lastReboot }, { firmware: '1.22.0', lastReboot: 'power on' });
  });
});
