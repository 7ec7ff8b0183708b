/**
 * Issue 10, finding 1: the API's access rules hold for the route Fastify matches, whatever spelling of
 * the path reaches it. Every registered route (the hub logs them at debug level; docs/api.md lists
 * them) is tried with percent-encoded letters, doubled slashes, dot segments, case changes, trailing
 * slashes, `;` parameters, absolute-form targets…, without login, across origins with a valid session
 * cookie, and under a foreign Host. None may reach a handler.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually, PINCODE, type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { connectDevice } from '../helpers/mqtt-device.js';
import { json, type RawResponse, rawRequest } from '../helpers/raw-http.js';

const DEVICE = 'guard-lamp';
const DOCS = fileURLToPath(new URL('../../../docs/api.md', import.meta.url));
/** The dashboard's files: public by design, and served only from src/web/public and uPlot's dist folder. */
const ASSETS = ['/*', '/vendor/uplot/*', '/shared/*'];
/** The only API routes reachable without a session or token. */
const PUBLIC_API = ['GET /api/session', 'HEAD /api/session', 'POST /api/setup', 'POST /api/login', 'GET /api/health', 'HEAD /api/health'];
/** The device library's mip package ([A-7]): public so a board or mpremote installs it without a login; read-only. */
const PUBLIC_DEVICE = ['/device/package.json', '/device/:port/package.json', '/device/*'].flatMap((url) => [`GET ${url}`, `HEAD ${url}`]);
const PUBLIC = [...PUBLIC_API, ...PUBLIC_DEVICE];
const SAFE = ['GET', 'HEAD', 'OPTIONS'];

interface Route {
  method: string;
  url: string;
  public?: boolean;
}

/** The routes in docs/api.md's endpoint table. */
function documentedRoutes(): Route[] {
  const rows = readFileSync(DOCS, 'utf8').matchAll(/^\| `(GET|POST|PUT|PATCH|DELETE) (\/(?:api|device)\/[^`\s]*|\/metrics)`/gm);
  return [...rows].map((m) => ({ method: m[1]!, url: m[2]! }));
}

/** The routes the hub registered, from its `web route` debug lines (one a route). */
function registeredRoutes(hub: RunningHub): Route[] | undefined {
  const routes = hub
    .output()
    .split('\n')
    .filter((line) => line.includes('"web route"'))
    .map((line) => (JSON.parse(line) as { route: Route }).route);
  return routes.length > 0 ? routes : undefined;
}

/** Spellings of `path` that a careless guard would tell apart from it. */
function variants(path: string, port: number): string[] {
  const hex = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  const segments = path.split('/').slice(1);
  const withSegment = (i: number, f: (s: string) => string) => `/${segments.map((s, j) => (j === i ? f(s) : s)).join('/')}`;
  const out = new Set<string>([path]);
  segments.forEach((_, i) => {
    out.add(withSegment(i, (s) => s.replace(/[a-z]/i, hex))); // /%61pi/…, /api/%64evices/…
    out.add(withSegment(i, (s) => s.replace(/[a-z]/i, (c) => hex(c).toUpperCase())));
    out.add(withSegment(i, (s) => s.charAt(0).toUpperCase() + s.slice(1))); // /Api/…, /api/Devices/…
  });
  out.add(path.replace(/[a-z]/gi, hex)); // every letter encoded
  out.add(`/%2561${path.slice(2)}`); // encoded twice
  out.add(`/${path}`); // //api/…
  out.add(path.replace('/api/', '/api//'));
  out.add(path.replace(/\/([^/]*)$/, '//$1'));
  out.add(`${path}/`);
  out.add(`${path}//`);
  out.add(`/x/..${path}`);
  out.add(`/x/%2e%2e${path}`);
  out.add(`/.${path}`);
  out.add(path.replace('/api/', '/api/./'));
  out.add(path.replace('/api/', '/api/x/../'));
  out.add(path.replace('/api/', '/api/%2e/'));
  out.add(`${path}/.`);
  out.add(path.toUpperCase());
  out.add(`/API${path.slice(4)}`);
  out.add(path.replace('/api', '/api;x=1'));
  out.add(`${path};x=1`);
  out.add(path.replace('/api/', '/api\\'));
  out.add(`/api${path.slice(4).replace(/\//g, '%2F')}`);
  out.add(`/api${path.slice(4).replace(/\//g, '%2f')}`);
  out.add(`${path}%00`);
  out.add(`${path}?next=/api/session`);
  out.add(`${path}#/api/session`);
  out.add(`http://127.0.0.1:${port}${path}`); // absolute form
  out.add(`http://127.0.0.1:${port}/x/..${path}`);
  return [...out];
}

