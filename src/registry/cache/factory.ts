// Builds the blob-descriptor cache from its own options (the composition root maps
// `registry.storage.cache` and `registry.redis` onto them). It does not wait for redis: the cache
// connects in the background and misses until it is up.
import type { Logger } from '../../log/logger.js';
import type { DescriptorCache } from './descriptor-cache.js';
import { MemoryDescriptorCache } from './memory.js';
import { RedisDescriptorCache, type RedisCacheOptions } from './redis.js';

export type DescriptorCacheOptions =
  | { kind: 'inmemory'; entries?: number }
  | { kind: 'redis'; redis: RedisCacheOptions };

export function createDescriptorCache(o: DescriptorCacheOptions, log: Logger): DescriptorCache {
  if (o.kind === 'inmemory') return new MemoryDescriptorCache(o.entries);
  const s = o.redis.socket;
  const where = 'path' in s ? s.path : `${s.host}:${s.port}`;
  return new RedisDescriptorCache(o.redis, log.child({ cache: 'redis', addr: where, db: o.redis.db }));
}
