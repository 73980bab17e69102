// registry.storage.cache and registry.redis: defaults, Distribution's key names, env overrides, the
// redis cross-check, and the mapping onto node-redis options (factory.ts). No redis needed here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigFromString } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { descriptorCacheFromConfig, redisOptionsFromConfig } from '../../src/registry/api/app.js';
import { MemoryDescriptorCache } from '../../src/registry/cache/memory.js';

const load = (yaml: string, env: Record<string, string> = {}) => loadConfigFromString(yaml, '/etc/berth/gateway.yml', env);
const problems = (yaml: string, env: Record<string, string> = {}) => {
  try { load(yaml, env); } catch (err) { return (err as Error).message.split('\n').filter(Boolean); }
  return [];
};

describe('config: blob-descriptor cache and redis', () => {
  it('no cache section: no cache, no redis (as Distribution)', () => {
    const c = load('');
    assert.equal(c.registry.storage.cache, undefined);
    assert.equal(c.registry.redis, undefined);
    assert.equal(descriptorCacheFromConfig(c.registry, silentLogger()), undefined);
  });

  it('cache: {} means the in-memory cache with 10000 entries', () => {
    const c = load('registry:\n  storage:\n    cache: {}\n');
    assert.deepEqual(c.registry.storage.cache, { blobdescriptor: 'inmemory', blobdescriptorsize: 10000 });
    assert.ok(descriptorCacheFromConfig(c.registry, silentLogger()) instanceof MemoryDescriptorCache);
  });

  it('redis section: defaults and every key', () => {
    const d = load('registry:\n  redis: {}\n').registry.redis;
    assert.deepEqual(d, {
      addr: { host: 'localhost', port: 6379 }, db: 0, dialtimeout: 1000, readtimeout: 500, writetimeout: 500,
      pool: { maxidle: 16, maxactive: 64, idletimeout: 300_000 },
    });
    const r = load(`registry:
  redis:
    addr: "[::1]:6380"
    password: pw
    db: 5
    dialtimeout: 10ms
    readtimeout: 20ms
    writetimeout: 30ms
    pool: { maxidle: 1, maxactive: 2, idletimeout: 3s }
`).registry.redis!;
    assert.deepEqual(redisOptionsFromConfig(r), {
      socket: { host: '::1', port: 6380 }, password: 'pw', db: 5, dialTimeoutMs: 10, readTimeoutMs: 20, writeTimeoutMs: 30,
    });
    assert.deepEqual(redisOptionsFromConfig(load('registry:\n  redis: { addr: ":7000" }\n').registry.redis!).socket,
      { host: 'localhost', port: 7000 });
  });

  it("Distribution's environment variables", () => {
    const c = load('', {
      REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR: 'redis', REGISTRY_REDIS_ADDR: 'cache:6379', REGISTRY_REDIS_DB: '2',
      REGISTRY_REDIS_POOL_MAXIDLE: '4',
    });
    assert.equal(c.registry.storage.cache?.blobdescriptor, 'redis');
    assert.deepEqual(c.registry.redis?.addr, { host: 'cache', port: 6379 });
    assert.equal(c.registry.redis?.db, 2);
    assert.equal(c.registry.redis?.pool.maxidle, 4);
  });

  it('every problem, with its position', () => {
    assert.deepEqual(problems(`registry:
  storage:
    cache:
      blobdescriptor: memcached
      blobdescriptorsize: 0
  redis:
    addr: nope
    db: -1
    readtimeout: 0s
    pool: { maxconns: 3 }
`), [
      '/etc/berth/gateway.yml:4:23  registry.storage.cache.blobdescriptor  expected one of inmemory, redis, found string "memcached"',
      '/etc/berth/gateway.yml:5:27  registry.storage.cache.blobdescriptorsize  expected an integer ≥ 1, found number 0',
      problems('registry:\n  redis:\n    addr: nope\n')[0]!.replace(':3:11', ':7:11'),
      '/etc/berth/gateway.yml:8:9  registry.redis.db  expected an integer ≥ 0, found number -1',
      '/etc/berth/gateway.yml:9:18  registry.redis.readtimeout  expected a duration above zero, found string "0s"',
      '/etc/berth/gateway.yml:10:13  registry.redis.pool.maxconns  unknown key, expected one of: maxidle, maxactive, idletimeout',
    ]);
  });

  it('blobdescriptor: redis without a redis section is an error (file and environment)', () => {
    assert.deepEqual(problems('registry:\n  storage:\n    cache:\n      blobdescriptor: redis\n'), [
      '/etc/berth/gateway.yml:4:23  registry.storage.cache.blobdescriptor  redis needs a registry.redis section (at least redis.addr)',
    ]);
    assert.deepEqual(problems('', { REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR: 'redis' }), [
      'env REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR  registry.storage.cache.blobdescriptor  redis needs a registry.redis section (at least redis.addr)',
    ]);
  });
});
