/**
 * [H-1] Which of two hubs sharing one PostgreSQL database is active: the one holding a session-level
 * advisory lock. PostgreSQL decides, so two hubs can never both believe they are active for long:
 *
 * - the lock lives as long as the holder's database session: a hub killed outright (kill -9, power cut)
 *   loses its socket, PostgreSQL ends the session at once and a standby's next try takes the lock;
 * - a holder cut off from the database (network, a database restart) cannot prove it still holds the
 *   lock, so after `checkMs` without an answer it steps down on its own; PostgreSQL ends its idle session
 *   after `idle_session_timeout` (set on the session to `sessionTimeoutMs`), which frees the lock for a
 *   standby only after the old holder has stopped acting (stepDownMs < sessionTimeoutMs, by construction);
 * - a standby retries every `retryMs`, so a takeover after a crash takes retryMs plus the start-up of
 *   what the active hub runs.
 *
 * This file knows nothing of what "active" means: the hub starts and stops its features on the events.
 */
import pg from 'pg';
import { checkLockDatabase as checkLockSession, proveSession, tryActiveLock, withDeadline } from '../store/engine/active-lock.js';
import { ACTIVE_LOCK_KEY } from '../store/engine/postgres-engine.js';

export type Role = 'starting' | 'standby' | 'active' | 'stopped';

export interface LeadershipTiming {
  /** A standby tries to take the lock this often. */
  retryMs: number;
  /** The active hub proves its session alive this often… */
  checkMs: number;
  /** …and steps down when a check has no answer within this. */
  stepDownMs: number;
  /** PostgreSQL ends the holder's session after this long without a statement (frees the lock). */
  sessionTimeoutMs: number;
}

/**
 * sessionTimeoutMs leaves room for the hub's own stop after stepping down (clustered-hub.ts: up to 2 s, then
 * the process ends): last answer + checkMs + stepDownMs + 2 s = 6 s < 8 s, when PostgreSQL frees the lock.
 */
export const DEFAULT_LEADERSHIP_TIMING: LeadershipTiming = { retryMs: 1000, checkMs: 1000, stepDownMs: 3000, sessionTimeoutMs: 8000 };

/** The lock's key (the store's migrations look for its holder, [H-6]). */
export { ACTIVE_LOCK_KEY };

/**
 * The server probes the lock's session after 10 s of silence (3 probes, 5 s apart): a holder that vanished
 * without closing its socket (a power cut sends no FIN) frees the lock in ~25 s, not after the OS
 * default of two hours.
 */
const SERVER_KEEPALIVES = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';

export interface LeadershipEvents {
  /** This hub holds the lock: start acting. */
  active(): void | Promise<void>;
  /** This hub lost (or could not prove) the lock: stop acting at once. `why` is for the log. */
  standby(why: string): void | Promise<void>;
}

export class Leadership {
  #role: Role = 'starting';
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastProblem: string | undefined;

  constructor(
    private readonly databaseUrl: string,
    private readonly events: LeadershipEvents,
    private readonly timing: LeadershipTiming = DEFAULT_LEADERSHIP_TIMING,
    private readonly onProblem: (problem: string) => void = () => {},
  ) {
    if (timing.stepDownMs + timing.checkMs >= timing.sessionTimeoutMs) {
      throw new Error('leadership timing: a holder must step down before PostgreSQL frees its lock (stepDownMs + checkMs < sessionTimeoutMs)');
    }
  }

  get role(): Role {
    return this.#role;
  }

  /** Starts trying; resolves after the first try (active or standby), never throws for a database that is down. */
  async start(): Promise<void> {
    await this.#tryTake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const wasActive = this.#role === 'active';
    this.#role = 'stopped';
    // As when stepping down: stop acting, then release the lock.
    if (wasActive) await this.events.standby('stopping');
    await this.#dropClient();
  }

