/**
 * An API token (a script, a Prometheus scrape config) reads and acts on devices, but cannot make
 * credentials or open registration: a leaked token must not mint tokens or dashboard accounts that
 * outlive its revocation. The dashboard (logged in) and the CLI on the hub's machine still can.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli, connectDevice } from '../helpers/mqtt-device.js';

describe('what an API token may not do', { timeout: 60_000 }, () => {
  let hub: RunningHub;
  let base: string;
  let token: string;

  before(async () => {
    hub = await startHub({ args: ['--registration', 'approve'] });
    base = `http://127.0.0.1:${hub.info.httpPort}`;
    token = (JSON.parse(cli(['token', 'create', 'scraper', '--json', '--data-dir', hub.dataDir]).stdout) as { token: string }).token;
  });
  after(async () => {
    await hub?.stop();
    if (hub) removeDataDir(hub.dataDir);
  });

  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('is refused (403, naming the way that works) on tokens, accounts and registration', async () => {
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', '/api/tokens'],
      ['POST', '/api/tokens', { name: 'minted' }],
      ['DELETE', '/api/tokens/scraper'],
      ['GET', '/api/users'],
      ['POST', '/api/users', { username: 'intruder', password: 'a-long-password-1' }],
      ['DELETE', '/api/users/admin'],
      ['POST', '/api/registration/devices', { id: 'planted-device' }],
      ['POST', '/api/registration/policy', { policy: 'open' }],
      ['POST', '/api/admins', { name: 'planted-admin' }],
      ['DELETE', '/api/admins/planted-admin'],
    ];
    for (const [method, path, body] of attempts) {
      const response = await call(method, path, body);
      assert.equal(response.status, 403, `${method} ${path}`);
      assert.match(((await response.json()) as { error: string }).error, /an API token cannot manage tokens, accounts or registration/);
    }
    const tokens = JSON.parse(cli(['token', 'list', '--json', '--data-dir', hub.dataDir]).stdout) as Array<{ name: string }>;
    assert.deepEqual(
      tokens.map((t) => t.name),
      ['scraper'],
      'nothing was minted, nothing revoked',
    );
    const policy = (await (await call('GET', '/api/registration')).json()) as { policy: string };
    assert.equal(policy.policy, 'approve', 'the policy did not change');
  });

  it('cannot reset or approve an MQTT admin account, so a leaked token never turns into an every-topic login', async () => {
    const { password } = JSON.parse(cli(['user', 'add', 'node-red', '--admin', '--json', '--data-dir', hub.dataDir]).stdout) as { password: string };
    for (const action of ['reset', 'approve']) {
      const response = await call('POST', `/api/registration/node-red/${action}`);
      assert.equal(response.status, 404, `${action}: ${await response.text()}`);
    }
    assert.equal((await call('DELETE', '/api/admins/node-red')).status, 403);
    // An admin that published under its own name made a device of it: removing that device (open to a
    // token) leaves the admin's account alone.
    const red = await connectDevice(hub.info.mqtt.address, 'node-red', { password });
    await red.publishAsync('HomeKit/node-red/Switch/On', '1', { qos: 1 });
    const listed = async () => ((await (await call('GET', '/api/devices')).json()) as Array<{ id: string }>).some((x) => x.id === 'node-red');
    await eventually(listed, 5000, 'node-red listed as a device');
    red.end(true);
    assert.equal((await call('DELETE', '/api/devices/node-red')).status, 200);
    // The admin's password still works, and no other one does.
    (await connectDevice(hub.info.mqtt.address, 'node-red', { password })).end(true);
    await assert.rejects(connectDevice(hub.info.mqtt.address, 'node-red', { password: 'chosen-by-the-attacker' }));
  });

  it("cannot knock an MQTT admin's connection off, only a device's", async () => {
    const { password } = JSON.parse(cli(['user', 'add', 'flows', '--admin', '--json', '--data-dir', hub.dataDir]).stdout) as { password: string };
    const flows = await connectDevice(hub.info.mqtt.address, 'flows', { password });
    let closed = false;
    flows.on('close', () => (closed = true));
    const refused = await call('POST', '/api/devices/flows/disconnect');
    const refusal = (await refused.json()) as { error: string };
    assert.equal(refused.status, 404, refusal.error);
    // The same answer as for a name nobody has: a token learns no admin names here.
    const unknown = await call('POST', '/api/devices/nobody-here/disconnect');
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: string }).error.replace('nobody-here', 'flows'), refusal.error);
    // Nor does 'mqttkit device remove' take an admin's account (it names the command that does).
    const removed = cli(['device', 'remove', 'flows', '--data-dir', hub.dataDir]);
    assert.notEqual(removed.status, 0);
    assert.match(removed.stderr, /MQTT admin account.*mqttkit user remove flows/);
    // A device's connection it may drop (a script restarting a stuck device's session).
    const added = JSON.parse(cli(['device', 'add', 'tap-1', '--json', '--data-dir', hub.dataDir]).stdout) as { password: string };
    const device = await connectDevice(hub.info.mqtt.address, 'tap-1', { password: added.password });
    const gone = new Promise<void>((resolve) => device.once('close', () => resolve()));
    assert.equal((await call('POST', '/api/devices/tap-1/disconnect')).status, 200);
    await gone;
    assert.equal(closed, false, "the admin's connection stays");
    flows.end(true);
  });

  it('still reads what it is for: devices and metrics', async () => {
    assert.equal((await call('GET', '/api/devices')).status, 200);
    assert.equal((await call('GET', '/api/metrics')).status, 200);
    assert.equal((await call('GET', '/metrics')).status, 200);
  });
});
