/** MQTT accounts (devices and admins). */
import type { AccountRole } from '../security/access-policy.js';
import { type Db, durably } from './database.js';

export type AccountStatus = 'active' | 'pending';

export interface Account {
  name: string;
  role: AccountRole;
  status: AccountStatus;
  /** scrypt hash; null when the next password presented registers (new or reset). */
  secret: string | null;
  createdAt: number;
  lastLoginAt: number | null;
  lastAddress: string | null;
}

interface Row {
  name: string;
  role: AccountRole;
  status: AccountStatus;
  secret: string | null;
  created_at: number;
  last_login_at: number | null;
  last_address: string | null;
}

const toAccount = (r: Row): Account => ({
  name: r.name,
  role: r.role,
  status: r.status,
  secret: r.secret,
  createdAt: r.created_at,
  lastLoginAt: r.last_login_at,
  lastAddress: r.last_address,
});

/** Account changes are on disk before a device or person is told they happened ([D-2]); logins are not. */
export class AccountStore {
  readonly #s;
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
    this.#s = {
      get: db.prepare<[string], Row>('SELECT * FROM accounts WHERE name = ?'),
      list: db.prepare<[], Row>('SELECT * FROM accounts ORDER BY role, name'),
      insert: db.prepare('INSERT INTO accounts (name, role, status, secret, created_at) VALUES (?, ?, ?, ?, ?)'),
      setSecret: db.prepare('UPDATE accounts SET secret = ? WHERE name = ?'),
      setStatus: db.prepare('UPDATE accounts SET status = ? WHERE name = ?'),
      login: db.prepare('UPDATE accounts SET last_login_at = ?, last_address = ? WHERE name = ?'),
      remove: db.prepare('DELETE FROM accounts WHERE name = ?'),
    };
  }

  get(name: string): Account | undefined {
    const row = this.#s.get.get(name);
    return row ? toAccount(row) : undefined;
  }

  list(): Account[] {
    return this.#s.list.all().map(toAccount);
  }

  /** Inserts; false when the name exists already (a concurrent registration won the race). */
  create(name: string, role: AccountRole, status: AccountStatus, secret: string | null): boolean {
    try {
      durably(this.#db, () => this.#s.insert.run(name, role, status, secret, Date.now()));
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return false;
      throw error;
    }
  }

  setSecret(name: string, secret: string | null): void {
    durably(this.#db, () => this.#s.setSecret.run(secret, name));
  }

  setStatus(name: string, status: AccountStatus): void {
    durably(this.#db, () => this.#s.setStatus.run(status, name));
  }

  recordLogin(name: string, address: string | undefined): void {
    this.#s.login.run(Date.now(), address ?? null, name);
  }

  remove(name: string): boolean {
    return durably(this.#db, () => this.#s.remove.run(name).changes > 0);
  }
}
