// The per-request context handed to every handler: request/response, parsed route and query, the
// repository (name already validated), the abort signal (fires when the client goes away) and a logger.
// Also the request's actor: whoever authenticated it (the gateway) records the user with
// setRequestActor, and notification events read it (actor.name); the registry never authenticates.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../log/logger.js';
import type { Registry } from '../core/registry.js';
import type { Repository } from '../core/repository.js';
import type { Action, TargetInfo } from '../notify/events.js';

export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; ref: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploadStart'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string };

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
  /** Whether blob GET/HEAD may answer with a driver redirect (storage.redirect.disable is false). */
  redirect: boolean;
  /** Records a notification event (resolves once journaled); absent when notifications are off. */
  notify?: (action: Action, target: TargetInfo) => Promise<void>;
}

export type Handler = (ctx: Ctx) => Promise<void>;

const actors = new WeakMap<IncomingMessage, string>();

/** Records the authenticated user of `req` (called by the gateway's auth step, before dispatch). */
export function setRequestActor(req: IncomingMessage, user: string): void {
  actors.set(req, user);
}

/** The user recorded for `req`; undefined for anonymous requests. */
export function requestActor(req: IncomingMessage): string | undefined {
  return actors.get(req);
}
