/**
 * Requests the CLI leaves for a running hub in the shared database (the hub polls), and their answers.
 * The database is the one channel both always have, whether the hub runs or not.
 */
import type { Db } from './database.js';

export type HubRequestAction = 'remove-device' | 'disconnect' | 'command' | 'cancel-job' | 'cancel-rollout';

export interface HubRequest {
  id: number;
  action: HubRequestAction;
  target: string;
  argument: string | null;
}

export class RequestStore {
  readonly #s;
  #prunedAt = 0;

  constructor(db: Db) {
    this.#s = {
      add: db.prepare('INSERT INTO hub_requests (action, target, argument, created_at) VALUES (?, ?, ?, ?)'),
      fresh: db.prepare<[], HubRequest>("SELECT id, action, target, argument FROM hub_requests WHERE state = 'new' ORDER BY id"),
      claim: db.prepare("UPDATE hub_requests SET state = 'claimed' WHERE id = ? AND state = 'new'"),
      finish: db.prepare("UPDATE hub_requests SET state = 'done', result = ? WHERE id = ?"),
      get: db.prepare<[number], { state: string; result: string | null }>('SELECT state, result FROM hub_requests WHERE id = ?'),
      prune: db.prepare("DELETE FROM hub_requests WHERE state = 'done' AND created_at < ?"),
    };
  }

  add(action: HubRequestAction, target: string, argument?: string): number {
    return Number(this.#s.add.run(action, target, argument ?? null, Date.now()).lastInsertRowid);
  }

  /** Claims every new request (each exactly once) and hands it out. */
  claimNew(): HubRequest[] {
    if (Date.now() - this.#prunedAt > 60_000) {
      this.#prunedAt = Date.now();
      this.#s.prune.run(Date.now() - 3_600_000);
    }
    return this.#s.fresh.all().filter((r) => this.#s.claim.run(r.id).changes === 1);
  }

  finish(id: number, result: unknown): void {
    this.#s.finish.run(JSON.stringify(result ?? null), id);
  }

  /** The answer, once the hub has handled the request. */
  result(id: number): { done: boolean; result: unknown } {
    const row = this.#s.get.get(id);
    return { done: row?.state === 'done', result: row?.result ? (JSON.parse(row.result) as unknown) : undefined };
  }
}
