// The decorator that puts a DescriptorCache in front of a repository's blob lookups (Distribution's
// cachedBlobStatter): hit → answer from the cache; miss → storage, then remember. It never caches a
// negative answer, and a cache failure is a miss: the backend always answers, the request never fails.
// Every cache call's outcome is reported to cache-calls.ts observers (the /metrics counters).
import type { Logger } from '../../log/logger.js';
import type { BlobDescriber, BlobDescriberDecorator } from '../core/blob-store.js';
import { tryParseDigest } from '../core/digest.js';
import { reportCacheCall, type CacheCallEvent } from './cache-calls.js';
import { BLOB_MEDIA_TYPE, type DescriptorCache } from './descriptor-cache.js';

/**
 * Cache errors are logged at debug only: the cache implementation logs outages once per outage
 * (redis.ts), so a per-request line here would flood the log during one.
 */
export function cachedBlobDescriber(cache: DescriptorCache, log: Logger): BlobDescriberDecorator {
  const report = (op: CacheCallEvent['op'], result: CacheCallEvent['result']) => reportCacheCall({ cache: cache.kind, op, result });
  const ignore = (op: CacheCallEvent['op']) => (err: unknown) => {
    report(op, 'error');
    log.debug({ err, op }, 'blob-descriptor cache error ignored');
    return null;
  };
  const write = (op: 'set' | 'clear', p: Promise<void>) => p.then(() => report(op, 'ok'), ignore(op));
  return (backend: BlobDescriber, repo: string): BlobDescriber => ({
    async stat(d, o) {
      const hit = await cache.get(repo, d.text).catch(ignore('get'));
      const digest = hit && tryParseDigest(hit.digest);
      if (hit && digest) {
        report('get', 'hit');
        return { digest, size: hit.size };
      }
      if (hit !== null) report('get', 'miss');   // null: the error was reported
      const desc = await backend.stat(d, o);
      await write('set', cache.set(repo, d.text, { digest: desc.digest.text, size: desc.size, mediaType: BLOB_MEDIA_TYPE }));
      return desc;
    },
    async forget(d) {
      await backend.forget(d);
      await write('clear', cache.clear(repo, d.text));
    },
  });
}
