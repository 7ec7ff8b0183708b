/**
 * The web feature: a JSON API (docs/api.md), a live event stream (Server-Sent Events), and the
 * dashboard's static files. Everything but the login page and static assets needs a session cookie
 * or an API token; state changes from a browser must come from the dashboard's own origin. Those
 * rules live in one hook (guard.ts) that runs for every matched route; a route opts out of the login
 * requirement only where it is registered (`config: { public: true }`).
 */

import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { z } from 'zod';
import type { EventBus } from '../core/events.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { BridgeStatus } from '../homekit/homekit-bridges.js';
import { VERSION } from '../hub/version.js';
import { HUB_LOG_LINES, type HubLogLine, hubLog, LEVEL_RANK } from '../log/log-ring.js';
import type { Logger } from '../log/logger.js';
import type { MatterControl } from '../matter/status.js';
import { commandRefusal } from '../ota/command-reach.js';
import type { DeviceChannel, DeviceLogLine } from '../ota/device-channel.js';
import { base64Length, fileSizeProblem, formatSize, KIB, MIB } from '../ota/file-size.js';
import type { CancelOutcome, RolloutCancelOutcome } from '../ota/job-control.js';
import { devicePathProblem, FIRMWARE_TARGET } from '../ota/protocol.js';
import { KnownPasswords } from '../security/known-passwords.js';
import { LoginThrottle } from '../security/login-throttle.js';
import { hashPassword, verifyPassword } from '../security/password-hash.js';
import { REGISTRATION_POLICIES, type Registration, type RegistrationPolicy } from '../security/registration.js';
import type { AccountStore } from '../store/account-store.js';
import type { HistoryStore } from '../store/history-store.js';
import { FINISHED, type OtaStore } from '../store/ota-store.js';
import type { WebStore } from '../store/web-store.js';
import { adminRoutes, credentials, refuseApiToken } from './admin-routes.js';
import { HostAllowlist } from './allowed-hosts.js';
import { DEVICE_LIBRARY, loadDeviceLibrary, servedPath } from './device-package.js';
import { type EspNowDeps, espnowRoutes } from './espnow-routes.js';
import { guard, LOCAL_KEY, SESSION_COOKIE } from './guard.js';
import { HttpError } from './http-error.js';
import { matterRoutes } from './matter-routes.js';
import { type HubMetrics, PROMETHEUS_TYPE, prometheusText } from './prometheus.js';
import { qrCode } from './qr-code.js';
import { queryRoutes } from './query-routes.js';
import { deviceView, deviceViews } from './views.js';

export interface WebDeps {
  /** [A-12] Serve HTTPS with this PEM certificate and key (the session cookie is `Secure` then). */
  tls?: { cert: string; key: string } | undefined;
  /** [H-3] With a shared PostgreSQL: this hub is the active one, reachable at this address. */
  cluster?: { instanceUrl: string } | undefined;
  registry: DeviceRegistry;
  bus: EventBus;
  ota: OtaStore;
  history: HistoryStore;
  accounts: AccountStore;
  web: WebStore;
  channel: DeviceChannel;
  bridges: () => BridgeStatus[];
  pincode: string;
  policy: RegistrationPolicy;
  dataDir: string;
  log: Logger;
  /** Removes a device the way `mqttkit device remove` does; `reason` goes to the log. */
  removeDevice: (id: string, reason?: string) => Promise<void>;
  /** Drops an MQTT client's connection (after its password changed, or to test a reconnect). */
  /** Drops a client's MQTT connection; `removed`: its account is gone, no last will (embedded broker). */
  disconnect: (id: string, options?: { removed?: boolean }) => void;
  /** Stops a rollout and cancels its unfinished jobs; `by` names who asked. */
  cancelRollout: (id: number, by: string) => Promise<RolloutCancelOutcome>;
  /** [A-8] The hub's local token for the CLI (a new one each start), or none. */
  localToken?: string;
  /** Message counters of the MQTT side. */
  counters: () => { received: number; applied: number; refused: number };
  /** [A-5] Host names the API answers to besides the hub's own (`--http-allowed-hosts`). */
  allowedHosts?: readonly string[];
  /** [A-6] The largest file an OTA upload may carry (`--ota-max-file-size`), in bytes. */
  otaMaxFileSize?: number;
  /** Faults the hub survived (unhandled rejections, uncaught exceptions, listener errors). */
  faults: () => { unhandledRejections: number; uncaughtExceptions: number; listenerErrors: number };
  /** Ends a queued or running OTA job; `by` names who asked. */
  cancelJob: (id: number, by: string) => Promise<CancelOutcome>;
  /** Set when the hub runs without OTA (`--no-ota`): why new OTA jobs and rollouts are refused. */
  otaOff?: string | undefined;
  /** The embedded broker's registration, to read and switch its policy (none with an external broker). */
  registration?: () => Pick<Registration, 'currentPolicy' | 'setPolicy'> | undefined;
  /** The broker is external (Mosquitto): device accounts are made there, not by the dashboard. */
  externalBroker?: boolean;
  /** Where the device library and its ports.json are (default: the package's device/micropython). [A-7] */
  deviceLibrary?: string;
  /** ESP-NOW pairing (issue 16). */
  espnow?: Omit<EspNowDeps, 'accounts' | 'registry' | 'channel' | 'externalBroker'> | undefined;
  /** `--matter`: the Matter bridge while it runs (docs/matter.md). */
  matter?: (() => MatterControl | undefined) | undefined;
}

const COOKIE = SESSION_COOKIE;
const PUBLIC = join(dirname(fileURLToPath(import.meta.url)), '../../../src/web/public');
// Found as Node finds a dependency: in an installed package uPlot sits beside mqttkit, not inside it.
/** Compiled core modules the browser imports too (dependency-free). */
const SHARED = join(dirname(fileURLToPath(import.meta.url)), '../core');
const SHARED_FILES = new Set(['/characteristic-display.js', '/device-pattern.js']);
const UPLOT = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');

