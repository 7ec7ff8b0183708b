/**
 * Dashboard accounts, sessions and API tokens. Passwords are scrypt hashes; session cookies and API
 * tokens are long random values stored only as SHA-256 hashes (they carry their own entropy).
 */
import { createHash, randomBytes } from 'node:crypto';
import { durably, type SqlEngine } from './engine/sql-engine.js';

const SESSION_MS = 30 * 24 * 3_600_000;

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

// `user` is a reserved word in PostgreSQL: quoted, which SQLite reads the same.
export class WebStore {
  constructor(readonly engine: SqlEngine) {}

  async hasUsers(): Promise<boolean> {
    return ((await this.engine.get<{ n: number }>('SELECT COUNT(*) AS n FROM web_users'))?.n ?? 0) > 0;
  }

  async user(name: string): Promise<{ name: string; secret: string } | undefined> {
    return this.engine.get<{ name: string; secret: string }>('SELECT name, secret FROM web_users WHERE name = ?', [name]);
  }

  async addUser(name: string, secret: string): Promise<void> {
    await durably(this.engine, 'INSERT INTO web_users (name, secret, created_at) VALUES (?, ?, ?)', [name, secret, Date.now()]);
  }

  async createSession(user: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await this.engine.run('DELETE FROM web_sessions WHERE expires_at <= ?', [Date.now()]);
    await this.engine.run('INSERT INTO web_sessions (token_hash, "user", expires_at) VALUES (?, ?, ?)', [tokenHash(token), user, Date.now() + SESSION_MS]);
    return token;
  }

  async sessionUser(token: string): Promise<string | undefined> {
    return (await this.engine.get<{ user: string }>('SELECT "user" FROM web_sessions WHERE token_hash = ? AND expires_at > ?', [tokenHash(token), Date.now()]))
      ?.user;
  }

  async endSession(token: string): Promise<void> {
    await this.engine.run('DELETE FROM web_sessions WHERE token_hash = ?', [tokenHash(token)]);
  }

  /** Creates an API token; the token itself is shown once and never stored. */
  async createToken(name: string): Promise<string> {
    const token = `mk_${randomBytes(32).toString('base64url')}`;
    await durably(this.engine, 'INSERT INTO api_tokens (token_hash, name, created_at) VALUES (?, ?, ?)', [tokenHash(token), name, Date.now()]);
    return token;
  }

  async tokenName(token: string): Promise<string | undefined> {
    return (await this.engine.get<{ name: string }>('SELECT name FROM api_tokens WHERE token_hash = ?', [tokenHash(token)]))?.name;
  }

  async tokens(): Promise<Array<{ name: string; createdAt: number }>> {
    const rows = await this.engine.all<{ name: string; created_at: number }>('SELECT name, created_at FROM api_tokens ORDER BY created_at');
    return rows.map((t) => ({ name: t.name, createdAt: t.created_at }));
  }

  async removeToken(name: string): Promise<boolean> {
    return (await durably(this.engine, 'DELETE FROM api_tokens WHERE name = ?', [name])).changes > 0;
  }

  async users(): Promise<Array<{ name: string; createdAt: number }>> {
    const rows = await this.engine.all<{ name: string; created_at: number }>('SELECT name, created_at FROM web_users ORDER BY name');
    return rows.map((u) => ({ name: u.name, createdAt: u.created_at }));
  }

  /** Removes a dashboard account and ends its sessions (its open pages are logged out). */
  async removeUser(name: string): Promise<boolean> {
    return this.engine.transaction(
      async (tx) => {
        await tx.run('DELETE FROM web_sessions WHERE "user" = ?', [name]);
        return (await tx.run('DELETE FROM web_users WHERE name = ?', [name])).changes > 0;
      },
      { durable: true },
    );
  }
}
