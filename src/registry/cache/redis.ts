// Redis blob-descriptor cache (`storage.cache.blobdescriptor: redis`) with Distribution's key layout under
// a per-storage prefix (`keyPrefix`; '' gives Distribution's bare keys, shared with registry:2):
//   <prefix>blobs::<digest>                          hash  digest, size, mediatype   (global)
//   <prefix>repository::<name>::blobs                set   digests linked into <name>
//   <prefix>repository::<name>::blobs::<digest>      hash  mediatype                 (per-repository override)
// Every call is bounded by a timeout and fails fast while disconnected (no offline queue); the client
// reconnects by itself with backoff. Outages are logged once (healthy→down) and recoveries once
// (down→healthy); callers get rejections and fall back to storage. Never stores blob bytes.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Redis from 'redis';
import type { Logger } from '../../log/logger.js';
import {
  BLOB_MEDIA_TYPE, DescriptorCacheError, validDescriptor, type CachedDescriptor, type DescriptorCache,
} from './descriptor-cache.js';

export interface RedisCacheOptions {
  /** TCP host/port, or a unix socket path. */
  socket: { host: string; port: number } | { path: string };
  password?: string;
  db?: number;
  /** Connect timeout (ms), default 1000. */
  dialTimeoutMs?: number;
  /** Bound on a lookup (ms), default 500. */
  readTimeoutMs?: number;
  /** Bound on a write or invalidation (ms), default 500. */
  writeTimeoutMs?: number;
  /** Longest pause between reconnect attempts (ms), default 2000. */
  maxBackoffMs?: number;
  /** Put before every key, so registries on different storage share one redis without answering for each
   *  other (the composition root derives it from the storage identity). Default '': Distribution's keys. */
  keyPrefix?: string;
}

export const globalKey = (digest: string, prefix = '') => `${prefix}blobs::${digest}`;
export const repoSetKey = (repo: string, prefix = '') => `${prefix}repository::${repo}::blobs`;
export const repoHashKey = (repo: string, digest: string, prefix = '') => `${prefix}repository::${repo}::blobs::${digest}`;

/** The default prefix for a storage identity (e.g. `filesystem:/srv/registry`): `berth:<12 hex>:`. */
export function keyPrefixFor(storageIdentity: string): string {
  return `berth:${createHash('sha256').update(storageIdentity).digest('hex').slice(0, 12)}:`;
}

type State = 'connecting' | 'up' | 'down' | 'closed';

// Loaded by the first cache constructed, not at import: node-redis (~580 CommonJS modules) costs ~110 ms
// of startup, and the registry imports this file whether or not a redis cache is configured.
let redisModule: typeof Redis | undefined;
const redis = (): typeof Redis => (redisModule ??= createRequire(import.meta.url)('redis') as typeof Redis);

export class RedisDescriptorCache implements DescriptorCache {
  readonly kind = 'redis';
  private readonly client;
  private readonly readMs: number;
  private readonly writeMs: number;
  /** The key prefix in use ('' = Distribution's keys). */
  readonly prefix: string;
  private state: State = 'connecting';

  constructor(opts: RedisCacheOptions, private readonly log: Logger) {
    this.readMs = positive(opts.readTimeoutMs, 500);
    this.writeMs = positive(opts.writeTimeoutMs, 500);
    this.prefix = opts.keyPrefix ?? '';
    const maxBackoff = positive(opts.maxBackoffMs, 2000);
    this.client = redis().createClient({
      socket: {
        ...opts.socket,
        connectTimeout: positive(opts.dialTimeoutMs, 1000),
        // Exponential backoff with jitter, forever: the cache heals itself once redis is back.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxBackoff) + Math.floor(Math.random() * 50),
      },
      ...(opts.password ? { password: opts.password } : {}),
      ...(opts.db ? { database: opts.db } : {}),
      disableOfflineQueue: true,   // while disconnected, commands reject at once instead of queueing
    });
    this.client.on('error', (err: unknown) => this.markDown(err));
    this.client.on('ready', () => this.markUp());
    // Never awaited: startup must not wait for (or fail on) redis. Rejects only when closed.
    this.client.connect().catch(() => {});
  }

  /** True while connected and answering. */
  get healthy(): boolean { return this.state === 'up'; }

