// A small TTL + size-bounded cache of verified credentials, so a client that sends Authorization on
// every request pays bcrypt once a minute instead of every time. Keys are HMAC-SHA256 of the raw
// header value under a per-process random key: the cache never holds a password or a reversible form.
import { createHmac, randomBytes } from 'node:crypto';

export interface CredentialCacheOptions {
  ttlMs?: number;       // default 60 s
  maxEntries?: number;  // default 1000; the oldest entry is evicted first
  now?: () => number;
}

export class CredentialCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, { user: string; expires: number }>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(o: CredentialCacheOptions = {}) {
    this.ttlMs = o.ttlMs ?? 60_000;
    this.max = Math.max(1, o.maxEntries ?? 1000);
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The user a verified header value belongs to, or undefined (missing or expired). */
  get(headerValue: string): string | undefined {
    const k = this.digest(headerValue);
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(k);
      return undefined;
    }
    return e.user;
  }

  /** Remembers a header value that just verified as `user` (TTL from now; never extended by get). */
  set(headerValue: string, user: string): void {
    const k = this.digest(headerValue);
    this.entries.delete(k);
    while (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(k, { user, expires: this.now() + this.ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }

  private digest(headerValue: string): string {
    return createHmac('sha256', this.key).update(headerValue).digest('base64');
  }
}
