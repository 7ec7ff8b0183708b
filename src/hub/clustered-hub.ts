/**
 * [H-3] A hub on a shared PostgreSQL: active or standby, decided by the lock ([H-1]). The standby runs no
 * hub at all, only a small web server that says it is the standby and sends people to the active one.
 * Taking the active role: HomeKit's storage from the database ([H-2]), then the hub starts as any hub
 * does, from the database (devices, AIDs, jobs, pairings). Losing it: the hub stops at once (bridges
 * unpublished, OTA stopped) and the standby server comes back.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import { z } from 'zod';
import { parseJson } from '../core/json.js';
import type { Logger } from '../log/logger.js';
import { checkedSchemaVersion, PostgresEngine } from '../store/engine/postgres-engine.js';
import { useHapFileStorage } from '../store/hap-storage.js';
import { ReplicatedHapStorage } from '../store/hap-storage-replica.js';
import { StateStore } from '../store/state-store.js';
import type { Faults } from './faults.js';
import { Hub, type HubOptions } from './hub.js';
import { checkLockDatabase, DEFAULT_LEADERSHIP_TIMING, Leadership, type LeadershipTiming } from './leadership.js';

/** Where the active instance says it can be reached (the standby's redirect target). */
export const ACTIVE_INSTANCE_SETTING = 'cluster.active';

/** A hub that left the active role stops within this, or its process ends (within the lock's timing, [H-1]). */
const STOP_WHEN_DEMOTED_MS = 2000;

/** The standby's web server never waits longer than this on the database for the active instance's address. */
const READ_ACTIVE_MS = 1000;

// `id` tells two instances apart that announce the same URL ([H-3]); records of older versions lack it.
const activeInstance = z.object({ url: z.string().url(), since: z.number(), pid: z.number(), id: z.string().max(64).optional() });
export type ActiveInstance = z.output<typeof activeInstance>;

export interface ClusterEvents {
  /** This process's hub is running (the banner goes out here). */
  active(hub: Hub): void | Promise<void>;
  /** This process waits; `why` says what happened (for the log). */
  standby(why: string): void | Promise<void>;
  /** The hub could not start on taking the role: the process should end, so the other instance can take over. */
  failed(error: Error): void;
  /**
   * [H-1] The hub left the active role but could not stop in time: end the process now, without a graceful
   * stop (that would wait on the same unreachable database while the bridges stay up). Default: failed().
   */
  abandon?(why: string): void;
}

export class ClusteredHub {
  #hub: Hub | undefined;
  #standbyServer: FastifyInstance | undefined;
  #transition: Promise<void> = Promise.resolve();
  #stopped = false;
  /** This process among the cluster's instances (the URL alone may be shared by mistake: two machines of one name). */
  readonly #id = randomUUID();
  #collisionSaid = false;

  private constructor(
    private readonly options: HubOptions & { databaseUrl: string; cluster: { instanceUrl: string } },
    private readonly log: Logger,
    private readonly faults: Faults,
    private readonly events: ClusterEvents,
    private readonly engine: PostgresEngine,
    private readonly pool: pg.Pool,
    private readonly storage: ReplicatedHapStorage,
    private readonly leadership: Leadership,
  ) {}

