/**
 * Guesses for the admin's name must not keep the admin out of the dashboard (the web twin of issue 10,
 * finding 5): the login throttle slows the guessing address, never the account.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';

const ADMIN = { username: 'admin', password: 'correct horse battery' };

/** A login POST from `localAddress` (another loopback address stands for another machine on the LAN). */
function login(port: number, body: unknown, localAddress = '127.0.0.1', signal?: AbortSignal): Promise<number> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/login',
        localAddress,
        ...(signal ? { signal } : {}),
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), origin: `http://127.0.0.1:${port}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end(text);
  });
}

describe('dashboard login under guessing', { timeout: 180_000 }, () => {
  let hub: RunningHub;
  let port: number;

  before(async () => {
    hub = await startHub();
    port = hub.info.httpPort!;
    const created = await fetch(`http://127.0.0.1:${port}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
      body: JSON.stringify(ADMIN),
    });
    assert.equal(created.status, 200);
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  for (const [what, warm] of [
    ['the first login since the hub started', false],
    ['a login with a password that worked before', true],
  ] as const) {
    it(`lets the admin in within 2 s while 20 wrong passwords for the admin are in flight from another address (${what})`, async () => {
      if (warm) assert.equal(await login(port, ADMIN), 200);
      // Guessing runs one at a time with growing pauses (minutes for all 20): the test looks at the first
      // answers only and hangs up on the rest.
      const stop = new AbortController();
      const guesses = Array.from({ length: 20 }, (_, i) =>
        login(port, { username: 'admin', password: `wrong guess ${i}` }, '127.0.0.2', stop.signal).catch(() => 0),
      );
      assert.equal(await guesses[0], 401, 'a wrong password is refused');
      const started = Date.now();
      assert.equal(await login(port, ADMIN), 200, 'the right password is accepted');
      const took = Date.now() - started;
      stop.abort();
      await Promise.all(guesses);
      assert.ok(took < 2000, `the admin waited ${took} ms`);
    });
  }
});
