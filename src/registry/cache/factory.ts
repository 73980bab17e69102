// Builds the blob-descriptor cache named by `registry.storage.cache.blobdescriptor` (none when the
// section is absent, as in Distribution) and maps `registry.redis` onto node-redis options. It does not
// wait for redis: the cache connects in the background and misses until it is up.
import type { RedisConfig, RegistryConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { DescriptorCache } from './descriptor-cache.js';
import { MemoryDescriptorCache } from './memory.js';
import { RedisDescriptorCache, type RedisCacheOptions } from './redis.js';

export class CacheConfigError extends Error {
  readonly code = 'CACHE_CONFIG';
}

export function createDescriptorCache(cfg: RegistryConfig, log: Logger): DescriptorCache | undefined {
  const kind = cfg.storage.cache?.blobdescriptor;
  if (kind === undefined) return undefined;
  if (kind === 'inmemory') return new MemoryDescriptorCache(cfg.storage.cache?.blobdescriptorsize);
  if (!cfg.redis) {
    throw new CacheConfigError('registry.storage.cache.blobdescriptor is redis but there is no registry.redis section');
  }
  const opts = redisOptionsFromConfig(cfg.redis);
  const where = 'path' in opts.socket ? opts.socket.path : `${opts.socket.host}:${opts.socket.port}`;
  return new RedisDescriptorCache(opts, log.child({ cache: 'redis', addr: where, db: cfg.redis.db }));
}

/** `addr` ":6379" (the loader's wildcard host) means this machine, as Go's dialer reads it.
 *  pool.* has no node-redis equivalent (one connection) and is not used. */
const WILDCARD = new Set(['', '0.0.0.0', '::']);

export function redisOptionsFromConfig(r: RedisConfig): RedisCacheOptions {
  return {
    socket: { host: WILDCARD.has(r.addr.host) ? 'localhost' : r.addr.host, port: r.addr.port },
    password: r.password,
    db: r.db,
    dialTimeoutMs: r.dialtimeout,
    readTimeoutMs: r.readtimeout,
    writeTimeoutMs: r.writetimeout,
  };
}