  async get(repo: string | null, digest: string): Promise<CachedDescriptor | undefined> {
    return this.run(this.readMs, async (c) => {
      const [global, member, override] = await Promise.all([   // one pipelined round trip
        c.hmGet(globalKey(digest, this.prefix), ['digest', 'size', 'mediatype']),
        repo === null ? 1 : c.sIsMember(repoSetKey(repo, this.prefix), digest),
        repo === null ? null : c.hGet(repoHashKey(repo, digest, this.prefix), 'mediatype'),
      ]);
      if (!isMember(member)) return undefined;
      const [d, size, mediaType] = global as (string | null)[];
      if (!d || size === null || size === undefined) return undefined;
      const desc = { digest: d, size: Number(size), mediaType: override || mediaType || BLOB_MEDIA_TYPE };
      return validDescriptor(desc) ? desc : undefined;
    });
  }

  async set(repo: string | null, digest: string, desc: CachedDescriptor): Promise<void> {
    await this.run(this.writeMs, (c) => Promise.all([
      c.hSet(globalKey(digest, this.prefix), { digest: desc.digest, size: String(desc.size) }),
      c.hSetNX(globalKey(digest, this.prefix), 'mediatype', desc.mediaType),   // as Distribution: first writer wins
      ...(repo === null ? [] : [
        c.sAdd(repoSetKey(repo, this.prefix), digest),
        c.hSet(repoHashKey(repo, digest, this.prefix), 'mediatype', desc.mediaType),
      ]),
    ]));
  }

  async clear(repo: string, digest: string): Promise<void> {
    await this.run(this.writeMs, (c) => Promise.all([
      c.sRem(repoSetKey(repo, this.prefix), digest),
      c.del(repoHashKey(repo, digest, this.prefix)),
    ]));
  }

  /** SCANs `<prefix>repository::*` and deletes what it finds, one bounded round trip per batch. */
  async clearAll(): Promise<void> {
    const match = `${globEscape(this.prefix)}repository::*`;
    let cursor = '0';
    for (let rounds = 0; rounds < 1_000_000; rounds++) {
      const r = await this.run(this.writeMs, async (c) => {
        const page = await c.scan(cursor as never, { MATCH: match, COUNT: 1000 });
        if (page.keys.length > 0) await c.unlink(page.keys);
        return page;
      });
      cursor = String(r.cursor);
      if (cursor === '0') return;
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.client.removeAllListeners('ready');
    this.client.on('error', () => {});
    if (this.client.isOpen) this.client.destroy();
  }

  private async run<T>(ms: number, f: (c: typeof this.client) => Promise<T>): Promise<T> {
    if (this.state === 'closed') throw new DescriptorCacheError('CACHE_CLOSED', 'redis cache is closed', { unsent: true });
    // Disconnected: fail at once (the outage was already logged by the 'error' event).
    if (!this.client.isReady) throw new DescriptorCacheError('CACHE_UNAVAILABLE', 'redis is not connected', { unsent: true });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DescriptorCacheError('CACHE_TIMEOUT', `redis did not answer within ${ms}ms`)), ms);
    });
    try {
      const v = await Promise.race([f(this.client), timeout]);
      this.markUp();
      return v;
    } catch (err) {
      // An error reply (e.g. WRONGTYPE from foreign data in a shared redis) is not an outage.
      if (!(err instanceof redis().ErrorReply)) this.markDown(err);
      throw err instanceof DescriptorCacheError ? err : new DescriptorCacheError('CACHE_UNAVAILABLE', 'redis command failed', { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  private markDown(err: unknown): void {
    if (this.state === 'down' || this.state === 'closed') return;
    this.state = 'down';
    this.log.error({ err }, 'redis blob-descriptor cache unavailable; serving from storage until it recovers');
  }

  private markUp(): void {
    if (this.state === 'up' || this.state === 'closed') return;
    const was = this.state;
    this.state = 'up';
    if (was === 'down') this.log.info('redis blob-descriptor cache recovered');
    else this.log.info('redis blob-descriptor cache connected');
  }
}

const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
const positive = (v: number | undefined, d: number) => (v !== undefined && v > 0 ? v : d);
const isMember = (v: unknown) => v === 1 || v === true || v === '1';
