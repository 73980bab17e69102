// The per-request context handed to every handler: request/response, the parsed route and query (from
// the one route grammar, http/v2-routes.ts), the registry and the repository (name already validated)
// as core interfaces, the abort signal (fires when the client goes away) and a logger. Handlers reach
// storage only through `repo` (and `registry` for the catalog); who made the request is not their business.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { V2Route } from '../../http/v2-routes.js';
import type { Logger } from '../../log/logger.js';
import type { Registry, Repository } from '../core/repository.js';

export type Route = V2Route;

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  route: Route;
  /** Empty when the URL had no query string. */
  query: URLSearchParams;
  registry: Registry;
  /** Set for every route that has a name. */
  repo: Repository;
  signal: AbortSignal;
  log: Logger;
  /** Whether blob GET may answer with a storage redirect (storage.redirect.disable is false). */
  redirect: boolean;
}

export type Handler = (ctx: Ctx) => Promise<void>;
