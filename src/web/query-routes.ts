/**
 * `GET /api/query` (docs/api.md): the questions people ask of the history and of what devices say about
 * themselves (src/store/queries.ts). Needs a login like every route ([A-1]); its inputs are bounded before
 * any SQL runs ([A-10]): a range holds at most 5,000 buckets, a threshold at most 4 GiB.
 */
import type { FastifyInstance } from 'fastify';
import type { SqlEngine } from '../store/engine/sql-engine.js';
import { queryInput, runQuery, StoreQueries } from '../store/queries.js';

export function queryRoutes(app: FastifyInstance, engine: SqlEngine): void {
  const queries = new StoreQueries(engine);
  // A ZodError answers 400 naming each field (the server's error handler).
  app.get('/api/query', async (request) => runQuery(queries, queryInput.parse(request.query)));
}
