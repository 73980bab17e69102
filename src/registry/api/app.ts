// The embedded registry's composition root: maps the `registry:` config onto each layer's own options,
// builds the storage driver, the core Registry with its repository decorators (descriptor cache inside,
// notifications outside) and the router, and starts background work (upload purging, the writer lease).
// The only file under registry/api that knows config, storage, cache or notify. It must not listen on
// sockets or know about auth; the gateway (or test/support/registry-server.ts) owns the http.Server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RedisConfig, RegistryConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import { cachedRepository } from '../cache/cached-repository.js';
import type { DescriptorCache } from '../cache/descriptor-cache.js';
import { createDescriptorCache } from '../cache/factory.js';
import { keyPrefixFor, type RedisCacheOptions } from '../cache/redis.js';
import { RedisUploadLock } from '../cache/redis-upload-lock.js';
import type { RepositoryDecorator } from '../core/repository.js';
import { StorageRegistry } from '../core/storage-registry.js';
import { limitUploadSessions, UploadSessionLimits } from '../core/upload-limits.js';
import { lockUploads } from '../core/upload-lock.js';
import { startUploadPurger } from '../core/upload-purger.js';
import { acquireWriterLease } from '../core/writer-lease.js';
import { listen } from '../notify/repository-listener.js';
import { createNotifier, type NotifierOptions } from '../notify/listener.js';
import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';
import { createDriver, dataDirectory } from '../storage/factory.js';
import { createRouter } from './router.js';

export interface RegistryApp {
  /** Handles any request whose path is /v2 or starts with /v2/ (query string allowed). Never throws, never
   *  rejects: it always writes a response (OCI error JSON on failure). The API version header is the
   *  gateway's (pipeline.ts), not the app's. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The storage driver health check (Distribution's `storagedriver_<name>`): lists the root within the signal;
   *  a missing root (an empty store) passes, a root that is not a directory (a regular file) fails. */
  readonly storage: { name: string; check(o: { signal: AbortSignal }): Promise<void> };
  /** Stops background work (upload purging timer, writer lease), notifications and the cache. Idempotent. */
  close(): Promise<void>;
}

export async function createRegistryApp(
  cfg: RegistryConfig, opts: {
    log: Logger;
    /** Use this driver instead of the configured one (tests). */
    driver?: StorageDriver;
    /** Use this descriptor cache instead of the configured one (tests); the app closes it. */
    descriptorCache?: DescriptorCache;
  },
): Promise<RegistryApp> {
  const log = opts.log.child({ module: 'registry' });
  const storage = cfg.storage;
  const driver = opts.driver ?? createDriver(storage.driver, storage.parameters, opts.log); // base.ts binds { module: storage, driver }
  const readonly = storage.maintenance.readonly.enabled;
  const cacheLog = opts.log.child({ module: 'cache' });
  const descriptors = opts.descriptorCache ?? descriptorCacheFromConfig(cfg, cacheLog);
  // Before anything that needs stopping: a journal that cannot be opened fails startup cleanly.
  const notifier = cfg.notifications && await createNotifier(notifierOptionsFromConfig(cfg, opts.log));   // undefined without enabled endpoints
  // Innermost first: notifications see what the cache-fronted repository answered.
  const decorators: RepositoryDecorator[] = [];
  // Innermost: with a shared redis, one request at a time writes an upload session across replicas (core/upload-lock.ts).
  const uploadLock = cfg.redis && !readonly
    ? new RedisUploadLock({ ...redisOptionsFromConfig(cfg.redis), keyPrefix: redisKeyPrefix(cfg) }, opts.log.child({ module: 'upload-lock' }))
    : undefined;
  if (uploadLock) decorators.push(lockUploads(uploadLock));
  if (descriptors) decorators.push(cachedRepository(descriptors, cacheLog));
  if (notifier) decorators.push(listen(notifier, log.child({ module: 'notifications' })));
  // Outermost: a POST over the per-user or per-address bound is refused before anything else runs.
  const bounds = storage.maintenance.uploadlimits;
  const limits = bounds && (bounds.peruser > 0 || bounds.peraddress > 0)
    ? new UploadSessionLimits({ ...bounds, expiry: storage.maintenance.uploadpurging.age })
    : undefined;
  if (limits) decorators.push(limitUploadSessions(limits));
  const registry = new StorageRegistry(driver, { deleteEnabled: storage.delete.enabled, readonly, decorators });
  // A writable app announces itself so `berth gc` refuses to sweep under it (core/writer-lease.ts).
  const lease = readonly ? undefined : await acquireWriterLease(driver, { log: opts.log });
  const purging = storage.maintenance.uploadpurging;
  const purger = purging.enabled && !readonly
    ? startUploadPurger(driver, purging, opts.log, { onPurged: (repo, id) => limits?.ended(`${repo}/${id}`) })   // binds { module: 'upload-purger' }
    : undefined;
  const route = createRouter({ registry, log, redirect: !storage.redirect.disable });
  const localRoot = opts.driver ? undefined : dataDirectory(storage.driver, storage.parameters);
  let closed = false;
  return {
    handle(req, res) {
      try {
        route(req, res);
      } catch (err) {          // createRouter's handler does not throw; this is the last line of defence
        log.error({ err }, 'registry handler threw');
        res.destroy();
      }
    },
    storage: {
      name: driver.name,
      async check(o) {
        try {
          await driver.list('/', { signal: o.signal });
          return;
        } catch (err) {
          if (!(err instanceof PathNotFoundError)) throw err;
        }
        // list() says "not found" both for a missing root (an empty store: healthy) and for a local root that
        // is a regular file, or lies below one (not healthy: nothing can ever be stored there).
        if (localRoot !== undefined && await notADirectory(localRoot)) throw new Error('storage root is not a directory');
      },
    },
    async close() {
      if (closed) return;
      closed = true;
      purger?.stop();
      await registry.settled();  // committed sessions' removal, which runs after their responses
      await notifier?.close();   // undelivered events stay journaled for the next start
      await Promise.all([descriptors?.close(), uploadLock?.close(), lease?.release()]);
    },
  };
}