// [A-6] Every field is bounded before any work is done on it; messages never echo the input.
/** The shape of an id, to look one up (the rules for new ids are the registry's). */
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const deviceId = z.string().min(1, 'required').regex(ID, 'not a device id (1-64 letters, digits, _ or -)');
const name = z.string().min(1, 'required').max(64, 'at most 64 characters');
const setBody = z.object({
  service: name,
  index: z.number().int().min(0).max(99).default(0),
  characteristic: name,
  value: z.union([z.boolean(), z.number(), z.string().max(8192)]),
});
const commandBody = z.object({ command: z.string().min(1).max(200), timeoutS: z.number().int().min(1).max(3600).default(15) });
/** [A-8] Who cancels, as the CLI names it (`'mqttkit ota cancel' as <user>`); honoured for the local token only. */
const cancelBody = z.object({ by: z.string().min(1).max(200).optional() }).default({});
const otaProtocolBody = z.object({ value: z.union([z.literal(1), z.literal(2), z.literal('auto')]) });
const rolloutBody = z.object({
  files: z
    .array(z.object({ path: z.string().min(1).max(200), content: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64') }))
    .min(1)
    .max(100),
  devices: z.array(deviceId).min(1).max(5000),
  pattern: z.string().min(1).max(200),
  canary: z.number().int().min(0).max(5000),
  concurrency: z.number().int().min(1).max(5000),
});
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');
const upload = z.object({ path: z.string().min(1).max(200), content: base64 });
const syncBody = z.object({ device: deviceId, files: z.array(upload).min(1).max(100) });
const pushBody = z.object({ device: deviceId, file: upload, reboot: z.boolean().default(true) });
const firmwareBody = z.object({ device: deviceId, image: base64.min(1, 'required') });
const idParams = z.object({ id: deviceId });
/** [A-6] A device's name as people give it: the rules of `$name` (docs/protocol.md [P-11]). */
const renameBody = z.object({
  name: z
    .string()
    .trim()
    .min(1, 'required')
    .refine((v) => [...v].length <= 64, 'at most 64 characters')
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'no control characters (line breaks, tabs)'),
});
/** Notes kept by the hub per device: bounded so a store row stays small. */
export const NOTES_MAX = 2000;
const notesBody = z.object({ notes: z.string().max(NOTES_MAX, `at most ${NOTES_MAX} characters`) });
const logsQuery = z.object({ after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional() });
/** Milliseconds since the epoch, within the range a Date holds. */
const instant = z.coerce.number().int().min(0).max(8.64e15);

/** [A-6] Request bodies: small unless the route says otherwise. */
const BODY_LIMIT = 16 * KIB;
const LOGIN_BODY_LIMIT = 4 * KIB;
/** Room for the JSON around an upload's base64 text (device id, paths, keys). */
const UPLOAD_OVERHEAD = 4 * KIB;
/** Live event streams one user (or token) may hold open at once (a tab holds one). */
export const MAX_STREAMS_PER_USER = 20;
/** Unsent event bytes a stream may queue before the hub drops the reader. */
const STREAM_BACKLOG = 1 * MIB;
/** [A-3] Device log lines a stream sends per tick (250 ms); a flood beyond is counted, not queued. */
const STREAM_LOG_LINES = 100;
/**
 * [A-3] A stream sends what changed at most this long after the first change, together (a burst of
 * changes costs one write). The timer exists only while something waits to be sent: an idle stream
 * does not wake the hub (issue 13).
 */
const STREAM_TICK_MS = 250;
/** A hub log cursor as a query or a Last-Event-ID header: the id of the last line the reader has. */
const HUB_LOG_CURSOR = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional();
/** [A-3] How often an open stream checks that its session or token still holds; every third time it sends `: keep-alive` (15 s). */
const STREAM_CHECK_MS = 5000;
/** Stored log lines a `?logs=<id>` stream sends per tick (the rest follow on the next ones). */
const STREAM_LOG_BATCH = 200;
/** [A-3] A log line's text in the stream is cut here (the store keeps up to 64 KiB; `GET …/logs` has it all). */
const STREAM_LOG_TEXT = 4 * KIB;
/** Log lines the device page starts with (`GET /api/devices/:id`); the stream brings the rest. */
const DETAIL_LOG_LINES = 100;

export class WebServer {
  readonly #app: FastifyInstance;
  /** [S-2] as for devices: guesses are slowed by the address they come from, never by the account they name. */
  readonly #throttle = new LoginThrottle({ baseDelayMs: 200, maxDelayMs: 5000, forgetAfterMs: 15 * 60_000 });
  readonly #known = new KnownPasswords(1000);
  readonly #routeList: RouteOptions[] = [];
  readonly #streams = new Map<string, number>();
  readonly #otaMax: number;
  readonly #unsubscribe: Array<() => void> = [];
  port = 0;

  constructor(private readonly deps: WebDeps) {
    this.#otaMax = deps.otaMaxFileSize ?? 16 * MIB;
    // A body must arrive within the request timeout: a client trickling bytes cannot hold a request open.
    const settings = { logger: false, bodyLimit: BODY_LIMIT, requestTimeout: 120_000 } as const;
    // [A-12] An HTTPS server has the same Fastify API; its instance type differs only in the raw server's type (never used here).
    this.#app = deps.tls ? (Fastify({ ...settings, https: deps.tls }) as unknown as FastifyInstance) : Fastify(settings);
  }

  /** Every route the server has (method, path pattern, whether it is public): what the route-walking test covers. */
  get routes(): Array<{ method: string; url: string; public: boolean }> {
    return this.#routeList.flatMap((r) => [r.method].flat().map((method) => ({ method, url: r.url, public: r.config?.public === true })));
  }

  async start(host: string, port: number): Promise<number> {
    const app = this.#app;
    app.addHook('onRoute', (route: RouteOptions) => {
      this.#routeList.push(route);
    });
    app.decorateRequest('auth', null);
    await app.register(fastifyCookie);
    // [A-4] one check for every matched route (and for requests that match none).
    app.addHook('onRequest', guard({ web: this.deps.web, hosts: new HostAllowlist(host, this.deps.allowedHosts ?? []), localToken: this.deps.localToken }));
    await app.register(async (assets) => {
      // The dashboard's files are public: the login page is one of them.
      assets.addHook('onRoute', (route: RouteOptions) => void (route.config = { ...route.config, public: true }));
      await assets.register(fastifyStatic, { root: PUBLIC, prefix: '/', index: 'index.html' });
      await assets.register(fastifyStatic, { root: UPLOT, prefix: '/vendor/uplot/', decorateReply: false });
      // The one table of labels and units (src/core/characteristic-display.ts), compiled, for the dashboard.
      await assets.register(fastifyStatic, { root: SHARED, prefix: '/shared/', decorateReply: false, allowedPath: (path) => SHARED_FILES.has(path) });
    });
    app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
      if (error instanceof z.ZodError)
        return reply.code(400).send({
          error: error.issues
            .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
            .join('; ')
            .slice(0, 1000),
        });
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: tooLarge(request) });
      const status = error.statusCode ?? 500;
      if (status >= 500) this.deps.log.error({ err: error }, 'API error');
      // A route's own HttpError was written for the user (a gateway that did not answer); anything else with a 5xx is not.
      const said = status < 500 || error instanceof HttpError;
      return reply.code(status).send({ error: said ? error.message.slice(0, 300) : 'internal error (see the hub log)' });
    });
    this.#routes(app);
    adminRoutes(app, {
      web: this.deps.web,
      accounts: this.deps.accounts,
      externalBroker: this.deps.externalBroker,
      log: this.deps.log,
      disconnect: (name) => this.deps.disconnect(name, { removed: true }),
    });
    queryRoutes(app, this.deps.history.engine);
    if (this.deps.espnow)
      espnowRoutes(app, {
        ...this.deps.espnow,
        accounts: this.deps.accounts,
        registry: this.deps.registry,
        channel: this.deps.channel,
        externalBroker: this.deps.externalBroker,
      });
    matterRoutes(app, () => this.deps.matter?.());
    this.#devicePackage(app);
    this.#keepGivenNames();
    // Anything else under /api is a JSON 404, behind the same check (a stranger learns nothing).
    app.all('/api', async (request, reply) =>
      reply.code(404).send({ error: `no API endpoint ${request.method} ${request.url.slice(0, 100)} (see docs/api.md)` }),
    );
    app.all('/api/*', async (request, reply) =>
      reply.code(404).send({ error: `no API endpoint ${request.method} ${request.url.slice(0, 100)} (see docs/api.md)` }),
    );
    await app.ready();
    // One line per route: log lines are bounded (a long list would be cut), and tests read them all.
    for (const route of this.routes) this.deps.log.debug({ route }, 'web route');
    await app.listen({ host, port });
    const address = app.server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
    return this.port;
  }

  /**
   * A name given in the dashboard (POST /api/devices/:id/name) stays HomeKit's default name when the
   * device sends its own `$name` again (a retained one at each reconnect): the person's choice wins.
   */
  #keepGivenNames(): void {
    const d = this.deps;
    const keep = (device: { id: string; meta: { name?: string } }) => {
      void (async () => {
        const given = (await d.ota.info(device.id)).name;
        if (given && device.meta.name !== given) d.registry.reportMeta(device.id, 'name', given, { live: false });
      })().catch((error: unknown) => d.log.warn({ device: device.id, err: (error as Error).message }, 'cannot read the name given to the device'));
    };
    this.#unsubscribe.push(d.bus.on('device:meta', keep));
  }

  async stop(): Promise<void> {
    for (const undo of this.#unsubscribe.splice(0)) undo();
    await this.#app.close();
  }

  /**
   * [A-7] The device library for `mip`: public (a board or mpremote has no login; the Host allowlist
   * still applies), and only the files ports.json lists, looked up in a table built at start.
   */
  #devicePackage(app: FastifyInstance): void {
    const root = this.deps.deviceLibrary ?? DEVICE_LIBRARY;
    const library = loadDeviceLibrary(root, VERSION);
    if (!library.ok) this.deps.log.warn(`the device library is not served (GET /device/package.json answers 404): ${library.error}`);
    const route = { config: { public: true } };
    const serve = (path: string) => async (request: FastifyRequest, reply: FastifyReply) => {
      const found = library.ok ? servedPath(library.value, path, `${request.protocol}://${request.host}/device/`) : undefined;
      if (!found)
        return reply.code(404).send({
          error: library.ok
            ? 'not a file of the device library (GET /device/package.json lists them)'
            : 'this hub has no device library to serve (see its log)',
        });
      return reply.type(found.type).send(found.body);
    };
    app.get('/device/package.json', route, (request, reply) => serve('package.json')(request, reply));
    app.get<{ Params: { port: string } }>('/device/:port/package.json', route, (request, reply) =>
      serve(`${request.params.port}/package.json`)(request, reply),
    );
    app.get<{ Params: { '*': string } }>('/device/*', route, (request, reply) => serve(request.params['*'])(request, reply));
  }

  #routes(app: FastifyInstance): void {
    const d = this.deps;
    const device = (id: string) => {
      if (!ID.test(id)) throw Object.assign(new Error('not a device id (1-64 letters, digits, _ or -)'), { statusCode: 400 });
      const found = d.registry.get(id);
      if (!found) throw Object.assign(new Error(`no device ${id}`), { statusCode: 404 });
      return found;
    };
    const login = { bodyLimit: LOGIN_BODY_LIMIT, config: { public: true } };
    const max = this.#otaMax;
    const upload = {
      bodyLimit: base64Length(max) + UPLOAD_OVERHEAD,
      config: { tooLarge: `files up to the OTA limit of ${formatSize(max)}, base64-encoded (--ota-max-file-size)` },
    };
    /** [A-6] checks the decoded size from the base64 length, before decoding it. */
    const fits = (label: string, content: string) => {
      const problem = fileSizeProblem(label, Buffer.byteLength(content, 'base64'), max);
      if (problem) throw Object.assign(new Error(problem), { statusCode: 413 });
    };

    // [H-3] For load balancers, Docker's HEALTHCHECK and the standby: which instance this is, nothing secret.
    app.get('/api/health', { config: { public: true } }, async () => ({
      status: 'ok',
      role: d.cluster ? 'active' : 'single',
      ...(d.cluster ? { instance: d.cluster.instanceUrl } : {}),
    }));

    app.get('/api/session', { config: { public: true } }, async (request) => ({ setupNeeded: !(await d.web.hasUsers()), user: request.auth?.user ?? null }));

    app.post('/api/setup', login, async (request, reply) => {
      if (await d.web.hasUsers()) return reply.code(409).send({ error: 'the admin account exists already: log in' });
      const body = credentials.parse(request.body);
      const secret = await hashPassword(body.password);
      // Two first-run setups racing: only the first to finish hashing creates the admin.
      if (await d.web.hasUsers()) return reply.code(409).send({ error: 'the admin account exists already: log in' });
      await d.web.addUser(body.username, secret);
      this.#known.remember(body.username, secret, body.password);
      d.log.info({ user: body.username }, 'dashboard admin account created');
      return this.#login(reply, body.username);
    });

    app.post('/api/login', login, async (request, reply) => {
      const body = credentials
        .pick({ username: true })
        .extend({ password: z.string().min(1, 'required').max(1024) })
        .parse(request.body);
      // A password that already logged in since the hub started gets in at once: guesses for the same
      // name (from anywhere) cannot keep the owner out.
      const known = await d.web.user(body.username);
      if (known && this.#known.matches(body.username, known.secret, body.password)) return this.#login(reply, body.username);
      let ok = false;
      const admitted = await this.#throttle.run(request.ip, async () => {
        // A guesser that hung up while waiting its turn costs no scrypt work (and no penalty either).
        if (request.raw.socket.destroyed) return true;
        const user = await d.web.user(body.username);
        // An unknown name costs the same scrypt work as a known one: timing does not tell which exist.
        const checked = await verifyPassword(body.password, user?.secret ?? (await this.#decoy()));
        ok = user !== undefined && checked;
        if (ok) this.#known.remember(body.username, user!.secret, body.password);
        return ok;
      });
      if (!admitted) return reply.code(429).send({ error: 'too many login attempts from your address at once: wait a moment and try again' });
      if (!ok) {
        d.log.warn({ user: body.username, address: request.ip }, 'dashboard login refused');
        return reply.code(401).send({ error: 'wrong username or password' });
      }
      return this.#login(reply, body.username);
    });

    app.post('/api/logout', { bodyLimit: LOGIN_BODY_LIMIT }, async (request, reply) => {
      const cookie = request.cookies[COOKIE];
      if (cookie) await d.web.endSession(cookie);
      return reply.clearCookie(COOKIE, { path: '/' }).send({ ok: true });
    });

    app.get('/api/devices', async () => deviceViews(d.registry.list(), d));
    app.get<{ Params: { id: string } }>('/api/devices/:id', async (request) => ({
      ...(await deviceView(device(request.params.id), d)),
      jobs: await d.ota.deviceJobs(request.params.id),
      logs: await d.ota.logsAfter(request.params.id, Math.max(0, (await d.ota.lastLogId(request.params.id)) - DETAIL_LOG_LINES), DETAIL_LOG_LINES),
    }));
    app.delete<{ Params: { id: string } }>('/api/devices/:id', async (request) => {
      // A record the hub holds aside (it could not be read) can be removed too.
      if (!d.registry.held().some((h) => h.id === request.params.id)) device(request.params.id);
      await d.removeDevice(request.params.id, request.auth?.key === LOCAL_KEY ? "removed with 'mqttkit device remove'" : 'removed from the dashboard');
      return { removed: request.params.id };
    });

    app.post<{ Params: { id: string } }>('/api/devices/:id/set', async (request, reply) => {
      device(request.params.id);
      const body = setBody.parse(request.body);
      const result = d.registry.requestWrite(
        { deviceId: request.params.id, service: body.service, index: body.index, characteristic: body.characteristic },
        body.value,
      );
      if (!result.ok) return reply.code(result.offline ? 409 : 400).send({ error: result.error });
      return { requested: result.value };
    });

    app.post<{ Params: { id: string } }>('/api/devices/:id/command', async (request, reply) => {
      const refusal = commandRefusal(device(request.params.id)); // [P-23]
      const body = commandBody.parse(request.body);
      if (refusal) return reply.code(409).send({ error: refusal });
      try {
        return { answer: await d.channel.command(request.params.id, body.command, body.timeoutS * 1000) };
      } catch (error) {
        return reply.code(504).send({ error: (error as Error).message });
      }
    });

    // Any MQTT client id (a device, or an admin account such as the conformance checker's); an API token
    // only a device's: a leaked one must not keep knocking an integration's admin login off.
    app.post<{ Params: { id: string } }>('/api/devices/:id/disconnect', async (request, reply) => {
      const { id } = idParams.parse(request.params);
      const account = await d.accounts.get(id);
      // The same answer for an admin's name as for an unknown one: a token learns no admin names here.
      if (request.auth?.key.startsWith('token:') && account?.role !== 'device')
        return reply.code(404).send({ error: `no device account ${id} (an API token disconnects devices only)` });
      // No account any more ('mqttkit device remove' took it): the connection leaves no last will, which
      // would bring the device back.
      d.disconnect(id, { removed: account === undefined });
      return { disconnected: id };
    });
    /** [O-11] `mqttkit device set <id> ota-protocol 1|2|auto`; read at the start of each OTA job. */
    app.post<{ Params: { id: string } }>('/api/devices/:id/ota-protocol', async (request, reply) => {
      const { id } = idParams.parse(request.params);
      const body = otaProtocolBody.parse(request.body);
      if (!d.registry.get(id) && !(await d.accounts.get(id))) return reply.code(404).send({ error: `no device ${id}` });
      await d.ota.updateInfo(id, { otaProtocolSetting: body.value === 'auto' ? undefined : body.value });
      return { device: id, otaProtocol: body.value };
    });

    // A name given here is what the dashboard shows and what HomeKit offers by default, also after the device sends its own `$name` again.
    app.post<{ Params: { id: string } }>('/api/devices/:id/name', async (request, reply) => {
      device(request.params.id);
      const { name: given } = renameBody.parse(request.body);
      const result = d.registry.reportMeta(request.params.id, 'name', given, { live: false });
      if (!result.ok) return reply.code(400).send({ error: result.error });
      await d.ota.updateInfo(request.params.id, { name: given });
      d.bus.emit('device:meta', device(request.params.id)); // the stream shows the new name even when $name was the same
      return { device: request.params.id, name: given };
    });
    app.post<{ Params: { id: string } }>('/api/devices/:id/notes', async (request) => {
      device(request.params.id);
      const { notes } = notesBody.parse(request.body);
      await d.ota.updateInfo(request.params.id, { notes });
      return { device: request.params.id, notes };
    });

    app.get<{ Params: { id: string }; Querystring: { after?: string } }>('/api/devices/:id/logs', async (request) => {
      const { id } = idParams.parse(request.params);
      const { after } = logsQuery.parse(request.query);
      return await d.ota.logsAfter(id, after || Math.max(0, (await d.ota.lastLogId(id)) - 100));
    });

    app.get('/api/pairing', async () => {
      const bridges = d.bridges();
      return {
        setupCode: d.pincode,
        bridges: await Promise.all(
          bridges.map(async (b) => ({
            name: b.name,
            port: b.port,
            username: b.username,
            paired: b.paired,
            accessories: b.accessories,
            setupURI: b.setupURI,
            qrSvg: b.setupURI ? await qrCode(b.setupURI, 'svg') : null,
          })),
        ),
      };
    });

    /** [S-2] The Security page switches the policy for the next connections, until the hub restarts. */
    app.post('/api/registration/policy', async (request, reply) => {
      refuseApiToken(request);
      const { policy } = z.object({ policy: z.enum(REGISTRATION_POLICIES) }).parse(request.body);
      const registration = d.registration?.();
      if (!registration) return reply.code(409).send({ error: 'the hub uses an external broker: its accounts are made with mqttkit device add' });
      registration.setPolicy(policy);
      return { policy, note: `until the hub restarts: start it with --registration ${policy} (or "registration" in config.json) to keep it` };
    });
    app.get('/api/registration', async () => ({
      policy: d.registration?.()?.currentPolicy ?? d.policy,
      accounts: (await d.accounts.list())
        .filter((a) => a.role === 'device')
        .map((a) => ({ id: a.name, status: a.status, passwordSet: a.secret !== null, lastLogin: a.lastLoginAt, address: a.lastAddress })),
    }));
    app.post<{ Params: { id: string } }>('/api/registration/:id/approve', async (request, reply) => {
      idParams.parse(request.params);
      const account = await d.accounts.get(request.params.id);
      if (account?.role !== 'device' || account.status !== 'pending') return reply.code(404).send({ error: `${request.params.id} does not wait for approval` });
      await d.accounts.setStatus(request.params.id, 'active');
      return { approved: request.params.id };
    });
    app.post<{ Params: { id: string } }>('/api/registration/:id/reset', async (request, reply) => {
      idParams.parse(request.params);
      // A device's only: an MQTT admin's password forgotten would let the next login under its name
      // register any password, an every-topic account that outlives the API token which asked.
      if ((await d.accounts.get(request.params.id))?.role !== 'device') return reply.code(404).send({ error: `no device account ${request.params.id}` });
      await d.accounts.setSecret(request.params.id, null);
      d.disconnect(request.params.id);
      return { reset: request.params.id };
    });

    app.get('/api/ota/jobs', async () => await d.ota.jobs(100));
    const number = (text: string, what: string) => {
      const id = Number(text);
      if (!/^\d{1,15}$/.test(text) || id < 1) throw Object.assign(new Error(`'${text.slice(0, 40)}' is not a ${what} number`), { statusCode: 400 });
      return id;
    };
    /** Who asked: the CLI names its user; anyone else is named by their login or token. */
    const asker = (request: FastifyRequest) => {
      const { by } = cancelBody.parse(request.body ?? {});
      return request.auth?.key === LOCAL_KEY && by ? by : `${request.auth?.user ?? 'someone'} (API)`;
    };
    app.get<{ Params: { id: string } }>('/api/ota/jobs/:id', async (request, reply) => {
      const job = await d.ota.job(number(request.params.id, 'job'));
      if (!job) return reply.code(404).send({ error: `there is no job #${request.params.id} (see 'mqttkit ota jobs')` });
      return { ...job, transfers: await d.ota.transfers(job.id) };
    });
    app.post<{ Params: { id: string } }>('/api/ota/jobs/:id/cancel', async (request, reply) => {
      const id = Number(request.params.id);
      if (!/^\d{1,15}$/.test(request.params.id) || id < 1) return reply.code(400).send({ error: `'${request.params.id.slice(0, 40)}' is not a job number` });
      const outcome = await d.cancelJob(id, asker(request));
      const status = { cancelled: 200, finished: 409, unknown: 404 }[outcome.outcome];
      return reply
        .code(status)
        .send(
          outcome.outcome === 'cancelled'
            ? { cancelled: id, message: outcome.message, job: outcome.job }
            : { error: outcome.message, job: outcome.job ?? null },
        );
    });
    // Without OTA nothing would run a new job: refused up front, by the matched route (reading and cancelling still work).
    const otaStarts = new Set(['/api/ota/rollouts', '/api/ota/rollouts/:id/resume', '/api/ota/sync', '/api/ota/push', '/api/ota/firmware']);
    app.addHook('preHandler', async (request, reply) => {
      if (d.otaOff !== undefined && request.method === 'POST' && otaStarts.has(request.routeOptions.url ?? ''))
        return reply.code(409).send({ error: d.otaOff });
    });
    app.post('/api/ota/rollouts', upload, async (request) => {
      const body = rolloutBody.parse(request.body);
      const manifest = this.#saveFiles(body.files, fits, max);
      const id = await d.ota.addRollout({ manifest, pattern: body.pattern, canary: body.canary, concurrency: body.concurrency, devices: body.devices });
      return { rollout: id };
    });
    app.get<{ Params: { id: string } }>('/api/ota/rollouts/:id', async (request, reply) => {
      const rollout = await d.ota.rollout(number(request.params.id, 'rollout'));
      if (!rollout) return reply.code(404).send({ error: `there is no rollout #${request.params.id}` });
      return { ...rollout, jobs: await d.ota.rolloutJobs(rollout.id) };
    });
    /** `mqttkit ota rollout --resume`: a stopped rollout runs again (devices already updated are skipped). */
    app.post<{ Params: { id: string } }>('/api/ota/rollouts/:id/resume', async (request, reply) => {
      const id = number(request.params.id, 'rollout');
      if (!(await d.ota.resumeRollout(id))) return reply.code(404).send({ error: `there is no rollout #${id}` });
      return { rollout: id };
    });
    app.post<{ Params: { id: string } }>('/api/ota/rollouts/:id/cancel', async (request, reply) => {
      const id = number(request.params.id, 'rollout');
      const outcome = await d.cancelRollout(id, asker(request));
      const status = { cancelled: 200, finished: 409, unknown: 404 }[outcome.outcome];
      return reply.code(status).send(outcome.outcome === 'cancelled' ? outcome : { error: outcome.message, ...outcome });
    });
    app.post('/api/ota/sync', upload, async (request) => {
      const body = syncBody.parse(request.body);
      device(body.device);
      for (const f of body.files) fits(f.path, f.content);
      const total = body.files.reduce((n, f) => n + Buffer.byteLength(f.content, 'base64'), 0);
      if (total > max)
        throw Object.assign(
          new Error(`the files are ${formatSize(total)} together, over the OTA limit of ${formatSize(max)} for one sync (--ota-max-file-size)`),
          { statusCode: 413 },
        );
      // Every path is checked before the upload folder exists: a refused sync leaves nothing behind. [O-10]
      for (const f of body.files) {
        const problem = devicePathProblem(f.path);
        if (problem || f.path === FIRMWARE_TARGET) throw Object.assign(new Error(problem ?? 'use /api/ota/firmware for firmware'), { statusCode: 400 });
      }
      const dir = this.#uploadDir();
      try {
        const files: Record<string, string> = {};
        for (const f of body.files) {
          const local = join(dir, `${Object.keys(files).length}.bin`);
          writeFileSync(local, Buffer.from(f.content, 'base64'));
          files[f.path] = local;
        }
        const manifest = join(dir, 'manifest.json');
        writeFileSync(manifest, JSON.stringify({ files }));
        return { job: await d.ota.addJob('sync', body.device, { manifest }) };
      } catch (error) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    });
    app.post('/api/ota/push', upload, async (request) => {
      const body = pushBody.parse(request.body);
      device(body.device);
      fits(body.file.path, body.file.content);
      const problem = devicePathProblem(body.file.path);
      if (problem) throw Object.assign(new Error(problem), { statusCode: 400 });
      const local = join(this.#uploadDir(), 'file.bin');
      writeFileSync(local, Buffer.from(body.file.content, 'base64'));
      return { job: await d.ota.addJob('push', body.device, { file: local, as: body.file.path, reboot: body.reboot }) };
    });
    app.post('/api/ota/firmware', upload, async (request) => {
      const body = firmwareBody.parse(request.body);
      device(body.device);
      fits('the firmware image', body.image);
      const local = join(this.#uploadDir(), 'firmware.bin');
      writeFileSync(local, Buffer.from(body.image, 'base64'));
      return { job: await d.ota.addJob('firmware', body.device, { image: local }) };
    });

    app.get<{ Querystring: Record<string, string | undefined> }>('/api/history', async (request) => {
      const q = z
        .object({
          device: deviceId,
          service: name,
          index: z.coerce.number().int().min(0).max(99).default(0),
          characteristic: name,
          from: instant.optional(),
          to: instant.optional(),
          points: z.coerce.number().int().min(2).max(5000).default(500),
        })
        .parse(request.query);
      const to = q.to ?? Date.now();
      const from = q.from ?? to - 24 * 3_600_000;
      return {
        points: await d.history.series({ deviceId: q.device, service: q.service, index: q.index, characteristic: q.characteristic }, from, to, q.points),
      };
    });

    const metrics = (): HubMetrics => {
      const cpu = process.cpuUsage();
      return {
        uptimeS: Math.round(process.uptime()),
        devices: d.registry.size,
        messages: d.counters(),
        rssBytes: process.memoryUsage().rss,
        heapUsedBytes: process.memoryUsage().heapUsed,
        externalBytes: process.memoryUsage().external + process.memoryUsage().arrayBuffers,
        cpuUserMs: Math.round(cpu.user / 1000),
        cpuSystemMs: Math.round(cpu.system / 1000),
        faults: d.faults(),
      };
    };
    app.get('/api/metrics', async () => metrics());
    /** The hub's own last log lines (Security page); `level`: that level and above. */
    app.get<{ Querystring: Record<string, string | undefined> }>('/api/hub-log', async (request) => {
      const q = z
        .object({
          level: z.enum(Object.keys(LEVEL_RANK) as [string, ...string[]]).default('trace'),
          after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
        })
        .parse(request.query);
      return { lines: hubLog.lines(q.level, q.after).slice(-HUB_LOG_LINES) };
    });
    // The same figures for Prometheus; guarded like every route that is not registered public [A-1] [A-4].
    app.get('/metrics', async (_request, reply) => reply.type(PROMETHEUS_TYPE).send(prometheusText(metrics())));

    // No HEAD twin: a stream answered to HEAD would never end.
    app.get<{ Querystring: Record<string, string | undefined> }>('/api/events', { exposeHeadRoute: false }, (request, reply) => this.#events(request, reply));
  }

  async #login(reply: FastifyReply, user: string) {
    const token = await this.deps.web.createSession(user);
    return reply
      .setCookie(COOKIE, token, { httpOnly: true, secure: this.deps.tls !== undefined, sameSite: 'strict', path: '/', maxAge: 30 * 24 * 3600 })
      .send({ user });
  }

  #decoySecret: Promise<string> | undefined;
  #decoy(): Promise<string> {
    return (this.#decoySecret ??= hashPassword(randomUUID()));
  }

  /**
   * [A-6] [O-10] A rollout's files: sizes and paths checked before anything is written, then saved in
   * an upload folder with a manifest naming them; the manifest's path is returned.
   */
  #saveFiles(files: Array<{ path: string; content: string }>, fits: (label: string, content: string) => void, max: number): string {
    for (const f of files) fits(f.path, f.content);
    const total = files.reduce((n, f) => n + Buffer.byteLength(f.content, 'base64'), 0);
    if (total > max)
      throw Object.assign(
        new Error(`the files are ${formatSize(total)} together, over the OTA limit of ${formatSize(max)} for one sync (--ota-max-file-size)`),
        { statusCode: 413 },
      );
    for (const f of files) {
      const problem = devicePathProblem(f.path);
      if (problem || f.path === FIRMWARE_TARGET)
        throw Object.assign(new Error(problem ?? 'firmware goes with ota firmware, not in a sync'), { statusCode: 400 });
    }
    const dir = this.#uploadDir();
    try {
      const saved: Record<string, string> = {};
      for (const f of files) {
        const local = join(dir, `${Object.keys(saved).length}.bin`);
        writeFileSync(local, Buffer.from(f.content, 'base64'));
        saved[f.path] = local;
      }
      const manifest = join(dir, 'manifest.json');
      writeFileSync(manifest, JSON.stringify({ files: saved }));
      return manifest;
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  #uploadDir(): string {
    const dir = join(this.deps.dataDir, 'uploads', randomUUID());
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** [A-3] Server-Sent Events: device changes as they happen, OTA job progress and device logs. */
  async #events(request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply: FastifyReply): Promise<void> {
    const d = this.deps;
    const auth = request.auth!; // the guard let only holders of a session or token get here
    // `?logs=<device>`: that device's log lines as they arrive (`mqttkit logs -f`).
    const logsOf = request.query.logs;
    if (logsOf !== undefined && !ID.test(logsOf)) {
      void reply.code(400).send({ error: 'logs: not a device id (1-64 letters, digits, _ or -)' });
      return;
    }
    // Read before the stream opens: nothing is missed (the changes meanwhile come with the first flush) and nothing waits on a closed stream.
    let jobs = JSON.stringify(await d.ota.jobs(20));
    // A job queued and ended between two sends (a quick device: a whole push takes ~100 ms) was never
    // unfinished at a send: it goes once, ended, so whoever follows it (the CLI) sees its end.
    const firstNewJob = ((await d.ota.jobs(1))[0]?.id ?? 0) + 1;
    let logAfter = logsOf === undefined ? 0 : await d.ota.lastLogId(logsOf);
    // [A-3] The hub log's cursor: a stream resumes after the last line its reader has (`?hubLogAfter=<id>`,
    // or the browser's Last-Event-ID when it reconnects by itself); each hub-log event carries its id.
    const resume = HUB_LOG_CURSOR.safeParse(request.query.hubLogAfter ?? request.headers['last-event-id']);
    if ((request.query.hubLogAfter !== undefined || request.headers['last-event-id'] !== undefined) && !resume.success) {
      void reply.code(400).send({ error: 'hubLogAfter (or Last-Event-ID): not a hub log line id (a whole number from 0)' });
      return;
    }
    const open = this.#streams.get(auth.key) ?? 0;
    if (open >= MAX_STREAMS_PER_USER) {
      void reply
        .code(429)
        .send({ error: `${auth.user} has ${open} live event streams open, the most one user may hold: close other dashboard tabs or scripts` });
      return;
    }
    this.#streams.set(auth.key, open + 1);
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let closed = false;
    const write = (text: string) => {
      if (closed || out.writableEnded || out.destroyed) return;
      // A client that stops reading is dropped instead of buffered without end (EventSource reconnects).
      if (out.writableLength > STREAM_BACKLOG) out.destroy();
      else out.write(text);
    };
    const send = (event: string, data: unknown) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const changed = new Set<string>();
    let flushTimer: NodeJS.Timeout | undefined;
    /** Something waits to be sent: it goes with the next flush, armed by the first change. */
    const soon = () => {
      if (!closed) flushTimer ??= setTimeout(() => void flush(), STREAM_TICK_MS);
    };
    const queue = (id: string) => {
      changed.add(id);
      soon();
    };
    let lines: DeviceLogLine[] = [];
    let linesDropped = 0;
    /** The hub's own log lines since the last send (at most its ring's size: older ones are in GET /api/hub-log). */
    // Resumed: the lines after the cursor that the ring still holds go first (older ones are gone).
    let hubLines: HubLogLine[] = logsOf === undefined && resume.success && resume.data !== undefined ? hubLog.lines('trace', resume.data) : [];
    /** Every hub log line after this one comes on this stream (told in `hello`). */
    const hubLogAfter = resume.success && resume.data !== undefined ? Math.min(resume.data, hubLog.lastId) : hubLog.lastId;
    const offs = [
      d.bus.on('value', (ref) => queue(ref.deviceId)),
      d.bus.on('device:state', (x) => queue(x.id)),
      d.bus.on('device:added', (x) => queue(x.id)),
      d.bus.on('device:meta', (x) => queue(x.id)),
      d.bus.on('service:added', (x) => queue(x.id)),
      d.bus.on('device:removed', (x) => send('removed', { id: x.id })),
      d.channel.onLine((line) => {
        // A stream that follows one device's log (`?logs=<id>`, the CLI's `logs -f`) reads it from the store
        // below, in order and without gaps; the others (the dashboard) get every device's lines as they come.
        if (logsOf !== undefined) {
          if (line.device === logsOf) soon();
          return;
        }
        // Cut on arrival: what waits for the next tick is at most 100 × 4 KiB per stream.
        if (lines.length < STREAM_LOG_LINES) lines.push({ ...line, text: line.text.slice(0, STREAM_LOG_TEXT) });
        else linesDropped++;
        soon();
      }),
      // A job or rollout queued, started or ended.
      d.ota.onChange(soon),
      // Not for `?logs` streams (the CLI's `logs -f` follows one device).
      hubLog.onLine((line) => {
        if (logsOf !== undefined) return;
        hubLines.push(line);
        if (hubLines.length > HUB_LOG_LINES) hubLines.shift();
        soon();
      }),
    ];
    // [A-3] Each unfinished job and running rollout as it changes, and once more when it ends (the CLI follows one).
    const active = { job: new Map<number, string>(), rollout: new Map<number, string>() };
    const track = (kind: 'job' | 'rollout', now: Array<{ id: number }>, ended: (id: number) => unknown) => {
      const seen = new Map(now.map((x) => [x.id, JSON.stringify(x)]));
      for (const [id, text] of seen) if (active[kind].get(id) !== text) write(`event: ${kind}\ndata: ${text}\n\n`);
      for (const id of active[kind].keys()) if (!seen.has(id)) send(kind, ended(id));
      active[kind] = seen;
    };
    const endSent = new Set<number>();
    const tracked = async () => {
      const unfinished = await d.ota.unfinishedJobs();
      const endedJobs = new Map<number, unknown>();
      for (const id of active.job.keys()) if (!unfinished.some((j) => j.id === id)) endedJobs.set(id, await d.ota.job(id));
      track('job', unfinished, (id) => {
        endSent.add(id);
        return endedJobs.get(id);
      });
      for (const job of await d.ota.jobs(20)) {
        if (job.id < firstNewJob || endSent.has(job.id) || active.job.has(job.id) || !FINISHED.includes(job.state)) continue;
        endSent.add(job.id);
        send('job', job);
      }
      if (endSent.size > 100) for (const id of [...endSent].slice(0, endSent.size - 100)) endSent.delete(id);
      const running: unknown[] = [];
      for (const id of await d.ota.runningRollouts()) running.push(await d.ota.rollout(id));
      const endedRollouts = new Map<number, unknown>();
      for (const id of active.rollout.keys()) endedRollouts.set(id, await d.ota.rollout(id));
      track('rollout', running.filter(Boolean) as Array<{ id: number }>, (id) => endedRollouts.get(id));
    };
    /** One flush at a time: the timer stays set until it is over, so what arrives meanwhile waits for the next. */
    const flush = async () => {
      let more = false;
      try {
        const ids = [...changed];
        changed.clear();
        for (const id of ids) {
          const x = d.registry.get(id);
          if (x) send('device', await deviceView(x, d));
        }
        const sending = lines;
        lines = [];
        for (const line of sending) send('log', line);
        if (linesDropped > 0) send('log-dropped', { lines: linesDropped });
        linesDropped = 0;
        for (const line of hubLines) write(`id: ${line.id}\nevent: hub-log\ndata: ${JSON.stringify(line)}\n\n`);
        hubLines = [];
        const now = JSON.stringify(await d.ota.jobs(20));
        if (now !== jobs) send('jobs', JSON.parse(now));
        jobs = now;
        await tracked();
        if (logsOf !== undefined) {
          const batch = await d.ota.logsAfter(logsOf, logAfter, STREAM_LOG_BATCH);
          for (const line of batch) {
            send('log', line);
            logAfter = line.id;
          }
          more = batch.length === STREAM_LOG_BATCH;
        }
      } catch (error) {
        // A store that fails (a database gone) costs this tick, not the stream: the next one tries again.
        d.log.warn({ err: (error as Error).message }, 'an event stream could not read the store');
        more = true;
      } finally {
        flushTimer = undefined;
      }
      // Job progress is saved without a store event: while a job or rollout is unfinished, look again next tick.
      if (more || changed.size > 0 || lines.length > 0 || hubLines.length > 0 || active.job.size > 0 || active.rollout.size > 0) soon();
    };
    let checks = 0;
    const check = setInterval(() => {
      if (++checks % 3 === 0) write(': keep-alive\n\n');
      // A stream lasts only as long as its session or token: logging out or revoking ends it.
      auth.valid().then(
        (valid) => {
          if (valid) return;
          out.end();
          close();
        },
        () => {}, // the store could not tell: the next check asks again
      );
    }, STREAM_CHECK_MS);
    const close = () => {
      if (closed) return;
      closed = true;
      clearTimeout(flushTimer);
      clearInterval(check);
      offs.forEach((off) => off());
      const left = (this.#streams.get(auth.key) ?? 1) - 1;
      if (left > 0) this.#streams.set(auth.key, left);
      else this.#streams.delete(auth.key);
    };
    out.once('close', close);
    out.on('error', () => {}); // a reset connection is the reader leaving; 'close' follows
    send('hello', { devices: d.registry.size, ...(logsOf !== undefined ? { logAfter } : { hubLogAfter }) });
    if (hubLines.length > 0) soon();
    await tracked();
    if (active.job.size > 0 || active.rollout.size > 0) soon();
  }
}

/** [A-6] The 413 answer: the route's limit, and for uploads what it is made of. */
function tooLarge(request: FastifyRequest): string {
  const route = `${request.method} ${request.routeOptions.url ?? request.url.slice(0, 100)}`;
  const length = Number(request.headers['content-length']);
  const size = Number.isFinite(length) && length > 0 ? ` (${formatSize(length)})` : '';
  const hint = request.routeOptions.config.tooLarge;
  return `the request body${size} is over the limit of ${formatSize(request.routeOptions.bodyLimit)} for ${route}${hint ? `: ${hint}` : ''}`;
}
