/**
 * The Security page's API (docs/api.md): API tokens (made, listed, revoked), dashboard accounts (added,
 * listed, removed) and device accounts provisioned ahead of time, each with its secret shown once.
 * Every route here needs a login like any other ([A-1]: none is registered public) and a browser's
 * state change comes from the dashboard's own page ([A-2]); inputs are bounded before work ([A-6]).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isCheckerAccountName } from '../conformance/checker-account.js';
import type { Logger } from '../log/logger.js';
import { accountNameProblem, mqttAccountNameProblem } from '../security/access-policy.js';
import { generatePassword, hashPassword } from '../security/password-hash.js';
import type { AccountStore } from '../store/account-store.js';
import type { WebStore } from '../store/web-store.js';

export interface AdminDeps {
  web: WebStore;
  accounts: AccountStore;
  /** Set with an external broker: device accounts live in Mosquitto's dynamic security, made by the CLI. */
  externalBroker?: boolean;
  /** The hub log, where each security action is written with who did it ([A-11]). */
  log?: Logger;
  /** Drops the broker connection held under this name (a removed admin's). */
  disconnect?: (name: string) => void;
}

const tokenName = z
  .string()
  .min(1, 'required')
  .max(64, 'at most 64 characters')
  .regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . or -');
/** A dashboard account's name and password, as setup, login and the Security page take them. */
export const credentials = z.object({
  username: z
    .string()
    .min(1, 'required')
    .max(64)
    .refine((v) => !accountNameProblem(v), 'use 1-64 letters, digits, _ or -'),
  password: z.string().min(10, 'at least 10 characters').max(200),
});
const deviceBody = z.object({ id: z.string().min(1, 'required').max(64, 'at most 64 characters') });
const adminBody = z.object({ name: z.string().min(1, 'required').max(64, 'at most 64 characters') });

const status = (code: number, message: string) => Object.assign(new Error(message), { statusCode: code });

/**
 * What makes credentials (tokens, dashboard accounts, device accounts) or opens registration is for
 * a person at the dashboard or the CLI on the hub's machine, not for an API token: a token sits in a
 * script or a Prometheus config, and one that leaked must not mint others that outlive its revocation.
 */
export function refuseApiToken(request: FastifyRequest): void {
  if (request.auth?.key.startsWith('token:'))
    throw status(403, "an API token cannot manage tokens, accounts or registration: use the dashboard (logged in) or the mqttkit CLI on the hub's machine");
}

export function adminRoutes(app: FastifyInstance, d: AdminDeps): void {
  if (d.log) auditSecurityActions(app, d.log);
  app.get('/api/tokens', async (request) => {
    refuseApiToken(request);
    return await d.web.tokens();
  });
  app.post('/api/tokens', async (request) => {
    refuseApiToken(request);
    const { name } = z.object({ name: tokenName }).parse(request.body);
    if ((await d.web.tokens()).some((t) => t.name === name)) throw status(409, `a token named ${name} exists already: remove it first or choose another name`);
    return { name, token: await d.web.createToken(name) };
  });
  app.delete<{ Params: { name: string } }>('/api/tokens/:name', async (request) => {
    refuseApiToken(request);
    const name = tokenName.parse(request.params.name);
    if (!(await d.web.removeToken(name))) throw status(404, `no token named ${name}`);
    return { removed: name };
  });

  app.get('/api/users', async (request) => {
    refuseApiToken(request);
    return await d.web.users();
  });
  app.post('/api/users', async (request) => {
    refuseApiToken(request);
    const body = credentials.parse(request.body);
    if (await d.web.user(body.username)) throw status(409, `${body.username} exists already`);
    const secret = await hashPassword(body.password);
    // Looked at again after the hash: two requests for one name both passed the first look.
    if (await d.web.user(body.username)) throw status(409, `${body.username} exists already`);
    await d.web.addUser(body.username, secret);
    return { user: body.username };
  });
  app.delete<{ Params: { name: string } }>('/api/users/:name', async (request) => {
    refuseApiToken(request);
    const name = credentials.shape.username.parse(request.params.name);
    // Nobody locks the hub: the account in use stays (another admin removes it), and so does the last one.
    if (request.auth?.user === name) throw status(409, `you are logged in as ${name}: log in as another account to remove it`);
    if (!(await d.web.user(name))) throw status(404, `no dashboard account ${name}`);
    if ((await d.web.users()).length <= 1) throw status(409, `${name} is the last dashboard account`);
    await d.web.removeUser(name);
    return { removed: name };
  });

  /** `mqttkit device add <id>` from the dashboard: the generated password is in this answer only. */
  app.post('/api/registration/devices', async (request) => {
    refuseApiToken(request);
    const { id } = deviceBody.parse(request.body);
    const problem = mqttAccountNameProblem(id);
    if (problem) throw status(400, `id: ${problem}`);
    if (d.externalBroker) throw status(409, `the hub uses an external broker: add the device there with 'mqttkit device add ${id}'`);
    if (await d.accounts.get(id)) throw status(409, `${id} exists already: reset its password instead`);
    const password = generatePassword();
    if (!(await d.accounts.create(id, 'device', 'active', await hashPassword(password)))) throw status(409, `${id} exists already`);
    return { id, username: id, clientId: id, password };
  });

  /**
   * `mqttkit user add <name> --admin` with a hub running: an MQTT admin account (every topic), made here
   * so it lands in the security log; the generated password is in this answer only.
   */
  app.post('/api/admins', { bodyLimit: 1024 }, async (request) => {
    refuseApiToken(request);
    const { name } = adminBody.parse(request.body);
    const problem = mqttAccountNameProblem(name);
    if (problem) throw status(400, `name: ${problem}`);
    if (isCheckerAccountName(name))
      throw status(400, `name: '${name}' has the form of 'mqttkit conformance''s temporary accounts (removed when the hub starts): choose another name`);
    if (d.externalBroker) throw status(409, `the hub uses an external broker: add the account there with 'mqttkit user add ${name} --admin'`);
    if (await d.accounts.get(name)) throw status(409, `${name} exists already`);
    const password = generatePassword();
    if (!(await d.accounts.create(name, 'admin', 'active', await hashPassword(password)))) throw status(409, `${name} exists already`);
    return { username: name, password };
  });

  /** `mqttkit user remove <name>` with a hub running: the admin account goes and its connection is dropped. */
  app.delete<{ Params: { name: string } }>('/api/admins/:name', async (request) => {
    refuseApiToken(request);
    const { name } = adminBody.parse({ name: request.params.name });
    if ((await d.accounts.get(name))?.role !== 'admin') throw status(404, `no MQTT admin account ${name}`);
    if (d.externalBroker) throw status(409, `the hub uses an external broker: remove the account there with 'mqttkit user remove ${name}'`);
    await d.accounts.remove(name);
    d.disconnect?.(name);
    return { removed: name };
  });
}

