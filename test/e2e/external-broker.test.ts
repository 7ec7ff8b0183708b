/**
 * `--mqtt-url` with a real Mosquitto configured by `mqttkit mosquitto-config`: devices provisioned
 * through the CLI (dynamic-security plugin), the same allow/deny results as the embedded broker, and
 * a working bridge both ways.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { DynsecClient } from '../../src/broker/mosquitto/dynsec.js';
import { HUB_ROLE } from '../../src/broker/mosquitto/mosquitto-config.js';
import { readBrokerCredentials } from '../../src/store/broker-credentials.js';
import { accessoryBySerial, characteristicId, characteristicValue, pair, reconnect } from '../helpers/homekit-controller.js';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { type RunningMosquitto, startConfiguredMosquitto } from '../helpers/mosquitto.js';
import { cli, connectDevice, subackCode } from '../helpers/mqtt-device.js';
import { requireTool } from '../helpers/system-tools.js';

async function refused(url: string, id: string, password: string): Promise<boolean> {
  try {
    (await connectDevice(url, id, { password })).end(true);
    return false;
  } catch (error) {
    return [4, 5].includes((error as { code?: number }).code ?? 0);
  }
}

describe('external broker (Mosquitto with dynamic security)', { timeout: 180_000 }, () => {
  let broker: RunningMosquitto | undefined;
  let hub: RunningHub | undefined;
  const confDir = mkdtempSync(join(tmpdir(), 'mqttkit-mosquitto-conf-'));
  const clients: MqttClient[] = [];
  after(async () => {
    for (const c of clients) c.end(true);
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    await broker?.stop();
    rmSync(confDir, { recursive: true, force: true });
  });

  it('provisions devices with the CLI, enforces the same rules, and bridges both ways', async (t) => {
    const binary = requireTool(t, 'mosquitto', ['mosquitto', '/usr/sbin/mosquitto'], 'apt-get install mosquitto');
    if (!binary) return;
    const dataDir = tempDataDir();
    broker = await startConfiguredMosquitto(binary, dataDir, confDir);
    const url = broker.url;
    assert.ok(await refused(url, 'anyone', 'anonymous-guess'), 'unknown clients are refused');

    hub = await startHub({ dataDir, args: ['--mqtt-url', url] });
    assert.equal(hub.info.mqtt.embedded, false);

    const passwords: Record<string, string> = {};
    for (const id of ['thermo', 'relay']) {
      const added = cli(['device', 'add', id, '--json', '--data-dir', dataDir]);
      assert.equal(added.status, 0, added.stderr);
      passwords[id] = (JSON.parse(added.stdout) as { password: string }).password;
    }
    assert.ok(await refused(url, 'thermo', 'not-the-password'), 'wrong password refused');

    const thermo = await connectDevice(url, 'thermo', { password: passwords.thermo! });
    const relay = await connectDevice(url, 'relay', { password: passwords.relay! });
    clients.push(thermo, relay);
    await thermo.publishAsync('HomeKit/thermo/TemperatureSensor/CurrentTemperature', '19.5', { qos: 1 });
    await relay.publishAsync('HomeKit/relay/Switch/On', '1', { qos: 1, retain: true });

    const { client: controller, pairing } = await pair(hub.info.bridges[0]!.port!);
    let db = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return accessoryBySerial(current, 'thermo') && accessoryBySerial(current, 'relay') ? current : undefined;
      },
      10_000,
      'both devices in HomeKit',
    );
    assert.equal(characteristicValue(db, 'thermo', 'TemperatureSensor', 'CurrentTemperature'), 19.5);

    // Foreign publish: without effect. Foreign subscriptions: refused. Own: granted.
    await thermo.publishAsync('HomeKit/relay/Switch/On', '0', { qos: 1 });
    await thermo.publishAsync('HomeKit/thermo/TemperatureSensor/CurrentTemperature', '20.5', { qos: 1 });
    db = await eventually(
      async () => {
        const current = await controller.getAccessories();
        return characteristicValue(current, 'thermo', 'TemperatureSensor', 'CurrentTemperature') === 20.5 ? current : undefined;
      },
      5000,
      'the new temperature',
    );
    assert.ok([true, 1].includes(characteristicValue(db, 'relay', 'Switch', 'On') as number), 'relay unchanged');
    for (const filter of ['HomeKit/#', 'HomeKit/relay/#', 'cmnd/relay/#']) assert.equal(await subackCode(thermo, filter), 128, filter);
    assert.equal(await subackCode(thermo, 'HomeKit/thermo/#'), 1);

    // [S-3] The same spaces at Mosquitto: a bare <root>/<id> is never delivered, what lies below is. [P-2] reserved ids.
    const watcherPassword = (JSON.parse(cli(['user', 'add', 'watcher', '--admin', '--json', '--data-dir', dataDir]).stdout) as { password: string }).password;
    const watcher = await connectDevice(url, 'watcher', { password: watcherPassword });
    clients.push(watcher);
    // An MQTT admin has every topic, but not Mosquitto's own API: it cannot make itself logins there that
    // would outlive its removal.
    const evil = { commands: [{ command: 'createClient', username: 'evil', password: 'evil-password-1', roles: [{ rolename: HUB_ROLE }] }] };
    await watcher.publishAsync('$CONTROL/dynamic-security/v1', JSON.stringify(evil), { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await refused(url, 'evil', 'evil-password-1'), "an admin's request to Mosquitto's API made nothing");
    const watched: string[] = [];
    watcher.on('message', (topic) => watched.push(topic));
    await watcher.subscribeAsync('tele/#', { qos: 1 });
    await thermo.publishAsync('tele/thermo', 'bare', { qos: 1 });
    await thermo.publishAsync('tele/thermo/STATE', 'below', { qos: 1 });
    await eventually(() => watched.includes('tele/thermo/STATE'), 5000, 'tele/thermo/STATE at the watcher');
    assert.deepEqual(watched, ['tele/thermo/STATE'], 'the bare tele/thermo was not delivered');
    // [S-4] The generated config caps packets like the embedded broker: an oversized message cuts the client off.
    const watcherClosed = new Promise<boolean>((resolve) => watcher.once('close', () => resolve(true)));
    watcher.on('error', () => {});
    watcher.publish('tele/thermo/big', Buffer.alloc(200_000, 0x31), { qos: 0 });
    assert.ok(await Promise.race([watcherClosed, new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]), 'Mosquitto cut off a 200 KB message');
    const reserved = cli(['device', 'add', 'OTA', '--data-dir', dataDir]);
    assert.equal(reserved.status, 2);
    assert.match(reserved.stderr, /reserved/);

    // HomeKit write -> the relay.
    const sets: string[] = [];
    await relay.subscribeAsync('HomeKit/relay/+/+/set', { qos: 1 });
    relay.on('message', (topic, payload) => sets.push(`${topic} ${payload.toString()}`));
    await controller.setCharacteristics({ [characteristicId(db, 'relay', 'Switch', 'On')!]: false });
    await eventually(() => sets.includes('HomeKit/relay/Switch/On/set 0'), 5000, '/set through Mosquitto');
    await relay.publishAsync('HomeKit/relay/Switch/On', '0', { qos: 1, retain: true });

    // Reset sets a new password at the broker (Mosquitto cannot let the device choose one).
    const reset = cli(['device', 'reset', 'thermo', '--json', '--data-dir', dataDir]);
    assert.equal(reset.status, 0, reset.stderr);
    const fresh = (JSON.parse(reset.stdout) as { password: string }).password;
    assert.ok(await refused(url, 'thermo', passwords.thermo!), 'the old password no longer works');
    (await connectDevice(url, 'thermo', { password: fresh })).end(true);

    // Mosquitto clients mqttkit did not make are not its to replace or delete: one made there by hand, and
    // the hub's own login. Neither 'device add' nor removing a device of that name (open to an API token,
    // e.g. after an admin published under the name) touches them.
    {
      const login = readBrokerCredentials(dataDir)!;
      const dynsec = await DynsecClient.connect(url, login.username, login.password);
      await dynsec.run({ command: 'createClient', username: 'by-hand', password: 'made-by-hand-password' });
      await dynsec.close();
      for (const name of ['by-hand', login.username]) {
        const added = cli(['device', 'add', name, '--data-dir', dataDir]);
        assert.notEqual(added.status, 0, added.stdout);
        assert.match(added.stderr, name === 'by-hand' ? /Mosquitto has a client by-hand already/ : /reserved for the hub's own account/);
      }
      // A device client exactly as mqttkit makes one, left without its account by an interrupted 'device add':
      // the next add replaces it, and 'device remove' removes one.
      {
        const dynsec = await DynsecClient.connect(url, login.username, login.password);
        for (const id of ['left-1', 'left-2']) await dynsec.provisionDevice(id, `${id}-interrupted-password`);
        await dynsec.close();
        const again = cli(['device', 'add', 'left-1', '--json', '--data-dir', dataDir]);
        assert.equal(again.status, 0, again.stderr);
        assert.match(again.stderr, /left by an interrupted add: replaced/);
        (await connectDevice(url, 'left-1', { password: (JSON.parse(again.stdout) as { password: string }).password })).end(true);
        assert.ok(await refused(url, 'left-1', 'left-1-interrupted-password'));
        const cleaned = cli(['device', 'remove', 'left-2', '--data-dir', dataDir]);
        assert.equal(cleaned.status, 0, cleaned.stderr);
        assert.ok(await refused(url, 'left-2', 'left-2-interrupted-password'), 'the leftover client is gone');
      }
      const integration = JSON.parse(cli(['user', 'add', 'integration', '--admin', '--json', '--data-dir', dataDir]).stdout) as { password: string };
      const admin = await connectDevice(url, 'integration', { password: integration.password });
      clients.push(admin);
      const { token } = JSON.parse(cli(['token', 'create', 'script', '--json', '--data-dir', dataDir]).stdout) as { token: string };
      for (const name of ['by-hand', login.username]) {
        await admin.publishAsync(`HomeKit/${name}/Switch/On`, '1', { qos: 1 });
        const api = (method: string) =>
          fetch(`http://127.0.0.1:${hub!.info.httpPort}/api/devices/${name}`, { method, headers: { authorization: `Bearer ${token}` } });
        await eventually(async () => (await api('GET')).status === 200, 5000, `the hub to hold ${name}`);
        assert.equal((await api('DELETE')).status, 200);
      }
      (await connectDevice(url, 'by-hand', { password: 'made-by-hand-password' })).end(true);
      (await connectDevice(url, login.username, { password: login.password, clientId: `${login.username}-check` })).end(true);
      assert.equal(cli(['device', 'list', '--data-dir', dataDir]).status, 0);
    }

    // Removal through the CLI: account gone at the broker, accessory gone, retained topics cleared.
    const removed = cli(['device', 'remove', 'relay', '--data-dir', dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    await eventually(async () => !accessoryBySerial(await controller.getAccessories(), 'relay'), 10_000, 'relay removed');
    assert.ok(await refused(url, 'relay', passwords.relay!), 'its account is gone from Mosquitto');
    await controller.close();

    // A conformance run killed outright (SIGKILL) leaves its temporary admin client in Mosquitto; one
    // somebody gave rights of their own is not the checker's.
    const credentials = readBrokerCredentials(dataDir)!;
    const dynsec = await DynsecClient.connect(url, credentials.username, credentials.password);
    const left = 'conformance-0badc0de';
    const kept = 'conformance-1badc0de';
    await dynsec.run({ command: 'createClient', username: left, password: 'left-by-a-killed-run', roles: [{ rolename: HUB_ROLE }] });
    await dynsec.run({ command: 'createRole', rolename: 'someone-elses' });
    await dynsec.run({
      command: 'createClient',
      username: kept,
      password: 'given-other-rights',
      roles: [{ rolename: HUB_ROLE }, { rolename: 'someone-elses' }],
    });
    const grouped = 'conformance-2badc0de'; // other rights through a group
    await dynsec.run({ command: 'createGroup', groupname: 'someone-elses-group', roles: [{ rolename: 'someone-elses' }] });
    await dynsec.run({
      command: 'createClient',
      username: grouped,
      password: 'given-a-group',
      roles: [{ rolename: HUB_ROLE }],
      groups: [{ groupname: 'someone-elses-group' }],
    });
    await dynsec.close();
    (await connectDevice(url, left, { password: 'left-by-a-killed-run' })).end(true);

    // An admin made by an older mqttkit held the hub's role (with Mosquitto's API): narrowed at the next start.
    // Another was left with both roles by a narrowing cut off half-way: it is finished too.
    const oldAdmin = (JSON.parse(cli(['user', 'add', 'old-admin', '--admin', '--json', '--data-dir', dataDir]).stdout) as { password: string }).password;
    assert.equal(cli(['user', 'add', 'half-admin', '--admin', '--data-dir', dataDir]).status, 0);
    {
      const login = readBrokerCredentials(dataDir)!;
      const older = await DynsecClient.connect(url, login.username, login.password);
      for (const name of ['old-admin', 'half-admin']) await older.run({ command: 'addClientRole', username: name, rolename: HUB_ROLE });
      await older.run({ command: 'removeClientRole', username: 'old-admin', rolename: 'mqttkit-admin' });
      await older.close();
    }

    assert.equal(await hub.stop('SIGTERM'), 0);
    hub = await startHub({ dataDir, args: ['--mqtt-url', url] });
    await hub.printed(/MQTT admin old-admin no longer holds Mosquitto's dynamic-security API/);
    await hub.printed(/MQTT admin half-admin no longer holds Mosquitto's dynamic-security API/);
    const narrowed = await connectDevice(url, 'old-admin', { password: oldAdmin });
    clients.push(narrowed);
    const evil2 = { commands: [{ command: 'createClient', username: 'evil-2', password: 'evil-password-2', roles: [{ rolename: HUB_ROLE }] }] };
    await narrowed.publishAsync('$CONTROL/dynamic-security/v1', JSON.stringify(evil2), { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await refused(url, 'evil-2', 'evil-password-2'), 'the narrowed admin has no access to the API');
    assert.equal(await subackCode(narrowed, 'HomeKit/#'), 1, 'and still every topic');
    await hub.printed(new RegExp(`removed Mosquitto's admin client ${left}, left by an interrupted 'mqttkit conformance'`));
    assert.ok(await refused(url, left, 'left-by-a-killed-run'), "the killed run's admin login is gone");
    (await connectDevice(url, kept, { password: 'given-other-rights' })).end(true);
    (await connectDevice(url, grouped, { password: 'given-a-group' })).end(true);
    (await connectDevice(url, 'watcher', { password: watcherPassword })).end(true);
    const again = reconnect(hub.info.bridges[0]!.port!, pairing);
    await new Promise((r) => setTimeout(r, 1000)); // let retained messages replay
    const after = await again.getAccessories();
    assert.ok(accessoryBySerial(after, 'thermo'));
    assert.equal(accessoryBySerial(after, 'relay'), undefined, 'its retained topics were cleared, so it does not come back');
    await again.close();
  });

  it('stops with a clear message when the external broker cannot be reached', async () => {
    const message = await startHub({ args: ['--mqtt-url', 'mqtt://127.0.0.1:1'] }).then(
      () => assert.fail('the hub started without its broker'),
      (error: Error) => error.message,
    );
    assert.match(message, /cannot connect to the MQTT broker at mqtt:\/\/127\.0\.0\.1:1.*check --mqtt-url/);
  });
});
