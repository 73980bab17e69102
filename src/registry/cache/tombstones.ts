// Keeps a blob-descriptor cache coherent across failures (issue 14, point 2). A key whose eviction failed
// (or whose write may have landed in part) gets a local tombstone: the cache is not asked for it and not
// written for it until an eviction of that key has succeeded; a background loop retries those evictions
// with backoff (so they land as soon as redis is back). Past `max` tombstones the whole cache is distrusted
// until one clearAll() of its namespace succeeds. It also orders writes after forgets: a descriptor read
// from storage before a delete's forget began is not written back after it. Tombstones are per process
// and in memory: they never fail a request and never hold blob data.
import type { Logger } from '../../log/logger.js';
import type { DescriptorCache } from './descriptor-cache.js';

export interface TombstoneOptions {
  /** Keys tombstoned one by one before the whole cache is distrusted until a full resync (default 10000). */
  max?: number;
  /** First retry of the pending evictions (ms, default 100), doubling up to `maxRetryMs` (default 2000). */
  retryMs?: number;
  maxRetryMs?: number;
}

const FORGETS_KEPT = 10_000;

export class Tombstones {
  /** key → generation of its last failure: an eviction only settles the key if no failure came after it. */
  private readonly keys = new Map<string, number>();
  /** Set while the whole cache is distrusted; allGen counts failures meanwhile (a running resync repeats). */
  private all = false;
  private allGen = 0;
  private gen = 0;
  /** Orders forgets and writes: key → clock of its last forget; older forgets only raise `floor`. */
  private clock = 0;
  private floor = 0;
  private readonly forgets = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private running = false;
  private delay: number;
  private readonly max: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;

  constructor(private readonly cache: DescriptorCache, private readonly log: Logger, o: TombstoneOptions = {}) {
    this.max = o.max ?? 10_000;
    this.retryMs = o.retryMs ?? 100;
    this.maxRetryMs = o.maxRetryMs ?? 2000;
    this.delay = this.retryMs;
  }

  /** Evictions not yet known to have landed (`all`: a full resync is pending). */
  get pending(): { keys: number; all: boolean } { return { keys: this.keys.size, all: this.all }; }

  /** True when the cache may answer for this key. */
  trusts(repo: string, digest: string): boolean {
    return !this.all && !this.keys.has(key(repo, digest));
  }

  /** The write clock; take it before asking storage, pass it to mayWrite. */
  epoch(): number { return this.clock; }

  /** A forget of the key begins: writes of descriptors read before now are dropped. */
  forgetting(repo: string, digest: string): void {
    const k = key(repo, digest);
    this.clock++;
    this.forgets.delete(k);
    this.forgets.set(k, this.clock);
    if (this.forgets.size > FORGETS_KEPT) {
      const [oldest, at] = this.forgets.entries().next().value as [string, number];
      this.forgets.delete(oldest);
      this.floor = Math.max(this.floor, at);
    }
  }

  /** True when a descriptor read from storage at clock `since` may be written for this key. */
  mayWrite(repo: string, digest: string, since: number): boolean {
    if (!this.trusts(repo, digest) || since < this.floor) return false;
    return (this.forgets.get(key(repo, digest)) ?? 0) <= since;
  }

  /** An eviction or write of this key failed: stop answering for it until an eviction lands. */
  add(repo: string, digest: string): void {
    this.gen++;
    if (this.all) {
      this.allGen++;
    } else if (this.keys.size >= this.max && !this.keys.has(key(repo, digest))) {
      this.all = true;
      this.allGen++;
      this.keys.clear();
      this.log.info({ max: this.max }, 'blob-descriptor cache: too many lost evictions; not answering from the cache until it is resynced');
    } else {
      if (this.keys.size === 0) this.log.info('blob-descriptor cache: an eviction may have been lost; that blob is answered from storage until it lands');
      this.keys.set(key(repo, digest), this.gen);
    }
    this.schedule();
  }

  /** The cache just answered a call: if evictions are pending behind a backoff, retry them now. */
  answered(): void {
    if (!this.timer || this.delay <= this.retryMs) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.delay = this.retryMs;
    this.schedule();
  }

  /** Stops retrying (the cache is closing). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = true;   // never schedules again
  }

  private schedule(): void {
    if (this.timer || this.running) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.run(); }, this.delay);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.running = true;
    let ok = false;
    try {
      ok = await this.settle();
    } catch (err) {
      this.log.debug({ err }, 'blob-descriptor cache: pending evictions not landed yet; retrying');
      if ((err as { code?: string }).code === 'CACHE_CLOSED') return;   // closing: stay stopped
    }
    this.running = false;
    this.delay = ok ? this.retryMs : Math.min(this.delay * 2, this.maxRetryMs);
    if (this.all || this.keys.size > 0) this.schedule();
  }

  /** One pass; true when everything pending at its start has landed. */
  private async settle(): Promise<boolean> {
    if (this.all) {
      const gen = this.allGen;
      await this.cache.clearAll();
      if (gen !== this.allGen) return false;   // another failure during the scan: again
      this.all = false;
      this.log.info('blob-descriptor cache resynced; answering from the cache again');
    }
    const had = this.keys.size;
    for (const [k, gen] of [...this.keys]) {
      const [repo, digest] = split(k);
      await this.cache.clear(repo, digest);
      if (this.keys.get(k) === gen) this.keys.delete(k);
    }
    if (had > 0 && this.keys.size === 0 && !this.all) this.log.info('blob-descriptor cache: lost evictions landed');
    return true;
  }
}

// Repository names never contain a newline (the distribution name grammar).
const key = (repo: string, digest: string) => `${repo}\n${digest}`;
const split = (k: string): [string, string] => {
  const i = k.indexOf('\n');
  return [k.slice(0, i), k.slice(i + 1)];
};
