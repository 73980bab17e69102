// A bounded LRU of manifest bytes by digest. Content under a digest is immutable, so entries never go
// stale; repository membership is NOT cached (callers always check the revision link).
export interface CachedManifest { bytes: Buffer; mediaType: string }

export class ManifestCache {
  private readonly map = new Map<string, CachedManifest>();
  private bytes = 0;

  constructor(private readonly maxBytes = 32 << 20, private readonly maxEntryBytes = 256 << 10) {}

  get(digest: string): CachedManifest | undefined {
    const v = this.map.get(digest);
    if (v) { this.map.delete(digest); this.map.set(digest, v); }
    return v;
  }

  set(digest: string, v: CachedManifest): void {
    if (v.bytes.length > this.maxEntryBytes || this.map.has(digest)) return;
    this.map.set(digest, v);
    this.bytes += v.bytes.length;
    for (const [k, old] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= old.bytes.length;
    }
  }
}
