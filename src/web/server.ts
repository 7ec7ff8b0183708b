/**
 * The web feature: a JSON API (docs/api.md), a live event stream (Server-Sent Events), and the
 * dashboard's static files. Everything but the login page and static assets needs a session cookie
 * or an API token; state changes from a browser must come from the dashboard's own origin.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import { z } from 'zod';
import type { EventBus } from '../core/events.js';
import type { DeviceRegistry } from '../core/registry.js';
import type { BridgeStatus } from '../homekit/homekit-bridges.js';
import type { Logger } from '../log/logger.js';
import type { DeviceChannel } from '../ota/device-channel.js';
import type { CancelOutcome } from '../ota/job-control.js';
import { devicePathProblem, FIRMWARE_TARGET } from '../ota/protocol.js';
import { accountNameProblem } from '../security/access-policy.js';
import { AuthThrottle } from '../security/auth-throttle.js';
import { hashPassword, verifyPassword } from '../security/password-hash.js';
import type { RegistrationPolicy } from '../security/registration.js';
import type { AccountStore } from '../store/account-store.js';
import type { HistoryStore } from '../store/history-store.js';
import type { OtaStore } from '../store/ota-store.js';
import type { WebStore } from '../store/web-store.js';
import { deviceView } from './views.js';

export interface WebDeps {
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
  /** Removes a device the way `mqttkit device remove` does. */
  removeDevice: (id: string) => void;
  /** Message counters of the MQTT side. */
  counters: () => { received: number; applied: number; refused: number };
  /** Faults the hub survived (unhandled rejections, uncaught exceptions, listener errors). */
  faults: () => { unhandledRejections: number; uncaughtExceptions: number; listenerErrors: number };
  /** Ends a queued or running OTA job; `by` names who asked. */
  cancelJob: (id: number, by: string) => CancelOutcome;
}

const COOKIE = 'mqttkit_session';
const PUBLIC = join(dirname(fileURLToPath(import.meta.url)), '../../../src/web/public');
const UPLOT = join(dirname(fileURLToPath(import.meta.url)), '../../../node_modules/uplot/dist');

const credentials = z.object({
  username: z.string().min(1, 'required').max(64).refine((v) => !accountNameProblem(v), 'use 1-64 letters, digits, _ or -'),
  password: z.string().min(10, 'at least 10 characters').max(200),
});
const setBody = z.object({ service: z.string().min(1), index: z.number().int().min(0).max(99).default(0), characteristic: z.string().min(1), value: z.union([z.boolean(), z.number(), z.string()]) });
const commandBody = z.object({ command: z.string().min(1).max(200) });
const upload = z.object({ path: z.string().min(1).max(200), content: z.string().max(16 * 1024 * 1024) });
const syncBody = z.object({ device: z.string().min(1), files: z.array(upload).min(1).max(100) });
const pushBody = z.object({ device: z.string().min(1), file: upload, reboot: z.boolean().default(true) });
const firmwareBody = z.object({ device: z.string().min(1), image: z.string().min(1) });

export class WebServer {
  readonly #app: FastifyInstance;
  readonly #throttle = new AuthThrottle({ baseDelayMs: 200, maxDelayMs: 5000, forgetAfterMs: 15 * 60_000 });
  port = 0;

  constructor(private readonly deps: WebDeps) {
    this.#app = Fastify({ logger: false, bodyLimit: 24 * 1024 * 1024 });
  }

  async start(host: string, port: number): Promise<number> {
    const app = this.#app;
    await app.register(fastifyCookie);
    await app.register(fastifyStatic, { root: PUBLIC, prefix: '/', index: 'index.html' });
    await app.register(fastifyStatic, { root: UPLOT, prefix: '/vendor/uplot/', decorateReply: false });
    app.addHook('onRequest', (request, reply, done) => this.#guard(request, reply, done));
    app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
      if (error instanceof z.ZodError) return reply.code(400).send({ error: error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') });
      const status = error.statusCode ?? 500;
      if (status >= 500) this.deps.log.error({ err: error }, 'API error');
      return reply.code(status).send({ error: status >= 500 ? 'internal error (see the hub log)' : error.message });
    });
    this.#routes(app);
    await app.listen({ host, port });
    const address = app.server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
    return this.port;
  }

  async stop(): Promise<void> {
    await this.#app.close();
  }

  /** sessions and tokens; same-origin state changes. */
  #guard(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    const url = request.url.split('?')[0]!;
    if (!url.startsWith('/api/')) return done();
    const open = ['/api/session', '/api/setup', '/api/login'].includes(url);
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const cookie = request.cookies[COOKIE];
    const user = bearer ? this.deps.web.tokenName(bearer) : cookie ? this.deps.web.sessionUser(cookie) : undefined;
    (request as FastifyRequest & { user?: string }).user = user;
    if (!open && !user) {
      void reply.code(401).send({ error: bearer ? 'invalid API token' : 'log in first (or send an API token: Authorization: Bearer …)' });
      return;
    }
    if (!bearer && !['GET', 'HEAD', 'OPTIONS'].includes(request.method)) {
      const origin = request.headers.origin;
      const expected = `${request.protocol}://${request.headers.host}`;
      if (origin !== expected) {
        void reply.code(403).send({ error: `cross-origin request refused (origin ${origin ?? 'missing'}, expected ${expected})` });
        return;
      }
    }
    done();
  }

