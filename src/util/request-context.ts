// Who and where of the request being handled, for code that only holds a module logger or a repository
// (storage drivers, notification events): the gateway (or the registry router, when it runs alone) runs
// each request inside runWithRequest, the root logger's mixin adds `reqId`, and notification events read
// the actor and client facts. A leaf module: it carries facts, never changes a request, never does I/O.
import { AsyncLocalStorage } from 'node:async_hooks';
import pino from 'pino';

export interface RequestFacts {
  reqId: string;
  /** The authenticated user; set by the gateway's auth step, absent for anonymous requests. Without htpasswd
   *  auth, the subject CN of a client certificate verified against tls.clientcas. */
  user?: string;
  /** The subject CN of the client certificate verified against tls.clientcas, when one was presented. */
  certUser?: string;
  /** Distribution's RemoteAddr: the client's IP (forwarded by a trusted proxy) or the peer's host:port. */
  addr: string;
  host: string;
  method: string;
  useragent: string;
  /** Set by the gateway when access rules restrict pulls: the catalog lists only the repositories it accepts. */
  pullable?: (repository: string) => boolean;
  /** The scheme the client used to reach us (events' target.url). */
  scheme: 'http' | 'https';
}

const current = new AsyncLocalStorage<RequestFacts>();
const CHINDINGS = pino.symbols.chindingsSym;

/** Runs fn (and everything it starts asynchronously) as part of the request described by `facts`. */
export function runWithRequest<T>(facts: RequestFacts, fn: () => T): T {
  return current.run(facts, fn);
}

/** The facts of the request being handled; undefined outside one (background work, startup). */
export function currentRequest(): RequestFacts | undefined {
  return current.getStore();
}

/**
 * pino `mixin` for the root logger: `{ reqId }` while a request is being handled, unless the
 * logger already binds one (request loggers do; a second key would duplicate it in the JSON).
 */
export function requestIdMixin(_merge: object, _level: number, logger?: unknown): Record<string, unknown> {
  const store = current.getStore();
  if (!store) return {};
  const bindings = (logger as Record<symbol, unknown> | undefined)?.[CHINDINGS];
  if (typeof bindings === 'string' && bindings.includes('"reqId":')) return {};
  return { reqId: store.reqId };
}