/** True when `dir` exists as something other than a directory, or below a regular file (ENOTDIR). */
async function notADirectory(dir: string): Promise<boolean> {
  try {
    return !(await stat(dir)).isDirectory();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTDIR';
  }
}

export class CacheConfigError extends Error {
  readonly code = 'CACHE_CONFIG';
}

/** `registry.storage.cache.blobdescriptor` (none when the section is absent, as in Distribution). */
export function descriptorCacheFromConfig(cfg: RegistryConfig, log: Logger): DescriptorCache | undefined {
  const kind = cfg.storage.cache?.blobdescriptor;
  if (kind === undefined) return undefined;
  if (kind === 'inmemory') return createDescriptorCache({ kind, entries: cfg.storage.cache?.blobdescriptorsize }, log);
  if (!cfg.redis) {
    throw new CacheConfigError('registry.storage.cache.blobdescriptor is redis but there is no registry.redis section');
  }
  return createDescriptorCache({ kind, redis: { ...redisOptionsFromConfig(cfg.redis), keyPrefix: redisKeyPrefix(cfg) } }, log);
}

/**
 * `registry.redis.keyprefix`, else `berth:<12 hex>:` from the storage's identity (the driver and its local
 * root, or its non-secret parameters; inmemory storage: this process), so registries on different storage
 * sharing one redis never answer for each other, and processes on the same storage share their entries.
 */
export function redisKeyPrefix(cfg: RegistryConfig): string {
  if (cfg.redis?.keyprefix !== undefined) return cfg.redis.keyprefix;
  const { driver, parameters } = cfg.storage;
  const dir = dataDirectory(driver, parameters);
  if (dir !== undefined) return keyPrefixFor(`${driver}:${resolve(dir)}`);
  if (driver === 'inmemory') return keyPrefixFor(`inmemory:${randomUUID()}`);
  const visible = Object.entries(parameters).filter(([k]) => !/key|secret|password|token/i.test(k)).sort(([a], [b]) => (a < b ? -1 : 1));
  return keyPrefixFor(`${driver}:${JSON.stringify(visible)}`);
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

/** Where the file journal lives: notifications.journaldirectory, else .notifications in the driver's
 *  local data directory (filesystem: rootdirectory); a memory journal for drivers without one. */
export function journalDirectory(cfg: RegistryConfig): string | undefined {
  const n = cfg.notifications;
  if (n?.journaldirectory) return n.journaldirectory;
  const root = dataDirectory(cfg.storage.driver, cfg.storage.parameters);
  return root === undefined ? undefined : join(root, '.notifications');
}

function notifierOptionsFromConfig(cfg: RegistryConfig, log: Logger): NotifierOptions {
  const n = cfg.notifications!;
  return {
    endpoints: n.endpoints, includeReferences: n.events.includereferences, journalDirectory: journalDirectory(cfg), log,
    journalMaxBytes: n.journalmaxsize, journalMaxAgeMs: n.journalmaxage,
  };
}
