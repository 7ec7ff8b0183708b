/**
 * Security actions land in the hub log with who did them: a token made and revoked, a dashboard
 * account added and removed, the registration policy switched, a device account added, reset and
 * removed, by a dashboard user or an API token. The secrets involved (passwords, the token) never do.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';

const ADMIN_PASSWORD = 'an audited admin password';
const SECOND_PASSWORD = 'another audited password';

describe('security actions in the hub log', { timeout: 60_000 }, () => {
  let hub: RunningHub;
  let base: string;
  let cookie = '';

  before(async () => {
    hub = await startHub();
    base = `http://127.0.0.1:${hub.info.httpPort}`;
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  /** A dashboard request (the session cookie, the page's own origin) or a script's (a bearer token). */
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : { cookie, origin: base }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const answer = (await response.json()) as Record<string, string>;
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
    return answer;
  };
  /** The hub's log lines (pino JSON) that name a security action. */
  const audit = () =>
    hub
      .output()
      .split('\n')
      .filter((l) => l.includes('"security"'))
      .map((l) => JSON.parse(l) as { security: string; by: string; msg: string });

  it('names the action and who did it, and no secret', async () => {
    const setup = await fetch(`${base}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    assert.equal(setup.status, 200);
    cookie = (setup.headers.get('set-cookie') ?? '').split(';')[0]!;

    const { token } = await call('POST', '/api/tokens', { name: 'audit-script' });
    await call('POST', '/api/users', { username: 'second-admin', password: SECOND_PASSWORD });
    await call('DELETE', '/api/users/second-admin');
    await call('POST', '/api/registration/policy', { policy: 'closed' });
    await call('POST', '/api/registration/policy', { policy: 'open' });
    const { password } = await call('POST', '/api/registration/devices', { id: 'garage-door' });
    // The device connects with its password and reports, so the hub knows it; a script (the token) removes it.
    const door = await connectDevice(hub.info.mqtt.address, 'garage-door', { password: password!, reconnectPeriod: 0 });
    door.on('error', () => {});
    await door.publishAsync('HomeKit/garage-door/ContactSensor/ContactSensorState', '1', { qos: 1 });
    await eventually(
      async () => (await call('GET', '/api/devices')) && (await fetch(`${base}/api/devices/garage-door`, { headers: { cookie } })).ok,
      5000,
      'garage-door known',
    );
    door.end(true);
    await call('POST', '/api/registration/garage-door/reset');
    await call('DELETE', '/api/devices/garage-door', undefined, token);
    await call('DELETE', '/api/tokens/audit-script');

    const want = [
      ['token-created', 'admin', 'API token audit-script created by admin'],
      ['user-added', 'admin', 'dashboard account second-admin added by admin'],
      ['user-removed', 'admin', 'dashboard account second-admin removed by admin'],
      ['policy-switched', 'admin', 'registration policy switched to closed by admin'],
      ['policy-switched', 'admin', 'registration policy switched to open by admin'],
      ['device-added', 'admin', 'device garage-door added by admin'],
      ['device-reset', 'admin', 'device garage-door may register a new password by admin'],
      ['device-removed', 'API token audit-script', 'device garage-door removed by API token audit-script'],
      ['token-revoked', 'admin', 'API token audit-script revoked by admin'],
    ];
    await eventually(() => audit().length >= want.length, 5000, 'the security lines in the hub log');
    assert.deepEqual(
      audit().map((l) => [l.security, l.by, l.msg]),
      want,
    );
    const log = hub.output();
    for (const secret of [token!, password!, ADMIN_PASSWORD, SECOND_PASSWORD, cookie.split('=')[1]!])
      assert.ok(!log.includes(secret), 'no secret in the hub log');
    // The dashboard's Security page reads the same lines (GET /api/hub-log).
    const page = (await call('GET', '/api/hub-log?level=info')) as unknown as { lines: Array<{ text: string }> };
    assert.ok(page.lines.some((l) => l.text.startsWith('device garage-door added by admin')));
  });

  it('names an action whose caller hung up before the answer came (the change was made all the same)', async () => {
    const hangUp = new AbortController();
    const asked = fetch(`${base}/api/registration/devices`, {
      method: 'POST',
      headers: { cookie, origin: base, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'hung-up-lamp' }),
      signal: hangUp.signal,
    }).catch(() => undefined);
    setTimeout(() => hangUp.abort(), 10); // before the password is hashed and the account made
    await asked;
    const made = async () =>
      ((await call('GET', '/api/registration')) as unknown as { accounts: Array<{ id: string }> }).accounts.some((a) => a.id === 'hung-up-lamp');
    await eventually(made, 5000, 'the account to be made');
    await eventually(() => audit().some((l) => l.msg === 'device hung-up-lamp added by admin'), 5000, 'its security line');
  });
});
