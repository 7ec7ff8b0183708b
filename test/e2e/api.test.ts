/** The HTTP API: access control, origin checks, input validation, tokens, and value history. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { cliAsync, connectDevice } from '../helpers/mqtt-device.js';

describe('HTTP API', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let base: string;
  let cookie = '';

  const call = (method: string, path: string, options: { body?: unknown; origin?: string | null; auth?: string; cookie?: string } = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(options.origin === null ? {} : { origin: options.origin ?? base }),
        ...(options.auth ? { authorization: `Bearer ${options.auth}` } : {}),
        ...(options.cookie ? { cookie: options.cookie } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });

  before(async () => {
    hub = await startHub();
    base = `http://127.0.0.1:${hub.info.httpPort}`;
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  const endpoints: Array<[string, string]> = [
    ['GET', '/api/devices'],
    ['GET', '/api/devices/x'],
    ['DELETE', '/api/devices/x'],
    ['POST', '/api/devices/x/set'],
    ['POST', '/api/devices/x/command'],
    ['GET', '/api/devices/x/logs'],
    ['GET', '/api/pairing'],
    ['GET', '/api/registration'],
    ['POST', '/api/registration/x/approve'],
    ['POST', '/api/registration/x/reset'],
    ['GET', '/api/ota/jobs'],
    ['POST', '/api/ota/sync'],
    ['POST', '/api/ota/push'],
    ['POST', '/api/ota/firmware'],
    ['GET', '/api/history'],
    ['GET', '/api/events'],
    ['GET', '/api/metrics'],
  ];

  it('refuses every endpoint without a session or token (401), but serves the login page and assets', async () => {
    for (const [method, path] of endpoints) {
      const response = await call(method, path, { body: method === 'GET' || method === 'DELETE' ? undefined : {} });
      assert.equal(response.status, 401, `${method} ${path}`);
      assert.match(((await response.json()) as { error: string }).error, /log in first/);
    }
    assert.equal((await call('GET', '/')).status, 200);
    assert.equal((await call('GET', '/app.js')).status, 200);
    assert.equal((await call('GET', '/vendor/uplot/uPlot.iife.min.js')).status, 200);
    const session = (await (await call('GET', '/api/session')).json()) as { setupNeeded: boolean; user: null };
    assert.deepEqual(session, { setupNeeded: true, user: null });
  });

  it('creates the first admin once, with a real password; then logs in with an httpOnly SameSite cookie', async () => {
    const weak = await call('POST', '/api/setup', { body: { username: 'admin', password: 'short' } });
    assert.equal(weak.status, 400);
    assert.match(((await weak.json()) as { error: string }).error, /password: at least 10 characters/);
    const created = await call('POST', '/api/setup', { body: { username: 'admin', password: 'correct horse battery' } });
    assert.equal(created.status, 200);
    const setCookie = created.headers.get('set-cookie')!;
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    cookie = setCookie.split(';')[0]!;
    assert.equal((await call('POST', '/api/setup', { body: { username: 'evil', password: 'another password' } })).status, 409, 'only once');
    assert.equal((await call('POST', '/api/login', { body: { username: 'admin', password: 'wrong password!' } })).status, 401);
    const login = await call('POST', '/api/login', { body: { username: 'admin', password: 'correct horse battery' } });
    assert.equal(login.status, 200);
    assert.equal((await call('GET', '/api/devices', { cookie })).status, 200);
  });

  it('refuses cross-origin state changes and validates input with clear messages', async () => {
    const foreign = await call('POST', '/api/devices/x/command', { cookie, origin: 'http://evil.example', body: { command: 'reboot' } });
    assert.equal(foreign.status, 403);
    assert.match(((await foreign.json()) as { error: string }).error, /cross-origin request refused/);
    assert.equal(
      (await call('POST', '/api/devices/x/command', { cookie, origin: null, body: { command: 'reboot' } })).status,
      403,
      'no Origin, no state change',
    );

    const device = await connectDevice(hub.info.mqtt.address, 'api-lamp');
    await device.publishAsync('HomeKit/api-lamp/Lightbulb/On', '1', { qos: 1 });
    await eventually(async () => (await call('GET', '/api/devices/api-lamp', { cookie })).status === 200, 5000, 'the device');
    const bad = async (body: unknown, pattern: RegExp) => {
      const response = await call('POST', '/api/devices/api-lamp/set', { cookie, body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.match(((await response.json()) as { error: string }).error, pattern);
    };
    await bad({}, /service: .*characteristic: .*value: /);
    await bad({ service: 'Lightbulb', characteristic: 'Brightness', value: 140 }, /140 is out of range for Brightness/);
    await bad({ service: 'Lightbulb', characteristic: 'Onn', value: true }, /did you mean 'On'/);
    const history = await call('GET', '/api/history', { cookie });
    assert.equal(history.status, 400);
    assert.match(((await history.json()) as { error: string }).error, /device: /);
    assert.equal((await call('GET', '/api/devices/nope', { cookie })).status, 404);

    const messages: string[] = [];
    await device.subscribeAsync('HomeKit/api-lamp/+/+/set', { qos: 1 });
    device.on('message', (topic, payload) => messages.push(`${topic} ${payload.toString()}`));
    assert.equal((await call('POST', '/api/devices/api-lamp/set', { cookie, body: { service: 'Lightbulb', characteristic: 'On', value: false } })).status, 200);
    await eventually(() => messages.includes('HomeKit/api-lamp/Lightbulb/On/set 0'), 5000, 'the /set message');
    device.end(true);
  });

  it('accepts API tokens made with mqttkit token create (no origin needed), and refuses revoked ones', async () => {
    const created = await cliAsync(['token', 'create', 'script', '--json', '--data-dir', hub.dataDir]);
    const { token } = JSON.parse(created.stdout) as { token: string };
    assert.equal((await call('GET', '/api/devices', { auth: token, origin: null })).status, 200);
    assert.equal((await call('POST', '/api/registration/api-lamp/reset', { auth: token, origin: null })).status, 200);
    await cliAsync(['token', 'remove', 'script', '--data-dir', hub.dataDir]);
    assert.equal((await call('GET', '/api/devices', { auth: token })).status, 401);
  });

  it('streams device log lines as they are kept (event `log`), bounded per tick, a flood counted and the stream kept', async () => {
    const controller = new AbortController();
    const response = await fetch(`${base}/api/events`, { headers: { cookie }, signal: controller.signal });
    assert.equal(response.status, 200);
    const events: Array<{ event: string; data: { device?: string; id?: number; topic?: string; text?: string; lines?: number } }> = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    })().catch(() => {});
    await eventually(() => events.some((e) => e.event === 'hello'), 5000, 'the stream to open');
    const device = await connectDevice(hub.info.mqtt.address, 'api-logger');
    device.on('error', () => {});
    // One long line: the stream carries its first 4 KiB (the store and GET …/logs keep it whole).
    await device.publishAsync('stat/api-logger/Log', 'x'.repeat(10_000), { qos: 1 });
    const long = await eventually(() => events.find((e) => e.event === 'log' && e.data.device === 'api-logger')?.data, 5000, 'the long line');
    assert.equal(long.topic, 'stat/api-logger/Log');
    assert.equal(long.text?.length, 4096);
    assert.equal(typeof long.id, 'number');
    const kept = (await (await call('GET', `/api/devices/api-logger/logs?after=${long.id! - 1}`, { cookie })).json()) as Array<{ text: string }>;
    assert.equal(kept[0]?.text.length, 10_000, 'the store keeps the long line whole');
    // A flood (within the broker's burst of 500, else it disconnects the device): every line is either
    // sent or counted as skipped, never queued without bound.
    for (let i = 0; i < 400; i++) device.publish('stat/api-logger/Log', `line ${i}`, { qos: 0 });
    await device.publishAsync('stat/api-logger/Log', 'after the flood', { qos: 1 });
    const accounted = () =>
      events.filter((e) => e.event === 'log').length - 1 + events.filter((e) => e.event === 'log-dropped').reduce((n, e) => n + (e.data.lines ?? 0), 0);
    await eventually(() => accounted() >= 401, 10_000, 'every flood line sent or counted');
    assert.equal(accounted(), 401);
    // Still open and following: a later line arrives.
    await device.publishAsync('stat/api-logger/Log', 'still here', { qos: 1 });
    await eventually(() => events.some((e) => e.event === 'log' && e.data.text === 'still here'), 5000, 'a line after the flood');
    controller.abort();
    await reading;
    device.end(true);
  });

  it('records value history and serves it downsampled', async () => {
    const sensor = await connectDevice(hub.info.mqtt.address, 'api-thermo');
    for (let i = 0; i < 100; i++) await sensor.publishAsync('HomeKit/api-thermo/TemperatureSensor/CurrentTemperature', String(10 + i / 10), { qos: 1 });
    const query = (points: number) => `/api/history?device=api-thermo&service=TemperatureSensor&characteristic=CurrentTemperature&points=${points}`;
    const all = await eventually(
      async () => {
        const body = (await (await call('GET', query(1000), { cookie })).json()) as { points: Array<{ at: number; value: number }> };
        return body.points.length === 100 ? body.points : undefined;
      },
      5000,
      '100 recorded values',
    );
    assert.deepEqual(all.map((p) => p.value).slice(0, 3), [10, 10.1, 10.2]);
    const coarse = (await (await call('GET', query(10), { cookie })).json()) as { points: Array<{ value: number }> };
    assert.ok(coarse.points.length <= 10 && coarse.points.length >= 1, `downsampled to ${coarse.points.length}`);
    const mean = all.reduce((n, p) => n + p.value, 0) / all.length;
    const coarseMean = coarse.points.reduce((n, p) => n + p.value, 0) / coarse.points.length;
    assert.ok(Math.abs(mean - coarseMean) < 1.5, 'bucket averages keep the level of the series');
    sensor.end(true);
  });
});
