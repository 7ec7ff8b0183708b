/**
 * issue 13/14: `mqttkit device add/approve/reset`, `token create` and `user add` go through the running
 * hub's API, so its security log names each with who did it (the CLI: `mqttkit-cli`), and what they
 * made works at once; with no hub on the data dir they work on the store directly, as before. Real hub
 * and CLI; the hub asks for approval of new devices ([S-2] `approve`), so a device can wait for it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub, tempDataDir } from '../helpers/hub-process.js';
import { cli, cliAsync, connectAdmin, connectDevice } from '../helpers/mqtt-device.js';

describe('security commands of the CLI and the hub log', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  const offline = tempDataDir();

  before(async () => {
    hub = await startHub({ args: ['--registration', 'approve'] });
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
    removeDataDir(offline);
  });

  /** The hub's log lines (pino JSON) that name a security action. */
  const audit = () =>
    hub
      .output()
      .split('\n')
      .filter((l) => l.includes('"security"'))
      .map((l) => JSON.parse(l) as { security: string; by: string; msg: string });

  /** Each [action, message] is in the hub log, said by the CLI. */
  const loggedByCli = async (want: Array<[string, string]>) => {
    await eventually(() => want.every(([action]) => audit().some((l) => l.security === action)), 10_000, `${want.map(([a]) => a).join(', ')} in the hub log`);
    for (const [action, msg] of want) {
      const line = audit().find((l) => l.security === action);
      assert.deepEqual({ by: line?.by, msg: line?.msg }, { by: 'mqttkit-cli', msg }, action);
    }
  };

  const run = async (args: string[], dataDir: string) => {
    const result = await cliAsync([...args, '--json', '--data-dir', dataDir]);
    assert.equal(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout) as Record<string, string>;
  };

  it('with a hub running, device add, token create and user add are in its security log, by the CLI', async () => {
    const device = await run(['device', 'add', 'porch-light'], hub.dataDir);
    const token = await run(['token', 'create', 'cli-script'], hub.dataDir);
    const admin = await run(['user', 'add', 'node-red', '--admin'], hub.dataDir);

    await loggedByCli([
      ['device-added', 'device porch-light added by mqttkit-cli'],
      ['token-created', 'API token cli-script created by mqttkit-cli'],
      ['admin-added', 'MQTT admin account node-red added by mqttkit-cli'],
    ]);
    // Names only: the secrets the CLI printed are nowhere in the log.
    for (const secret of [device.password!, token.token!, admin.password!]) assert.ok(!hub.output().includes(secret), 'a secret in the hub log');

    // What was made works at once: the device and the admin log in, the token reads the API.
    const porch = await connectDevice(hub.info.mqtt.address, 'porch-light', { password: device.password!, reconnectPeriod: 0 });
    porch.end(true);
    const red = await connectAdmin(hub.info.mqtt.address, 'node-red', admin.password!);
    red.end(true);
    const answer = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/devices`, { headers: { authorization: `Bearer ${token.token}` } });
    assert.equal(answer.status, 200);
  });

  it('with a hub running, device approve and device reset are in its security log, by the CLI, and take effect at once', async () => {
    // An unknown device is held for approval; approved, its password is its own.
    await assert.rejects(connectDevice(hub.info.mqtt.address, 'garage-door', { reconnectPeriod: 0 }));
    const approve = await cliAsync(['device', 'approve', 'garage-door', '--data-dir', hub.dataDir]);
    assert.equal(approve.status, 0, approve.stderr);
    (await connectDevice(hub.info.mqtt.address, 'garage-door', { reconnectPeriod: 0 })).end(true);

    // Reset: the hub drops the connection and the next password presented becomes the device's.
    const garage = await connectDevice(hub.info.mqtt.address, 'garage-door', { reconnectPeriod: 0 });
    const dropped = new Promise<void>((resolve) => garage.once('close', () => resolve()));
    const reset = await cliAsync(['device', 'reset', 'garage-door', '--data-dir', hub.dataDir]);
    assert.equal(reset.status, 0, reset.stderr);
    await dropped;
    (await connectDevice(hub.info.mqtt.address, 'garage-door', { password: 'a-new-password-0123', reconnectPeriod: 0 })).end(true);
    await assert.rejects(connectDevice(hub.info.mqtt.address, 'garage-door', { reconnectPeriod: 0 }), 'the old password is refused');

    await loggedByCli([
      ['device-approved', 'device garage-door approved by mqttkit-cli'],
      ['device-reset', 'device garage-door may register a new password by mqttkit-cli'],
    ]);
  });

  it('with a hub running, user remove is in its security log, by the CLI, and the admin is cut off at once', async () => {
    const { password } = await run(['user', 'add', 'flows', '--admin'], hub.dataDir);
    const flows = await connectAdmin(hub.info.mqtt.address, 'flows', password!);
    const dropped = new Promise<void>((resolve) => flows.once('close', () => resolve()));
    const removed = await cliAsync(['user', 'remove', 'flows', '--data-dir', hub.dataDir]);
    assert.equal(removed.status, 0, removed.stderr);
    await dropped;
    await loggedByCli([['admin-removed', 'MQTT admin account flows removed by mqttkit-cli']]);
    await assert.rejects(connectAdmin(hub.info.mqtt.address, 'flows', password!), 'its password is refused');
    // A device's account is not removed as an admin's (device remove does that, with its accessory).
    const notAdmin = await cliAsync(['user', 'remove', 'porch-light', '--data-dir', hub.dataDir]);
    assert.notEqual(notAdmin.status, 0);
    assert.match(notAdmin.stderr, /no admin account porch-light/);
  });

  it('a name that exists is refused by name through the hub, and nothing is logged for it', async () => {
    const before = audit().length;
    const again = cli(['token', 'create', 'cli-script', '--data-dir', hub.dataDir]);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /cli-script exists already/);
    const admin = cli(['user', 'add', 'node-red', '--admin', '--data-dir', hub.dataDir]);
    assert.notEqual(admin.status, 0);
    assert.match(admin.stderr, /node-red exists already/);
    assert.equal(audit().length, before);
  });

  it('with no hub running, the three commands work on the store directly', async () => {
    await run(['device', 'add', 'porch-light'], offline);
    await run(['token', 'create', 'cli-script'], offline);
    await run(['user', 'add', 'node-red', '--admin'], offline);
    const devices = JSON.parse(cli(['device', 'list', '--json', '--data-dir', offline]).stdout) as Array<{ id: string; account: string }>;
    assert.deepEqual(
      devices.map((d) => [d.id, d.account]),
      [['porch-light', 'registered']],
    );
    const tokens = JSON.parse(cli(['token', 'list', '--json', '--data-dir', offline]).stdout) as Array<{ name: string }>;
    assert.deepEqual(
      tokens.map((t) => t.name),
      ['cli-script'],
    );
    const admins = JSON.parse(cli(['user', 'list', '--json', '--data-dir', offline]).stdout) as Array<{ name: string }>;
    assert.deepEqual(
      admins.map((a) => a.name),
      ['node-red'],
    );
  });
});