/** A field of a request that succeeded (so the route's own schema passed it), bounded and on one line. */
const field = (from: unknown, key: string): string => {
  const value = from && typeof from === 'object' ? (from as Record<string, unknown>)[key] : undefined;
  return String(value ?? '?')
    .replace(/[^\w.@-]/g, '?')
    .slice(0, 64);
};

/**
 * What each security action says in the hub log, by the route Fastify matched. Only names are
 * taken (a token's name, an account's name, a device id), never a body's password or a token's secret.
 */
const SECURITY_ACTIONS: Readonly<Record<string, (r: FastifyRequest) => { action: string; said: string }>> = {
  'POST /api/tokens': (r) => ({ action: 'token-created', said: `API token ${field(r.body, 'name')} created` }),
  'DELETE /api/tokens/:name': (r) => ({ action: 'token-revoked', said: `API token ${field(r.params, 'name')} revoked` }),
  'POST /api/users': (r) => ({ action: 'user-added', said: `dashboard account ${field(r.body, 'username')} added` }),
  'DELETE /api/users/:name': (r) => ({ action: 'user-removed', said: `dashboard account ${field(r.params, 'name')} removed` }),
  'POST /api/registration/policy': (r) => ({ action: 'policy-switched', said: `registration policy switched to ${field(r.body, 'policy')}` }),
  'POST /api/registration/devices': (r) => ({ action: 'device-added', said: `device ${field(r.body, 'id')} added` }),
  'POST /api/admins': (r) => ({ action: 'admin-added', said: `MQTT admin account ${field(r.body, 'name')} added` }),
  'DELETE /api/admins/:name': (r) => ({ action: 'admin-removed', said: `MQTT admin account ${field(r.params, 'name')} removed` }),
  'POST /api/registration/:id/approve': (r) => ({ action: 'device-approved', said: `device ${field(r.params, 'id')} approved` }),
  'POST /api/registration/:id/reset': (r) => ({ action: 'device-reset', said: `device ${field(r.params, 'id')} may register a new password` }),
  'DELETE /api/devices/:id': (r) => ({ action: 'device-removed', said: `device ${field(r.params, 'id')} removed` }),
  'POST /api/espnow/pairings': (r) => ({
    action: 'espnow-paired',
    said: `ESP-NOW peripheral ${field(r.body, 'peripheral')} paired to gateway ${field(r.body, 'gateway')}`,
  }),
  'DELETE /api/espnow/pairings/:peripheral': (r) => ({ action: 'espnow-unpaired', said: `ESP-NOW peripheral ${field(r.params, 'peripheral')} unpaired` }),
};

/** Who acted, as the log names them: a dashboard user, an API token by its name, or the CLI on the hub's machine. */
function actor(request: FastifyRequest): string {
  const key = request.auth?.key ?? '';
  if (key.startsWith('token:')) return `API token ${request.auth?.user}`;
  if (key.startsWith('session:')) return String(request.auth?.user);
  return request.auth?.user ?? 'someone';
}

/**
 * Writes one info line per security action that succeeded, naming who did it: when its answer is ready,
 * not once it was delivered, so a caller that hung up after the change was made does not hide it.
 */
export function auditSecurityActions(app: FastifyInstance, log: Logger): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400) return payload;
    const describe = SECURITY_ACTIONS[`${request.method} ${request.routeOptions.url ?? ''}`];
    if (!describe) return payload;
    const { action, said } = describe(request);
    const by = actor(request);
    log.info({ security: action, by }, `${said} by ${by}`);
    return payload;
  });
}
