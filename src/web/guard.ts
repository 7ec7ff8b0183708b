/**
 * The one access check every request passes ([A-4]): it runs for the route Fastify matched (after
 * percent-decoding), never for a spelling of the URL, so `/%61pi/pairing` meets the same rules as
 * `/api/pairing`. A route is protected unless it says `config: { public: true }` where it is
 * registered (the login endpoints and the dashboard's static files do); requests that match no route
 * are protected too.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebStore } from '../store/web-store.js';
import type { HostAllowlist } from './allowed-hosts.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without a session or token (Host and same-origin rules still apply). */
    public?: boolean;
    /** Said in the 413 answer when the body is over the route's limit. */
    tooLarge?: string;
  }
  interface FastifyRequest {
    auth: Auth | null;
  }
}

export interface Auth {
  user: string;
  /** Who holds the credential, for per-user limits: `session:<user>` or `token:<name>`. */
  key: string;
  /** Whether the session or token is still valid (a stream checks it again while it runs). */
  valid(): Promise<boolean>;
}

export const SESSION_COOKIE = 'mqttkit_session';
/** Session cookies and tokens are 43-46 characters; anything much longer is not one (and is not hashed). */
const MAX_CREDENTIAL = 256;
const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS'];

/** Who holds the hub's local token (the CLI on the data dir's machine, docs/api.md ). */
export const LOCAL_USER = 'mqttkit-cli';
export const LOCAL_KEY = 'local:cli';

const sameSecret = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export async function authenticate(request: FastifyRequest, web: WebStore, localToken?: string): Promise<Auth | null> {
  const bearer = /^Bearer (\S{1,256})$/.exec(request.headers.authorization ?? '')?.[1];
  // the hub's local token (a new one each start) is held in memory, not in the token table.
  if (bearer && localToken && sameSecret(bearer, localToken)) return { user: LOCAL_USER, key: LOCAL_KEY, valid: async () => true };
  if (bearer) {
    const name = await web.tokenName(bearer);
    return name === undefined ? null : { user: name, key: `token:${name}`, valid: async () => (await web.tokenName(bearer)) === name };
  }
  const cookie = request.cookies[SESSION_COOKIE];
  if (!cookie || cookie.length > MAX_CREDENTIAL) return null;
  const user = await web.sessionUser(cookie);
  return user === undefined ? null : { user, key: `session:${user}`, valid: async () => (await web.sessionUser(cookie)) === user };
}

export function guard(deps: { web: WebStore; hosts: HostAllowlist; localToken?: string | undefined }) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    // a name the hub does not serve is a DNS-rebinding page (or a proxy the owner has to name).
    const host = request.headers.host;
    if (!deps.hosts.allows(host)) {
      const shown = (host ?? '').slice(0, 100);
      const hint = /^[\w.:[\]-]+$/.test(shown) ? shown.replace(/:\d+$/, '') : '<name>';
      await reply.code(403).send({
        error: `Host '${shown || 'missing'}' is not a name of this hub (a guard against DNS rebinding): open it by its address, or add the name with --http-allowed-hosts ${hint} (or MQTTKIT_HTTP_ALLOWED_HOSTS, or "httpAllowedHosts" in config.json)`,
      });
      return reply;
    }
    request.auth = await authenticate(request, deps.web, deps.localToken);
    // a session or an API token, unless the matched route is public.
    if (!request.auth && request.routeOptions.config.public !== true) {
      const bearer = /^Bearer /.test(request.headers.authorization ?? '');
      await reply.code(401).send({ error: bearer ? 'invalid API token' : 'log in first (or send an API token: Authorization: Bearer …)' });
      return reply;
    }
    // a state change carried by the browser's cookie must come from the dashboard's own page.
    // A token is sent by a script, never added by a browser on its own, so it needs no Origin.
    if (!request.auth?.key.startsWith('token:') && request.auth?.key !== LOCAL_KEY && !SAFE_METHODS.includes(request.method)) {
      const origin = request.headers.origin;
      const expected = `${request.protocol}://${host}`;
      if (origin !== expected) {
        await reply.code(403).send({ error: `cross-origin request refused (origin ${(origin ?? 'missing').slice(0, 100)}, expected ${expected})` });
        return reply;
      }
    }
  };
}
