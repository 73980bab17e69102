// The repository decorator that puts a DescriptorCache in front of blob lookups (Distribution's
// cachedBlobStatter): blobs.stat hit → answer from the cache; miss → the repository, then remember. What
// storage confirms is remembered too (a pull, an upload's commit, a mount), and a blob or manifest delete
// forgets the entry. Only stat (HEAD, existence) is answered from the cache: a pull and a manifest's
// reference checks always ask storage, so a stale entry never hands out bytes or vouches for a reference.
// It never caches a negative answer, and a cache failure is a miss: the repository always answers, the
// request never fails because of the cache. Coherence after failures is tombstones.ts's job: a key whose
// eviction (or write) may have been lost is not answered from the cache until the cache has forgotten it.
// Every cache call is reported to cache-calls.ts (/metrics).
import type { Logger } from '../../log/logger.js';
import { tryParseDigest, type Digest } from '../core/digest.js';
import { forwarding, type BlobDescriptor, type Repository, type RepositoryDecorator } from '../core/repository.js';
import { reportCacheCall, type CacheCallEvent } from './cache-calls.js';
import { BLOB_MEDIA_TYPE, DescriptorCacheError, type DescriptorCache } from './descriptor-cache.js';
import { Tombstones, type TombstoneOptions } from './tombstones.js';

/** What a decorated cache exposes besides the decorator (tests, /debug). */
export interface CachedRepositoryDecorator extends RepositoryDecorator {
  readonly tombstones: Tombstones;
}

/**
 * Cache errors are logged at debug only: the cache implementation logs outages once per outage
 * (redis.ts), so a per-request line here would flood the log during one.
 */
export function cachedRepository(cache: DescriptorCache, log: Logger, o: TombstoneOptions = {}): CachedRepositoryDecorator {
  const report = (op: CacheCallEvent['op'], result: CacheCallEvent['result']) => reportCacheCall({ cache: cache.kind, op, result });
  const ignore = (op: CacheCallEvent['op']) => (err: unknown) => {
    report(op, 'error');
    log.debug({ err, op }, 'blob-descriptor cache error ignored');
    return null;
  };
  const tombstones = new Tombstones(cache, log, o);
  // A write that failed before anything was sent changed nothing; any other failure may have landed in part
  // (a timeout, a connection lost mid-call) or, for a clear, left a stale entry: tombstone the key.
  const write = (op: 'set' | 'clear', repo: string, d: Digest, p: Promise<void>) => p.then(() => { report(op, 'ok'); tombstones.answered(); }, (err: unknown) => {
    if (op === 'clear' || !(err instanceof DescriptorCacheError && err.unsent)) tombstones.add(repo, d.text);
    return ignore(op)(err);
  });
  const decorate = (inner: Repository): Repository => {
    const repo = inner.name;
    const forget = (d: Digest) => {
      tombstones.forgetting(repo, d.text);
      return write('clear', repo, d, cache.clear(repo, d.text));
    };
    /** `since`: the epoch taken before storage was asked; a forget of the key after it wins over this write. */
    const remember = async (d: Digest, desc: BlobDescriptor, since: number) => {
      if (!tombstones.mayWrite(repo, d.text, since)) return;
      await write('set', repo, d, cache.set(repo, d.text, { digest: desc.digest.text, size: desc.size, mediaType: BLOB_MEDIA_TYPE }));
    };
    const f = forwarding(inner);
    return {
      ...f,
      uploads: {
        ...f.uploads,
        async commit(id, digest, last, o) {
          const since = tombstones.epoch();
          const desc = await inner.uploads.commit(id, digest, last, o);
          await remember(digest, desc, since);
          return desc;
        },
        async upload(digest, chunk, o) {
          const since = tombstones.epoch();
          const desc = await inner.uploads.upload(digest, chunk, o);
          await remember(digest, desc, since);
          return desc;
        },
      },
      blobs: {
        async stat(d, o): Promise<BlobDescriptor> {
          const since = tombstones.epoch();
          if (tombstones.trusts(repo, d.text)) {
            const hit = await cache.get(repo, d.text).catch(ignore('get'));
            if (hit !== null) tombstones.answered();
            const digest = hit && tryParseDigest(hit.digest);
            // Asked again after the answer: a forget that started while the lookup was in flight wins.
            if (hit && digest && tombstones.trusts(repo, d.text)) {
              report('get', 'hit');
              return { digest, size: hit.size };
            }
            if (hit !== null) report('get', 'miss');   // null: the error was reported
          } else {
            report('get', 'miss');
          }
          const desc = await inner.blobs.stat(d, o);
          await remember(d, desc, since);
          return desc;
        },
        async get(d, o) {
          const since = tombstones.epoch();
          const content = await inner.blobs.get(d, o);
          await remember(d, content.descriptor, since);
          return content;
        },
        async mount(from, d, o) {
          const since = tombstones.epoch();
          const desc = await inner.blobs.mount(from, d, o);
          if (desc) await remember(d, desc, since);
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
  return Object.assign(decorate, { tombstones });
}
