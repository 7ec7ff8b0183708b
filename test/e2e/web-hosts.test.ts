/**
 * Issue 10, finding 2: a DNS-rebinding page reaches the hub under its own name (evil.example → the
 * hub's address) and is then "same-origin". The hub answers only to its own names: a page under
 * another Host cannot create the first admin, nor even read /api/session.
 */
import assert from 'node:assert/strict';
import { hostname, networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cli } from '../helpers/mqtt-device.js';
import { json, rawRequest } from '../helpers/raw-http.js';

describe('Host names the hub answers to (DNS rebinding)', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let port: number;

  before(async () => {
    // Through the variable (the flag is tried below): same option, and an old hub would start too.
    hub = await startHub({ env: { MQTTKIT_HTTP_ALLOWED_HOSTS: 'hub.example,Nas.Lan.' } });
    port = hub.info.httpPort!;
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  const session = (host: string) => rawRequest(port, { path: '/api/session', headers: { host } });
  const setup = (host: string, username: string) =>
    rawRequest(port, {
      method: 'POST',
      path: '/api/setup',
      ...json({ username, password: 'correct horse battery' }),
      headers: { 'content-type': 'application/json', host, origin: `http://${host}` },
    });

  it('refuses the first-run setup from a page under another name, naming the Host and the option that allows it', async () => {
    const refused = await setup(`evil.example:${port}`, 'rebound');
    assert.equal(refused.status, 403);
    const { error } = JSON.parse(refused.body) as { error: string };
    assert.match(error, new RegExp(`Host 'evil\\.example:${port}' is not a name of this hub`));
    assert.match(error, /--http-allowed-hosts evil\.example /);
    const state = JSON.parse((await session(`127.0.0.1:${port}`)).body) as { setupNeeded: boolean };
    assert.equal(state.setupNeeded, true, 'no admin was created');
  });

  it('does not even let such a page read the session state or the dashboard', async () => {
    for (const host of [
      `evil.example:${port}`,
      'evil.example',
      `127.0.0.1.evil.example:${port}`,
      'localhost.evil.example',
      'hub.example.evil',
      'nas.lan.evil.example',
    ]) {
      assert.equal((await session(host)).status, 403, host);
      assert.equal((await rawRequest(port, { path: '/', headers: { host } })).status, 403, `${host} /`);
    }
  });

  it('refuses malformed Host headers', async () => {
    for (const host of [
      '',
      ' ',
      `127.0.0.1:${port}@evil.example`,
      `localhost:${port}:${port}`,
      '[::1',
      '[::1].evil',
      '[evil.example]',
      'local host',
      'localhost:port',
      `[::1]x:${port}`,
    ]) {
      assert.equal((await session(host)).status, 403, JSON.stringify(host));
    }
  });

  it('answers to its addresses, localhost, its machine name (and .local), and added names, with or without a port', async () => {
    const own = Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .filter((i) => !i.address.startsWith('fe80'))
      .map((i) => (i.family === 'IPv6' ? `[${i.address}]` : i.address));
    const hosts = [
      `127.0.0.1:${port}`,
      '127.0.0.1',
      `localhost:${port}`,
      'LOCALHOST',
      `[::1]:${port}`,
      '[::1]',
      '[0:0:0:0:0:0:0:1]',
      `localhost.:${port}`,
      hostname(),
      `${hostname()}.local:${port}`,
      `hub.example:${port}`,
      'HUB.example.',
      'nas.lan',
      `Nas.Lan:${port}`,
      ...own,
      ...own.map((a) => `${a}:${port}`),
    ];
    for (const host of hosts) {
      const response = await session(host);
      assert.equal(response.status, 200, `${host}: ${response.body}`);
    }
  });

  it('lets the owner set up the hub under a name added with --http-allowed-hosts', async () => {
    const created = await setup(`hub.example:${port}`, 'admin');
    assert.equal(created.status, 200, created.body);
  });

  it('refuses a bad --http-allowed-hosts value at start, naming the option', () => {
    const result = cli(['start', '--data-dir', hub.dataDir, '--http-allowed-hosts', 'good.example,bad name!']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--http-allowed-hosts: 'good\.example,bad name!' is not valid; expected more names the dashboard answers to/);
  });
});

describe('first-run setup', { timeout: 60_000 }, () => {
  it('creates one admin when setups race (the others answer 409)', async () => {
    const hub = await startHub();
    try {
      const port = hub.info.httpPort!;
      const answers = await Promise.all(
        ['admin', 'racer1', 'racer2', 'racer3'].map((username) =>
          rawRequest(port, {
            method: 'POST',
            path: '/api/setup',
            ...json({ username, password: 'correct horse battery' }),
            headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
          }),
        ),
      );
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 409, 409, 409], answers.map((a) => a.body).join('\n'));
    } finally {
      await hub.stop('SIGKILL');
      removeDataDir(hub.dataDir);
    }
  });
});