  static async start(
    options: HubOptions & { databaseUrl: string; cluster: { instanceUrl: string } },
    log: Logger,
    faults: Faults,
    events: ClusterEvents,
    timing: LeadershipTiming = DEFAULT_LEADERSHIP_TIMING,
  ): Promise<ClusteredHub> {
    // [H-1] The lock is freed only after a cut-off hub has stopped acting, its stop included (which may wait
    // out STOP_WHEN_DEMOTED_MS on the unreachable database before the process ends).
    if (timing.checkMs + timing.stepDownMs + STOP_WHEN_DEMOTED_MS >= timing.sessionTimeoutMs)
      throw new Error('leadership timing: a demoted hub must have stopped before PostgreSQL frees its lock (checkMs + stepDownMs + 2 s < sessionTimeoutMs)');
    const clusterLog = log.child({ part: 'cluster' });
    const engine = await openWaiting(options.databaseUrl, clusterLog);
    try {
      // [H-5] A database that cannot hold the lock as [H-1] needs is refused now, not found out in an outage.
      await checkLockDatabase(options.databaseUrl, timing);
    } catch (error) {
      await engine.close().catch(() => {});
      throw error;
    }
    // Every statement bounded: a database that accepts connections but never answers must not hold a takeover.
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 2, connectionTimeoutMillis: 5000, query_timeout: 10_000 });
    pool.on('error', (error) => clusterLog.warn(`PostgreSQL connection for HomeKit's storage lost (${error.message}); the next write reconnects`));
    const storage = useHapFileStorage(
      join(options.dataDir, 'homekit'),
      (dir) => new ReplicatedHapStorage(dir, pool, (problem) => clusterLog.warn(problem)),
    ) as ReplicatedHapStorage;
    let self: ClusteredHub | undefined;
    const leadership = new Leadership(
      options.databaseUrl,
      {
        active: () => self?.queueStep(() => self!.becomeActive()),
        standby: (why) => self?.queueStep(() => self!.becomeStandby(why)),
      },
      timing,
      (problem) => clusterLog.warn(problem),
    );
    self = new ClusteredHub(options, clusterLog, faults, events, engine, pool, storage, leadership);
    await self.#serveStandby();
    await leadership.start();
    if (leadership.role === 'standby') await events.standby('another instance holds the active role');
    return self;
  }

  get role(): 'active' | 'standby' {
    return this.#hub ? 'active' : 'standby';
  }

  get hub(): Hub | undefined {
    return this.#hub;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#transition;
    // While the lock is still held: stop acting, then HomeKit's last writes to the database, then the lock.
    const hub = this.#hub;
    this.#hub = undefined;
    await hub?.stop();
    await Promise.race([this.storage.flush(), new Promise((r) => setTimeout(r, 2000).unref())]);
    const lost = this.storage.close();
    if (lost > 0) this.log.warn(`${lost} HomeKit storage writes did not reach the database before stopping`);
    await this.leadership.stop();
    await this.#transition;
    await this.#standbyServer?.close();
    await this.pool.end().catch(() => {});
    await this.engine.close();
  }

  /** Role changes one after another, never interleaved (a loss during a start waits for the start). */
  private queueStep(step: () => Promise<void>): Promise<void> {
    this.#transition = this.#transition.then(step, step).catch((error: unknown) => this.log.error({ err: error }, 'cluster role change failed'));
    return this.#transition;
  }

  private async becomeActive(): Promise<void> {
    if (this.#stopped || this.#hub) return;
    const started = Date.now();
    await this.#standbyServer?.close();
    this.#standbyServer = undefined;
    try {
      // [H-6] Only the lock holder migrates: no older hub can be running on the schema now.
      await this.engine.migrate(true);
      const { restored, seeded } = await this.storage.takeOver();
      this.log.info(seeded ? `HomeKit storage copied to the database (${seeded} files)` : `HomeKit storage taken from the database (${restored} files)`);
      this.#hub = await Hub.start(this.options, this.log, this.faults);
    } catch (error) {
      this.log.fatal(`took the active role but cannot start: ${error instanceof Error ? error.message : String(error)}`);
      this.events.failed(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    const active: ActiveInstance = { url: this.options.cluster.instanceUrl, since: Date.now(), pid: process.pid, id: this.#id };
    await new StateStore(this.engine).setSetting(ACTIVE_INSTANCE_SETTING, JSON.stringify(active)).catch(() => {});
    this.log.info({ ms: Date.now() - started }, 'this instance is active');
    await this.events.active(this.#hub);
  }

  private async becomeStandby(why: string): Promise<void> {
    const hub = this.#hub;
    this.#hub = undefined;
    if (hub) {
      this.log.warn(`left the active role: ${why}`);
      // Writes HomeKit made while this hub could not reach the database are not the cluster's any more:
      // the other hub may pair or unpair meanwhile, and a late copy would overwrite its rows.
      const dropped = this.storage.discard();
      if (dropped > 0) this.log.warn(`${dropped} HomeKit storage writes never reached the database and are dropped`);
      // A stop that waits on the unreachable database (its last batch) must not keep the bridges up while
      // the other hub takes over: past the deadline the process ends (a service manager starts it again).
      const stopped = await Promise.race([hub.stop().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), STOP_WHEN_DEMOTED_MS).unref())]);
      if (!stopped) {
        this.log.fatal(`did not stop within ${STOP_WHEN_DEMOTED_MS} ms of leaving the active role: ending the process, so only one hub acts`);
        if (this.events.abandon) this.events.abandon('did not stop in time after leaving the active role');
        else this.events.failed(new Error('did not stop in time after leaving the active role'));
        return;
      }
    }
    if (this.#stopped) return;
    await this.#serveStandby();
    await this.events.standby(why);
  }

  /** The standby's web server: health says standby; everything else goes to the active instance. */
  async #serveStandby(): Promise<void> {
    if (this.options.httpPort === -1 || this.#standbyServer) return;
    const app = Fastify({ logger: false, bodyLimit: 1024 });
    // One database read a second at most, however often strangers ask.
    let known: { at: number; value: Promise<ActiveInstance | undefined> } | undefined;
    const active = (): Promise<ActiveInstance | undefined> => {
      if (!known || Date.now() - known.at > 1000) known = { at: Date.now(), value: readActive() };
      return known.value;
    };
    const readActive = async (): Promise<ActiveInstance | undefined> => {
      try {
        // Bounded: a database that does not answer must not hold the health answer (or a redirect) for a minute.
        const text = await Promise.race([
          new StateStore(this.engine).getSetting(ACTIVE_INSTANCE_SETTING),
          new Promise<undefined>((r) => setTimeout(() => r(undefined), READ_ACTIVE_MS).unref()),
        ]);
        if (!text) return undefined;
        const parsed = parseJson(text, activeInstance);
        if (!parsed.ok) return undefined;
        this.#checkCollision(parsed.value);
        return parsed.value;
      } catch {
        return undefined;
      }
    };
    app.get('/api/health', async () => {
      const now = await active();
      return {
        status: 'standby',
        role: 'standby',
        instance: this.options.cluster.instanceUrl,
        ...(now ? { active: now.url } : {}),
        ...(now && this.#collides(now) ? { problem: this.#collisionMessage() } : {}),
      };
    });
    app.setNotFoundHandler(async (request, reply) => {
      const now = await active();
      if (now && this.#collides(now)) return reply.code(503).send({ error: this.#collisionMessage() });
      if (now && now.url !== this.options.cluster.instanceUrl) {
        const target = sameOriginTarget(request.url, now.url);
        return reply.redirect(target, 307);
      }
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: 'this mqttkit is the standby and no active instance is known yet: try again in a few seconds' });
    });
    await app.listen({ host: this.options.httpHost, port: this.options.httpPort });
    this.#standbyServer = app;
    // Said at once, not only when someone asks: the collision makes the redirect useless.
    void active();
  }

  /** [H-3] Another instance (not this process) announces this instance's own address. */
  #collides(now: ActiveInstance): boolean {
    return now.url === this.options.cluster.instanceUrl && now.id !== undefined && now.id !== this.#id;
  }

  #collisionMessage(): string {
    return `the active instance announces the same address as this one (${this.options.cluster.instanceUrl}), so this standby cannot send people to it: give each machine its own --instance-url (an address people reach that machine at, e.g. http://<its IP address>:<port>)`;
  }

  #checkCollision(now: ActiveInstance): void {
    if (this.#collisionSaid || !this.#collides(now)) return;
    this.#collisionSaid = true;
    this.log.warn(this.#collisionMessage());
  }
}

/**
 * [H-3] Where the standby sends a request: the same path on the active instance, never another host. A
 * path a browser reads as a host (`//evil`, `/\\evil`) goes to the active instance's root instead.
 */
export function sameOriginTarget(requestUrl: string, activeUrl: string): string {
  const base = new URL(activeUrl);
  const path = requestUrl.startsWith('/') && !requestUrl.startsWith('//') && !requestUrl.includes('\\') ? requestUrl : '/';
  const target = new URL(path, base);
  return target.origin === base.origin ? target.toString() : new URL('/', base).toString();
}

/**
 * [H-3] A database that is down when the hubs boot (the whole house lost power, PostgreSQL is slower to
 * come back): wait for it, saying why once, instead of ending the process.
 */
async function openWaiting(databaseUrl: string, log: Logger): Promise<PostgresEngine> {
  let said = false;
  for (;;) {
    try {
      // [H-6] Connected, not migrated: the schema changes only under the active lock (becomeActive).
      const engine = await PostgresEngine.connect(databaseUrl, { onError: (message) => log.warn(message) });
      try {
        const { version, target } = await checkedSchemaVersion(engine);
        if (version > 0 && version < target)
          log.info(`the database's schema is version ${version}, this mqttkit's ${target}: it is migrated when this instance takes the active role`);
      } catch (error) {
        await engine.close().catch(() => {});
        throw error;
      }
      return engine;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Only a server not there yet is waited for; a refused login or a newer schema needs a person.
      if (!/^cannot reach PostgreSQL/.test(message)) throw error;
      if (!said) log.warn(`waiting for the database: ${message}`);
      said = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