  #routes(app: FastifyInstance): void {
    const d = this.deps;
    const device = (id: string) => {
      const found = d.registry.get(id);
      if (!found) throw Object.assign(new Error(`no device ${id}`), { statusCode: 404 });
      return found;
    };

    app.get('/api/session', async (request) => ({ setupNeeded: !d.web.hasUsers(), user: (request as FastifyRequest & { user?: string }).user ?? null }));

    app.post('/api/setup', async (request, reply) => {
      if (d.web.hasUsers()) return reply.code(409).send({ error: 'the admin account exists already: log in' });
      const body = credentials.parse(request.body);
      d.web.addUser(body.username, await hashPassword(body.password));
      d.log.info({ user: body.username }, 'dashboard admin account created');
      return this.#login(reply, body.username);
    });

    app.post('/api/login', async (request, reply) => {
      const body = credentials.pick({ username: true }).extend({ password: z.string().min(1, 'required') }).parse(request.body);
      let ok = false;
      await this.#throttle.run([`web:${body.username}`], async () => {
        const user = d.web.user(body.username);
        ok = user !== undefined && (await verifyPassword(body.password, user.secret));
        return ok;
      }, [`address:${request.ip}`]);
      if (!ok) {
        d.log.warn({ user: body.username, address: request.ip }, 'dashboard login refused');
        return reply.code(401).send({ error: 'wrong username or password' });
      }
      return this.#login(reply, body.username);
    });

    app.post('/api/logout', async (request, reply) => {
      const cookie = request.cookies[COOKIE];
      if (cookie) d.web.endSession(cookie);
      return reply.clearCookie(COOKIE, { path: '/' }).send({ ok: true });
    });

    app.get('/api/devices', async () => d.registry.list().map((x) => deviceView(x, d)));
    app.get<{ Params: { id: string } }>('/api/devices/:id', async (request) => ({ ...deviceView(device(request.params.id), d), jobs: d.ota.deviceJobs(request.params.id) }));
    app.delete<{ Params: { id: string } }>('/api/devices/:id', async (request) => {
      device(request.params.id);
      d.removeDevice(request.params.id);
      return { removed: request.params.id };
    });

    app.post<{ Params: { id: string } }>('/api/devices/:id/set', async (request, reply) => {
      device(request.params.id);
      const body = setBody.parse(request.body);
      const result = d.registry.requestWrite({ deviceId: request.params.id, service: body.service, index: body.index, characteristic: body.characteristic }, body.value);
      if (!result.ok) return reply.code(result.offline ? 409 : 400).send({ error: result.error });
      return { requested: result.value };
    });

    app.post<{ Params: { id: string } }>('/api/devices/:id/command', async (request, reply) => {
      device(request.params.id);
      const body = commandBody.parse(request.body);
      try {
        return { answer: await d.channel.command(request.params.id, body.command, 15_000) };
      } catch (error) {
        return reply.code(504).send({ error: (error as Error).message });
      }
    });

    app.get<{ Params: { id: string }; Querystring: { after?: string } }>('/api/devices/:id/logs', async (request) => d.ota.logsAfter(request.params.id, Number(request.query.after ?? 0) || Math.max(0, d.ota.lastLogId(request.params.id) - 100)));

    app.get('/api/pairing', async () => {
      const bridges = d.bridges();
      return {
        setupCode: d.pincode,
        bridges: await Promise.all(
          bridges.map(async (b) => ({ name: b.name, port: b.port, paired: b.paired, accessories: b.accessories, setupURI: b.setupURI, qrSvg: b.setupURI ? await QRCode.toString(b.setupURI, { type: 'svg', margin: 2 }) : null })),
        ),
      };
    });

    app.get('/api/registration', async () => ({
      policy: d.policy,
      accounts: d.accounts.list().filter((a) => a.role === 'device').map((a) => ({ id: a.name, status: a.status, passwordSet: a.secret !== null, lastLogin: a.lastLoginAt, address: a.lastAddress })),
    }));
    app.post<{ Params: { id: string } }>('/api/registration/:id/approve', async (request, reply) => {
      const account = d.accounts.get(request.params.id);
      if (account?.status !== 'pending') return reply.code(404).send({ error: `${request.params.id} does not wait for approval` });
      d.accounts.setStatus(request.params.id, 'active');
      return { approved: request.params.id };
    });
    app.post<{ Params: { id: string } }>('/api/registration/:id/reset', async (request, reply) => {
      if (!d.accounts.get(request.params.id)) return reply.code(404).send({ error: `no device account ${request.params.id}` });
      d.accounts.setSecret(request.params.id, null);
      d.accounts.request('disconnect', request.params.id);
      return { reset: request.params.id };
    });

    app.get('/api/ota/jobs', async () => d.ota.jobs(100));
    app.post<{ Params: { id: string } }>('/api/ota/jobs/:id/cancel', async (request, reply) => {
      const id = Number(request.params.id);
      if (!/^\d{1,15}$/.test(request.params.id) || id < 1) return reply.code(400).send({ error: `'${request.params.id.slice(0, 40)}' is not a job number` });
      const user = (request as FastifyRequest & { user?: string }).user ?? 'someone';
      const outcome = d.cancelJob(id, `${user} (API)`);
      const status = { cancelled: 200, finished: 409, unknown: 404 }[outcome.outcome];
      return reply.code(status).send(outcome.outcome === 'cancelled' ? { cancelled: id, message: outcome.message, job: outcome.job } : { error: outcome.message, job: outcome.job ?? null });
    });
    app.post('/api/ota/sync', async (request) => {
      const body = syncBody.parse(request.body);
      device(body.device);
      const dir = this.#uploadDir();
      const files: Record<string, string> = {};
      for (const f of body.files) {
        const problem = devicePathProblem(f.path);
        if (problem || f.path === FIRMWARE_TARGET) throw Object.assign(new Error(problem ?? 'use /api/ota/firmware for firmware'), { statusCode: 400 });
        const local = join(dir, `${Object.keys(files).length}.bin`);
        writeFileSync(local, Buffer.from(f.content, 'base64'));
        files[f.path] = local;
      }
      const manifest = join(dir, 'manifest.json');
      writeFileSync(manifest, JSON.stringify({ files }));
      return { job: d.ota.addJob('sync', body.device, { manifest }) };
    });
    app.post('/api/ota/push', async (request) => {
      const body = pushBody.parse(request.body);
      device(body.device);
      const problem = devicePathProblem(body.file.path);
      if (problem) throw Object.assign(new Error(problem), { statusCode: 400 });
      const local = join(this.#uploadDir(), 'file.bin');
      writeFileSync(local, Buffer.from(body.file.content, 'base64'));
      return { job: d.ota.addJob('push', body.device, { file: local, as: body.file.path, reboot: body.reboot }) };
    });
    app.post('/api/ota/firmware', async (request) => {
      const body = firmwareBody.parse(request.body);
      device(body.device);
      const local = join(this.#uploadDir(), 'firmware.bin');
      writeFileSync(local, Buffer.from(body.image, 'base64'));
      return { job: d.ota.addJob('firmware', body.device, { image: local }) };
    });

    app.get<{ Querystring: Record<string, string | undefined> }>('/api/history', async (request) => {
      const q = z
        .object({
          device: z.string().min(1),
          service: z.string().min(1),
          index: z.coerce.number().int().min(0).default(0),
          characteristic: z.string().min(1),
          from: z.coerce.number().optional(),
          to: z.coerce.number().optional(),
          points: z.coerce.number().int().min(2).max(5000).default(500),
        })
        .parse(request.query);
      const to = q.to ?? Date.now();
      const from = q.from ?? to - 24 * 3_600_000;
      return { points: d.history.series({ deviceId: q.device, service: q.service, index: q.index, characteristic: q.characteristic }, from, to, q.points) };
    });

    app.get('/api/metrics', async () => {
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
    });

    app.get('/api/events', (request, reply) => this.#events(request, reply));
  }

  #login(reply: FastifyReply, user: string) {
    const token = this.deps.web.createSession(user);
    return reply.setCookie(COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 30 * 24 * 3600 }).send({ user });
  }

  #uploadDir(): string {
    const dir = join(this.deps.dataDir, 'uploads', randomUUID());
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** Server-Sent Events: device changes as they happen, OTA job progress and device logs. */
  #events(request: FastifyRequest, reply: FastifyReply): void {
    const d = this.deps;
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const changed = new Set<string>();
    const queue = (id: string) => changed.add(id);
    const offs = [
      d.bus.on('value', (ref) => queue(ref.deviceId)),
      d.bus.on('device:state', (x) => queue(x.id)),
      d.bus.on('device:added', (x) => queue(x.id)),
      d.bus.on('device:meta', (x) => queue(x.id)),
      d.bus.on('service:added', (x) => queue(x.id)),
      d.bus.on('device:removed', (x) => send('removed', { id: x.id })),
    ];
    let jobs = JSON.stringify(d.ota.jobs(20));
    let ticks = 0;
    const timer = setInterval(() => {
      for (const id of changed) {
        const x = d.registry.get(id);
        if (x) send('device', deviceView(x, d));
      }
      changed.clear();
      const now = JSON.stringify(d.ota.jobs(20));
      if (now !== jobs) send('jobs', JSON.parse(now));
      jobs = now;
      if (++ticks % 60 === 0) out.write(': keep-alive\n\n');
    }, 250);
    send('hello', { devices: d.registry.size });
    request.raw.on('close', () => {
      clearInterval(timer);
      offs.forEach((off) => off());
    });
  }
}
