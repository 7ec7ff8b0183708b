/**
 * [S-2] Logins between their account check and aedes registering the client. Closing a client id's
 * connection (its account removed or reset, a gateway's rights changed) reaches only a registered
 * client; a login that read the account before the change and finishes after it would connect with the
 * old rights — a removed device back on the broker, a reset one on its old password. Such a login is
 * marked here, refused if its check has not answered yet, and closed once aedes registers it.
 */
export class LoginsInFlight<Client extends object> {
  readonly #byId = new Map<string, Set<Client>>();
  readonly #revoked = new WeakSet<Client>();

  /** A login's check starts. */
  begin(id: string, client: Client): void {
    const clients = this.#byId.get(id);
    if (clients) clients.add(client);
    else this.#byId.set(id, new Set([client]));
  }

  /** The login is registered, refused, or its connection closed: no longer in flight. */
  end(id: string, client: Client): void {
    const clients = this.#byId.get(id);
    if (!clients?.delete(client)) return;
    if (clients.size === 0) this.#byId.delete(id);
  }

  /** The account of `id` changed: every login of it in flight now must not complete. */
  revoke(id: string): void {
    for (const client of this.#byId.get(id) ?? []) this.#revoked.add(client);
  }

  revoked(client: Client): boolean {
    return this.#revoked.has(client);
  }

  /** Logins in flight (for tests and bounds: it never outgrows the open connections). */
  get size(): number {
    let n = 0;
    for (const clients of this.#byId.values()) n += clients.size;
    return n;
  }
}