/** A body that the route's handler would accept, so a request that slips past the guard shows as a 2xx. */
function bodyFor(route: Route): unknown {
  const bodies: Record<string, unknown> = {
    'POST /api/devices/:id/set': { service: 'Lightbulb', characteristic: 'On', value: false },
    'POST /api/devices/:id/command': { command: 'stats' },
    'POST /api/ota/sync': { device: DEVICE, files: [{ path: 'main.py', content: Buffer.from('print(1)').toString('base64') }] },
    'POST /api/ota/push': { device: DEVICE, file: { path: 'main.py', content: Buffer.from('print(1)').toString('base64') }, reboot: false },
    'POST /api/ota/firmware': { device: DEVICE, image: Buffer.from('firmware').toString('base64') },
    'POST /api/setup': { username: 'intruder', password: 'intruder password' },
    'POST /api/login': { username: 'admin', password: 'correct horse battery' },
  };
  return bodies[`${route.method} ${route.url}`] ?? {};
}

const fill = (url: string) => url.replace(/:id\b/g, DEVICE).replace(/\*$/, 'x');
const key = (r: Route) => `${r.method} ${r.url}`;

describe('API guard: every route, every spelling', { timeout: 300_000 }, () => {
  let hub: RunningHub;
  let port: number;
  let cookie = '';
  let routes: Route[] = [];
  const same = () => `http://127.0.0.1:${port}`;

  before(async () => {
    hub = await startHub({ args: ['--log-level', 'debug'] });
    port = hub.info.httpPort!;
    const device = await connectDevice(hub.info.mqtt.address, DEVICE);
    device.on('error', () => {});
    await device.publishAsync(`HomeKit/${DEVICE}/Lightbulb/On`, '1', { qos: 1 });
    const setup = await rawRequest(port, {
      method: 'POST',
      path: '/api/setup',
      ...json({ username: 'admin', password: 'correct horse battery' }),
      headers: { 'content-type': 'application/json', origin: same() },
    });
    assert.equal(setup.status, 200, setup.body);
    cookie = String(setup.headers['set-cookie']).split(';')[0]!;
    await eventually(async () => (await rawRequest(port, { path: `/api/devices/${DEVICE}`, headers: { cookie } })).status === 200, 10_000, 'the device');
    const registered = registeredRoutes(hub) ?? [];
    const seen = new Set<string>();
    for (const r of [...registered, ...documentedRoutes()]) {
      if (ASSETS.includes(r.url) || seen.has(key(r))) continue;
      seen.add(key(r));
      routes.push(r);
    }
    // Each path is also tried with OPTIONS and a method it does not have.
    routes = [
      ...routes,
      ...[...new Set(routes.map((r) => r.url))].flatMap((url) => [
        { method: 'OPTIONS', url },
        { method: 'PUT', url },
      ]),
    ];
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  /** What a refused (or unrouted) request may answer; anything else reached a handler. */
  function refused(method: string, response: RawResponse, allowed: number[]): string | undefined {
    if (response.body.includes(PINCODE)) return `${response.status} with the setup code`;
    if (allowed.includes(response.status)) return undefined;
    if (method === 'HEAD' && [400, 404].includes(response.status)) return undefined; // no body to tell who answered
    // The static file server refusing a malformed path (`/api%00` matches no API route).
    if (response.status === 400 && response.body === '{"error":"Bad Request"}') return undefined;
    // A 404 is fine only from the router (no route for this spelling), not from a handler ("no device …").
    if (response.status === 404 && /Route \w+:.* not found|no API endpoint/.test(response.body)) return undefined;
    return `${response.status} ${response.body.slice(0, 120)}`;
  }

  async function walk(label: string, pick: (r: Route) => boolean, headers: () => Record<string, string>, allowed: number[]): Promise<number> {
    const failures: string[] = [];
    let sent = 0;
    for (const route of routes.filter(pick)) {
      const body = SAFE.includes(route.method) ? undefined : JSON.stringify(bodyFor(route));
      for (const path of variants(fill(route.url), port)) {
        sent++;
        let problem: string | undefined;
        try {
          const response = await rawRequest(port, {
            method: route.method,
            path,
            body,
            headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers() },
            timeoutMs: 3000,
          });
          problem = refused(route.method, response, allowed);
        } catch (error) {
          problem = (error as Error).message; // a handler that waits (for a device) was reached
        }
        if (problem) failures.push(`${route.method} ${path} → ${problem}`);
      }
    }
    assert.deepEqual(failures.slice(0, 40), [], `${label}: ${failures.length} of ${sent} requests got through`);
    return sent;
  }

  it('registers only documented routes, and only the login endpoints and the device library are public', () => {
    const registered = registeredRoutes(hub);
    assert.ok(registered, 'the hub logs its routes at debug level ("web route", one line each)');
    const documented = new Set(documentedRoutes().map(key));
    const api = registered.filter((r) => !ASSETS.includes(r.url) && r.method !== 'HEAD' && !['/api', '/api/*'].includes(r.url));
    assert.deepEqual(
      api.map(key).filter((k) => !documented.has(k)),
      [],
      'every route is in docs/api.md',
    );
    assert.deepEqual(
      [...documented].filter((k) => !api.some((r) => key(r) === k)),
      [],
      'every documented route exists',
    );
    assert.deepEqual(
      registered
        .filter((r) => r.public && !ASSETS.includes(r.url))
        .map(key)
        .sort(),
      [...PUBLIC].sort(),
    );
  });

  it('the test reaches the handlers: with the session cookie an encoded path is served', async () => {
    const pairing = await rawRequest(port, { path: '/%61pi/pairing', headers: { cookie } });
    assert.equal(pairing.status, 200);
    assert.ok(pairing.body.includes(PINCODE));
    assert.equal((await rawRequest(port, { path: '/api/session' })).status, 200, 'public without login');
    const unknown = await rawRequest(port, { path: '/api/nope', headers: { cookie } });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /no API endpoint GET \/api\/nope/);
    const head = await rawRequest(port, { method: 'HEAD', path: '/api/events', headers: { cookie } });
    assert.equal(head.status, 404, 'HEAD opens no stream');
  });

  it('answers 401 (or an unrouted 404) to every spelling of every protected route without login', async () => {
    const sent = await walk(
      'without login',
      (r) => !PUBLIC.includes(key(r)),
      () => ({ origin: same() }),
      [401],
    );
    assert.ok(sent > 500, `${sent} requests`);
  });

  it('answers 403 to every spelling of every state change from another origin, or without one, even with the session cookie', async () => {
    const change = (r: Route) => !SAFE.includes(r.method);
    await walk('cross-origin', change, () => ({ cookie, origin: 'http://evil.example' }), [403]);
    await walk('no origin', change, () => ({ cookie }), [403]);
    await walk('look-alike origin', change, () => ({ cookie, origin: `${same()}.evil.example` }), [403]);
  });

  it('answers 403 to every route under a Host name that is not the hub (DNS rebinding)', async () => {
    await walk(
      'foreign Host',
      () => true,
      () => ({ host: `evil.example:${port}`, origin: `http://evil.example:${port}` }),
      [403],
    );
  });

  it('left everything as it was: the device, its password, the one admin', async () => {
    const device = await rawRequest(port, { path: `/api/devices/${DEVICE}`, headers: { cookie } });
    assert.equal(device.status, 200, 'the device was not removed');
    const registration = JSON.parse((await rawRequest(port, { path: '/api/registration', headers: { cookie } })).body) as {
      accounts: Array<{ id: string; passwordSet: boolean }>;
    };
    assert.equal(registration.accounts.find((a) => a.id === DEVICE)?.passwordSet, true, 'its password was not reset');
    const jobs = JSON.parse((await rawRequest(port, { path: '/api/ota/jobs', headers: { cookie } })).body) as unknown[];
    assert.equal(jobs.length, 0, 'no OTA job was queued');
    const intruder = await rawRequest(port, {
      method: 'POST',
      path: '/api/login',
      ...json({ username: 'intruder', password: 'intruder password' }),
      headers: { 'content-type': 'application/json', origin: same() },
    });
    assert.equal(intruder.status, 401, 'no second admin was created');
  });

  it('serves nothing outside the dashboard folders, however the path is spelled', async () => {
    const secrets = /"name": "(mqttkit|uplot)"|export class WebServer|export class DeviceRegistry|root:x:0:0|"pid":/;
    const up = (n: number, sep: string) => Array(n).fill('..').join(sep);
    const paths = [
      `/${up(3, '%2f')}%2fpackage.json`,
      `/${up(3, '%2F')}%2Fpackage.json`,
      '/%2e%2e/%2e%2e/%2e%2e/package.json',
      '/%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
      `/${up(3, '/')}/package.json`,
      '/..%5c..%5c..%5cpackage.json',
      '/%252e%252e/%252e%252e/%252e%252e/package.json',
      '/..;/..;/..;/package.json',
      `/vendor/uplot/${up(2, '%2f')}%2fpackage.json`,
      '/vendor/uplot/%2e%2e/package.json',
      '/vendor/uplot/..%2fpackage.json',
      `/vendor/uplot/${up(5, '%2f')}%2fpackage.json`,
      `/${up(12, '%2f')}%2fetc%2fpasswd`,
      `/vendor/uplot/${up(12, '/')}/etc/passwd`,
      '/....//....//....//package.json',
      '/.%2e/.%2e/.%2e/package.json',
      '/%2e%2e/%2e%2e/%2e%2e/src/web/server.ts',
      '/..%2f..%2f..%2fsrc/web/server.ts',
      '/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/package.json',
      '/%00../../../package.json',
      `http://127.0.0.1:${port}/../../../package.json`,
      '/app.js/../../../../package.json',
      '/index.html%00.js',
      // /shared/ serves one compiled file of src/core (the labels table), nothing beside or above it.
      '/shared/registry.js',
      '/shared/../web/server.js',
      '/shared/%2e%2e/web/server.js',
      '/shared/..%2fweb%2fserver.js',
      '/shared/characteristic-display.js/../registry.js',
      `/${up(12, '%2f')}%2f${encodeURIComponent(hub.dataDir.slice(1))}%2fhub.json`,
    ];
    const leaks: string[] = [];
    for (const path of paths) {
      const response = await rawRequest(port, { path });
      if (secrets.test(response.body)) leaks.push(`${path} → ${response.status}`);
    }
    assert.deepEqual(leaks, []);
    assert.match((await rawRequest(port, { path: '/app.js' })).body, /mqttkit dashboard/, 'the dashboard itself is served');
  });
});
