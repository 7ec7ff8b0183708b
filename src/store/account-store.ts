/** MQTT accounts (devices and admins). */
import type { AccountRole } from '../security/access-policy.js';
import { durably, type SqlEngine } from './engine/sql-engine.js';

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
  constructor(readonly engine: SqlEngine) {}

  async get(name: string): Promise<Account | undefined> {
    const row = await this.engine.get<Row>('SELECT * FROM accounts WHERE name = ?', [name]);
    return row ? toAccount(row) : undefined;
  }

  /** Where each account last logged in from, in one statement (`GET /api/devices`). */
  async lastAddresses(): Promise<Map<string, string | null>> {
    const rows = await this.engine.all<{ name: string; last_address: string | null }>('SELECT name, last_address FROM accounts');
    return new Map(rows.map((r) => [r.name, r.last_address]));
  }

  async list(): Promise<Account[]> {
    return (await this.engine.all<Row>('SELECT * FROM accounts ORDER BY role, name')).map(toAccount);
  }

  /** Inserts; false when the name exists already (a concurrent registration won the race). */
  async create(name: string, role: AccountRole, status: AccountStatus, secret: string | null): Promise<boolean> {
    const { changes } = await durably(
      this.engine,
      'INSERT INTO accounts (name, role, status, secret, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
      [name, role, status, secret, Date.now()],
    );
    return changes === 1;
  }

  async setSecret(name: string, secret: string | null): Promise<void> {
    await durably(this.engine, 'UPDATE accounts SET secret = ? WHERE name = ?', [secret, name]);
  }

  async setStatus(name: string, status: AccountStatus): Promise<void> {
    await durably(this.engine, 'UPDATE accounts SET status = ? WHERE name = ?', [status, name]);
  }

  async recordLogin(name: string, address: string | undefined): Promise<void> {
    await this.engine.run('UPDATE accounts SET last_login_at = ?, last_address = ? WHERE name = ?', [Date.now(), address ?? null, name]);
  }

  async remove(name: string): Promise<boolean> {
    return (await durably(this.engine, 'DELETE FROM accounts WHERE name = ?', [name])).changes > 0;
  }
}
