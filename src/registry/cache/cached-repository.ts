// The repository decorator that puts a DescriptorCache in front of blob lookups (Distribution's
// cachedBlobStatter): blobs.stat hit → answer from the cache; miss → the repository, then remember. What
// storage confirms is remembered too (a pull, an upload's commit, a mount), and a blob or manifest delete
// forgets the entry. Only stat (HEAD, existence) is answered from the cache: a pull and a manifest's
// reference checks always ask storage, so a stale entry never hands out bytes or vouches for a reference.
// It never caches a negative answer, and a cache failure is a miss: the repository always answers, the
// request never fails because of the cache. Every cache call is reported to cache-calls.ts (/metrics).
import type { Logger } from '../../log/logger.js';
import { tryParseDigest, type Digest } from '../core/digest.js';
import { forwarding, type BlobDescriptor, type Repository, type RepositoryDecorator } from '../core/repository.js';
import { reportCacheCall, type CacheCallEvent } from './cache-calls.js';
import { BLOB_MEDIA_TYPE, type DescriptorCache } from './descriptor-cache.js';

/**
 * Cache errors are logged at debug only: the cache implementation logs outages once per outage
 * (redis.ts), so a per-request line here would flood the log during one.
 */
export function cachedRepository(cache: DescriptorCache, log: Logger): RepositoryDecorator {
  const report = (op: CacheCallEvent['op'], result: CacheCallEvent['result']) => reportCacheCall({ cache: cache.kind, op, result });
  const ignore = (op: CacheCallEvent['op']) => (err: unknown) => {
    report(op, 'error');
    log.debug({ err, op }, 'blob-descriptor cache error ignored');
    return null;
  };
  const write = (op: 'set' | 'clear', p: Promise<void>) => p.then(() => report(op, 'ok'), ignore(op));
  return (inner: Repository): Repository => {
    const repo = inner.name;
    const forget = (d: Digest) => write('clear', cache.clear(repo, d.text));
    const remember = (d: Digest, desc: BlobDescriptor) =>
      write('set', cache.set(repo, d.text, { digest: desc.digest.text, size: desc.size, mediaType: BLOB_MEDIA_TYPE }));
    const f = forwarding(inner);
    return {
      ...f,
      uploads: {
        ...f.uploads,
        async commit(id, digest, last, o) {
          const desc = await inner.uploads.commit(id, digest, last, o);
          await remember(digest, desc);
          return desc;
        },
        async upload(digest, chunk, o) {
          const desc = await inner.uploads.upload(digest, chunk, o);
          await remember(digest, desc);
          return desc;
        },
      },
      blobs: {
        async stat(d, o): Promise<BlobDescriptor> {
          const hit = await cache.get(repo, d.text).catch(ignore('get'));
          const digest = hit && tryParseDigest(hit.digest);
          if (hit && digest) {
            report('get', 'hit');
            return { digest, size: hit.size };
          }
          if (hit !== null) report('get', 'miss');   // null: the error was reported
          const desc = await inner.blobs.stat(d, o);
          await remember(d, desc);
          return desc;
        },
        async get(d, o) {
          const content = await inner.blobs.get(d, o);
          await remember(d, content.descriptor);
          return content;
        },
        async mount(from, d, o) {
          const desc = await inner.blobs.mount(from, d, o);
          if (desc) await remember(d, desc);
          return desc;
        },
        async delete(d, o) {
          try {
            await inner.blobs.delete(d, o);
          } finally {
            await forget(d);
          }
        },
      },
      manifests: {
        ...f.manifests,
        async delete(ref, o) {
          await inner.manifests.delete(ref, o);
          if ('digest' in ref) await forget(ref.digest);   // a manifest is also linked in _layers
        },
      },
    };
  };
}
