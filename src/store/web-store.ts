/**
 * Dashboard accounts, sessions and API tokens. Passwords are scrypt hashes; session cookies and API
 * tokens are long random values stored only as SHA-256 hashes (they carry their own entropy).
 */
import { createHash, randomBytes } from 'node:crypto';
import { type Db, durably } from './database.js';

const SESSION_MS = 30 * 24 * 3_600_000;

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export class WebStore {
  readonly #s;
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
    this.#s = {
      users: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM web_users'),
      user: db.prepare<[string], { name: string; secret: string }>('SELECT name, secret FROM web_users WHERE name = ?'),
      addUser: db.prepare('INSERT INTO web_users (name, secret, created_at) VALUES (?, ?, ?)'),
      addSession: db.prepare('INSERT INTO web_sessions (token_hash, user, expires_at) VALUES (?, ?, ?)'),
      session: db.prepare<[string, number], { user: string }>('SELECT user FROM web_sessions WHERE token_hash = ? AND expires_at > ?'),
      dropSession: db.prepare('DELETE FROM web_sessions WHERE token_hash = ?'),
      pruneSessions: db.prepare('DELETE FROM web_sessions WHERE expires_at <= ?'),
      addToken: db.prepare('INSERT INTO api_tokens (token_hash, name, created_at) VALUES (?, ?, ?)'),
      token: db.prepare<[string], { name: string }>('SELECT name FROM api_tokens WHERE token_hash = ?'),
      tokens: db.prepare<[], { name: string; created_at: number }>('SELECT name, created_at FROM api_tokens ORDER BY created_at'),
      dropToken: db.prepare('DELETE FROM api_tokens WHERE name = ?'),
      listUsers: db.prepare<[], { name: string; created_at: number }>('SELECT name, created_at FROM web_users ORDER BY name'),
      dropUser: db.prepare('DELETE FROM web_users WHERE name = ?'),
      dropUserSessions: db.prepare('DELETE FROM web_sessions WHERE user = ?'),
    };
  }

  hasUsers(): boolean {
    return (this.#s.users.get()?.n ?? 0) > 0;
  }

  user(name: string): { name: string; secret: string } | undefined {
    return this.#s.user.get(name);
  }

  addUser(name: string, secret: string): void {
    durably(this.#db, () => this.#s.addUser.run(name, secret, Date.now()));
  }

  createSession(user: string): string {
    const token = randomBytes(32).toString('base64url');
    this.#s.pruneSessions.run(Date.now());
    this.#s.addSession.run(tokenHash(token), user, Date.now() + SESSION_MS);
    return token;
  }

  sessionUser(token: string): string | undefined {
    return this.#s.session.get(tokenHash(token), Date.now())?.user;
  }

  endSession(token: string): void {
    this.#s.dropSession.run(tokenHash(token));
  }

  /** Creates an API token; the token itself is shown once and never stored. */
  createToken(name: string): string {
    const token = `mk_${randomBytes(32).toString('base64url')}`;
    durably(this.#db, () => this.#s.addToken.run(tokenHash(token), name, Date.now()));
    return token;
  }

  tokenName(token: string): string | undefined {
    return this.#s.token.get(tokenHash(token))?.name;
  }

  tokens(): Array<{ name: string; createdAt: number }> {
    return this.#s.tokens.all().map((t) => ({ name: t.name, createdAt: t.created_at }));
  }

  removeToken(name: string): boolean {
    return durably(this.#db, () => this.#s.dropToken.run(name).changes > 0);
  }

  users(): Array<{ name: string; createdAt: number }> {
    return this.#s.listUsers.all().map((u) => ({ name: u.name, createdAt: u.created_at }));
  }

  /** Removes a dashboard account and ends its sessions (its open pages are logged out). */
  removeUser(name: string): boolean {
    return durably(this.#db, () => {
      this.#s.dropUserSessions.run(name);
      return this.#s.dropUser.run(name).changes > 0;
    });
  }
}
