/**
 * [S-2] A login that read its account before the account was removed or reset must not finish after
 * it: closing the client id's connection reached registered clients only, so a device removed while
 * its login was being checked came back on the broker with the rights it had just lost.
 *
 * The window is made wide, not hoped for: new ids from other loopback addresses (Linux routes all of
 * 127/8 to `lo`) fill the hub's password-hashing queue, so the device's re-registration waits there,
 * past its account read, while the removal happens. The test checks that it did.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readHubToken } from '../../src/store/runtime-file.js';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';
import { rawConnack } from '../helpers/raw-mqtt.js';

describe('an account changed while its login is checked', { timeout: 120_000 }, () => {
  let hub: RunningHub | undefined;
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('a device removed while its login hashes stays off the broker', async () => {
    hub = await startHub();
    const port = hub.info.mqtt.port!;
    const token = readHubToken(hub.dataDir)!;
    const api = (method: string, path: string) =>
      fetch(`http://127.0.0.1:${hub!.info.httpPort}${path}`, { method, headers: { authorization: `Bearer ${token}` } });

    // A device the hub holds: registered (trust on first use) with a switch.
    const device = await connectDevice(`mqtt://127.0.0.1:${port}`, 'victim', { password: 'victim-password-1' });
    await device.publishAsync('HomeKit/victim/Switch/On', 'true');
    await eventually(async () => (await api('GET', '/api/devices/victim')).status === 200, 10_000, 'the hub to hold the victim');
    await device.endAsync();
    // Reset: its next login registers the password it presents, a hash like a new device's.
    assert.equal((await api('POST', '/api/registration/victim/reset')).status, 200);

    // 28 new devices from 14 addresses: their hashes queue ahead of the victim's.
    const flood: Array<Promise<number>> = [];
    for (let a = 2; a < 16; a++) for (const k of [1, 2]) flood.push(rawConnack(port, `127.0.0.${a}`, `flood-${a}-${k}`, `flood-password-${a}-${k}`));
    await eventually(() => /new device registered/.test(hub!.output()), 20_000, 'the new devices to be hashing');

    let settled = false;
    const victim = rawConnack(port, '127.0.0.1', 'victim', 'victim-password-2').finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300)); // its account read happens within milliseconds; its hash waits
    assert.equal(settled, false, 'the victim login must still be waiting for its hash when it is removed (the flood was too small)');
    // As 'mqttkit device remove' asks the running hub: its account, its accessory, its connection.
    assert.equal((await api('DELETE', '/api/devices/victim')).status, 200);
    assert.equal(settled, false, 'the victim login must still be waiting when the removal is done');

    const code = await victim;
    assert.notEqual(code, 0, 'a login that began before the removal must not be accepted after it');
    assert.equal(code, 3, 'refused with CONNACK 3 (server unavailable: try again), so a device retries');
    await hub.printed(/account of victim was removed or reset while this login was checked/);
    // Retried later, the id is a new device (registration is open); removal is not a ban.
    await Promise.all(flood);
  });

  it("a removed device's last will does not bring it back, whether the hub held its accessory or only its account", async () => {
    hub ??= await startHub();
    const url = hub.info.mqtt.address;
    const token = readHubToken(hub.dataDir)!;
    const status = async (id: string) =>
      (await fetch(`http://127.0.0.1:${hub!.info.httpPort}/api/devices/${id}`, { headers: { authorization: `Bearer ${token}` } })).status;
    // The protocol's retained last will, [P-1]: the broker publishes it when the connection drops.
    const will = (id: string) => ({ topic: `HomeKit/${id}/$state`, payload: 'offline' });
    const shown = await connectDevice(url, 'will-shown', { password: 'will-shown-password', will: will('will-shown') });
    await shown.publishAsync('HomeKit/will-shown/$state', 'online', { qos: 1, retain: true });
    await shown.publishAsync('HomeKit/will-shown/Switch/On', '1', { qos: 1, retain: true });
    await eventually(async () => (await status('will-shown')) === 200, 10_000, 'the hub to hold will-shown');
    const silent = await connectDevice(url, 'will-silent', { password: 'will-silent-password', will: will('will-silent') });
    for (const c of [shown, silent]) c.on('error', () => {});

    for (const id of ['will-shown', 'will-silent']) {
      const removed = cli(['device', 'remove', id, '--data-dir', hub.dataDir]);
      assert.equal(removed.status, 0, removed.stderr);
    }
    await eventually(() => !shown.connected && !silent.connected, 5000, 'both connections to be cut');
    await new Promise((r) => setTimeout(r, 1000)); // a last will would have come and gone through the hub by now
    assert.equal(await status('will-shown'), 404, 'the removed device did not come back');
    assert.equal(await status('will-silent'), 404, 'the removed account did not turn into a device');
    // Nothing retained under their topics for the next subscriber (Home Assistant, a restarted hub).
    const { password } = JSON.parse(cli(['user', 'add', 'will-watch', '--admin', '--json', '--data-dir', hub.dataDir]).stdout) as { password: string };
    const watcher = await connectDevice(url, 'will-watch', { password });
    const seen: string[] = [];
    watcher.on('message', (topic, payload) => seen.push(`${topic}=${payload}`));
    await watcher.subscribeAsync(['HomeKit/will-shown/#', 'HomeKit/will-silent/#']);
    await new Promise((r) => setTimeout(r, 500));
    watcher.end(true);
    assert.deepEqual(seen, [], 'no retained messages left behind');
  });
});
