// In-process blob-descriptor cache (`storage.cache.blobdescriptor: inmemory`): a bounded LRU keyed like
// the redis layout. Entries are tiny ({digest, size, mediaType}); the bound counts entries, not bytes.
// It never throws and never grows past `maxEntries`.
import { DescriptorCacheError, type CachedDescriptor, type DescriptorCache } from './descriptor-cache.js';

/** Distribution's default for storage.cache.blobdescriptorsize. */
export const DEFAULT_MEMORY_CACHE_ENTRIES = 10_000;

export class MemoryDescriptorCache implements DescriptorCache {
  readonly kind = 'inmemory';
  private readonly map = new Map<string, CachedDescriptor>();
  private closed = false;

  constructor(private readonly maxEntries = DEFAULT_MEMORY_CACHE_ENTRIES) {
    if (!(maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
  }

  get size(): number { return this.map.size; }

  async get(repo: string | null, digest: string): Promise<CachedDescriptor | undefined> {
    this.assertOpen();
    const global = this.touch(globalKey(digest));
    if (!global || repo === null) return global;
    const scoped = this.touch(repoKey(repo, digest));
    return scoped && { ...global, mediaType: scoped.mediaType || global.mediaType };
  }

  async set(repo: string | null, digest: string, desc: CachedDescriptor): Promise<void> {
    this.assertOpen();
    const v = { digest: desc.digest, size: desc.size, mediaType: desc.mediaType };
    this.put(globalKey(digest), v);
    if (repo !== null) this.put(repoKey(repo, digest), v);
  }

  async clear(repo: string, digest: string): Promise<void> {
    this.assertOpen();
    this.map.delete(repoKey(repo, digest));
  }

  async clearAll(): Promise<void> {
    this.assertOpen();
    for (const k of [...this.map.keys()]) if (k.startsWith('repository::')) this.map.delete(k);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.map.clear();
  }

  private touch(key: string): CachedDescriptor | undefined {
    const v = this.map.get(key);
    if (v) { this.map.delete(key); this.map.set(key, v); }
    return v;
  }

  private put(key: string, v: CachedDescriptor): void {
    this.map.delete(key);
    this.map.set(key, v);
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as string);
  }

  private assertOpen(): void {
    if (this.closed) throw new DescriptorCacheError('CACHE_CLOSED', 'descriptor cache is closed', { unsent: true });
  }
}

const globalKey = (digest: string) => `blobs::${digest}`;
const repoKey = (repo: string, digest: string) => `repository::${repo}::blobs::${digest}`;
