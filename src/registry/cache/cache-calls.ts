// Observers of blob-descriptor cache calls, for /metrics: cached-blob-describer.ts reports every
// lookup (hit, miss or error) and every write (ok or error), labelled with the cache's kind. Process-wide,
// like storage/base.ts's onStorageCall. An observer never fails, delays or changes a call.
import { createObservers } from '../../util/observers.js';

export interface CacheCallEvent {
  /** DescriptorCache.kind: 'inmemory' or 'redis'. */
  cache: string;
  op: 'get' | 'set' | 'clear';
  /** get: hit | miss | error; set and clear: ok | error. */
  result: 'hit' | 'miss' | 'ok' | 'error';
}

const cacheCalls = createObservers<CacheCallEvent>();

/** Calls `fn` after every cache call made through cachedBlobDescriber; returns the detach function. */
export const onCacheCall = cacheCalls.on;
export const reportCacheCall = cacheCalls.report;
