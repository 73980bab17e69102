// The blob-descriptor cache seam (Distribution's BlobDescriptorCacheProvider): digest → {digest, size,
// mediaType}, per repository and globally. It never holds blob bytes and never decides visibility on its
// own: a miss or an error always falls through to storage (see cached-blob-describer.ts).

/** What is remembered about a blob. `digest` is the canonical digest the looked-up one resolved to. */
export interface CachedDescriptor { digest: string; size: number; mediaType: string }

export interface DescriptorCache {
  /** 'inmemory' or 'redis' (the config's name): the `cache` label of the cache metrics. */
  readonly kind: string;
  /**
   * `repo` null: the global entry (the blob exists somewhere). With a repo: the blob is linked into that
   * repository AND its global entry is known. undefined on a miss. May reject (outage, timeout): callers
   * treat a rejection as a miss.
   */
  get(repo: string | null, digest: string): Promise<CachedDescriptor | undefined>;
  /** Remembers the global entry and, with a repo, the repository's membership. May reject. */
  set(repo: string | null, digest: string, desc: CachedDescriptor): Promise<void>;
  /** Forgets the repository's membership (the global entry stays: blob data outlives a link). May reject. */
  clear(repo: string, digest: string): Promise<void>;
  /** Forgets every repository membership this cache holds (its namespace only: a redis key prefix). The
   *  resync after evictions were lost (cached-repository.ts); global entries stay. May reject. */
  clearAll(): Promise<void>;
  /** Releases connections. Idempotent; get/set/clear afterwards reject or miss. */
  close(): Promise<void>;
}

export type DescriptorCacheErrorCode = 'CACHE_UNAVAILABLE' | 'CACHE_TIMEOUT' | 'CACHE_CLOSED';

export class DescriptorCacheError extends Error {
  /** True when the call failed before anything reached the cache (disconnected, closed): nothing of it can
   *  have been applied. False when it may have been applied in part (timeout, a failure mid-call). */
  readonly unsent: boolean;
  constructor(readonly code: DescriptorCacheErrorCode, message: string, options?: { cause?: unknown; unsent?: boolean }) {
    super(message, options);
    this.unsent = options?.unsent ?? false;
    this.name = 'DescriptorCacheError';
  }
}

/** Distribution's media type for a plain blob descriptor. */
export const BLOB_MEDIA_TYPE = 'application/octet-stream';

/** A descriptor read back from a shared cache is only trusted when it is well-formed. */
export function validDescriptor(v: Partial<CachedDescriptor> | undefined): v is CachedDescriptor {
  return !!v && typeof v.digest === 'string' && v.digest.length > 0 && typeof v.size === 'number'
    && Number.isSafeInteger(v.size) && v.size >= 0 && typeof v.mediaType === 'string';
}
