// The current request's id for log lines written by code that only holds a module logger (the
// embedded registry, storage drivers): the pipeline runs each request inside runWithRequestId and
// the root logger's mixin adds `reqId`. It carries nothing else and never changes a request.
import { AsyncLocalStorage } from 'node:async_hooks';
import pino from 'pino';

const current = new AsyncLocalStorage<{ reqId: string }>();
const CHINDINGS = pino.symbols.chindingsSym;

/** Runs fn (and everything it starts asynchronously) as part of request `reqId`. */
export function runWithRequestId<T>(reqId: string, fn: () => T): T {
  return current.run({ reqId }, fn);
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