  async #tryTake(): Promise<void> {
    if (this.#stopped) return;
    try {
      const client = await this.#session();
      const locked = await tryActiveLock(client, this.timing.stepDownMs);
      if (this.#stopped) return;
      if (locked) {
        this.#role = 'active';
        this.#lastProblem = undefined;
        // The session proves itself from now on, not once the hub has started: a start longer than the
        // session timeout must not leave the session idle (PostgreSQL would end it and free the lock).
        this.#schedule(() => this.#check(), this.timing.checkMs);
        await this.events.active();
        return;
      }
      this.#role = 'standby';
    } catch (error) {
      this.#report(`cannot reach the database to take the active role: ${messageOf(error)}`);
      await this.#dropClient();
      this.#role = 'standby';
    }
    this.#schedule(() => this.#tryTake(), this.timing.retryMs);
  }

  async #check(): Promise<void> {
    if (this.#stopped) return;
    const client = this.#client;
    try {
      if (!client) throw new Error('no database session');
      // The lock is this session's as long as the session is alive: a statement answered proves it.
      await proveSession(client, this.timing.stepDownMs);
      this.#schedule(() => this.#check(), this.timing.checkMs);
    } catch (error) {
      if (this.#stopped) return;
      await this.#stepDown(`the database did not answer within ${this.timing.stepDownMs} ms (${messageOf(error)})`);
    }
  }

  async #stepDown(why: string): Promise<void> {
    if (this.#role !== 'active') return; // the check and the session's error can both get here
    this.#role = 'standby';
    clearTimeout(this.#timer);
    try {
      // Stop acting first, then let the lock go: never a moment with the lock free and this hub still acting.
      await this.events.standby(why);
    } finally {
      await this.#dropClient();
      this.#schedule(() => this.#tryTake(), this.timing.retryMs);
    }
  }

  async #session(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client({
      connectionString: this.databaseUrl,
      connectionTimeoutMillis: this.timing.stepDownMs,
      keepAlive: true,
      application_name: 'mqttkit (active lock)',
      options: `-c idle_session_timeout=${this.timing.sessionTimeoutMs} ${SERVER_KEEPALIVES}`,
    });
    // A session dying under an active hub: step down now rather than at the next check.
    client.on('error', (error) => {
      if (this.#client !== client) return;
      this.#client = undefined;
      if (this.#role === 'active' && !this.#stopped) {
        clearTimeout(this.#timer);
        void this.#stepDown(`the database session ended (${messageOf(error)})`).catch(() => {});
      }
    });
    this.#client = client;
    try {
      await client.connect();
    } catch (error) {
      this.#client = undefined;
      void client.end().catch(() => {});
      throw error;
    }
    return client;
  }

  async #dropClient(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await withDeadline(client.end(), 1000).catch(() => {});
  }

  #schedule(next: () => Promise<void>, ms: number): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void next().catch((error) => this.#report(messageOf(error))), ms);
  }

  /** Each distinct problem once, not once a second while the database is down. */
  #report(problem: string): void {
    if (problem === this.#lastProblem) return;
    this.#lastProblem = problem;
    this.onProblem(problem);
  }
}

/** [H-5] Whether this database can decide which hub is active (refused by name, with the fix). */
export function checkLockDatabase(databaseUrl: string, timing: LeadershipTiming = DEFAULT_LEADERSHIP_TIMING): Promise<void> {
  return checkLockSession(databaseUrl, timing.sessionTimeoutMs);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * [H-1] A hub on PostgreSQL without `--failover` is the only hub on its database: it takes the same lock
 * at start (a second hub, or a standby, is refused by name) and keeps it on a session of its own. It does
 * not step down when the database goes away: with no standby to take over, stopping would only turn a
 * database outage into a HomeKit one (the store keeps what it could not write, docs/data.md [D-11]).
 * A session lost is taken again when the database is back.
 */
export class ExclusiveLock {
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  private constructor(
    private readonly databaseUrl: string,
    private readonly onProblem: (problem: string) => void,
    private readonly retryMs: number,
  ) {}

  static async take(databaseUrl: string, onProblem: (problem: string) => void, retryMs = 5000): Promise<ExclusiveLock> {
    const lock = new ExclusiveLock(databaseUrl, onProblem, retryMs);
    if (!(await lock.#take()))
      throw new Error(
        'another mqttkit is active on this database: stop it first, or start both with --failover (one active, the other its standby; docs/scaling.md)',
      );
    return lock;
  }

  async release(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    if (client) await withDeadline(client.end(), 1000).catch(() => {});
  }

  async #take(): Promise<boolean> {
    const client = new pg.Client({
      connectionString: this.databaseUrl,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      application_name: 'mqttkit (hub lock)',
    });
    client.on('error', (error) => {
      if (this.#client !== client || this.#stopped) return;
      this.#client = undefined;
      this.onProblem(`the hub's database lock session ended (${messageOf(error)}); taking it again when the database answers`);
      this.#retry();
    });
    await client.connect();
    if (!(await tryActiveLock(client, 5000))) {
      await client.end().catch(() => {});
      return false;
    }
    this.#client = client;
    return true;
  }

  #retry(): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#take().then(
        (taken) => {
          if (!taken) this.onProblem('another mqttkit took this database while the connection was down: two hubs write to it now; stop one');
        },
        () => this.#retry(),
      );
    }, this.retryMs);
    this.#timer.unref();
  }
}
