// Bounds on open upload sessions per user and per client address (issue 14, point 7), as a repository
// decorator: a POST that would start one more session than allowed gets UploadLimitError (429) before
// anything is stored. It counts what this process started; it stores nothing and never fails a request
// for any other reason. Who asks comes from the request context (util/request-context.ts).
import { currentRequest } from '../../util/request-context.js';
import { UploadLimitError, UploadUnknownError, DigestMismatchError } from './errors.js';
import { forwarding, type RepositoryDecorator } from './repository.js';

export interface UploadLimitOptions {
  /** Open sessions one authenticated user may hold; 0: no bound. */
  peruser: number;
  /** Open sessions one client address may hold (users and anonymous clients together); 0: no bound. */
  peraddress: number;
  /** A session nobody touched for this long (ms) has expired: it stops counting (its files stay for purging). */
  expiry: number;
  /** Retry-After hint (seconds) of the 429. Default 60. */
  retryAfter?: number;
  now?: () => number;
}

interface Holder { user?: string; addr?: string; touched: number }

/**
 * Open sessions of this process, by `<repo>/<id>`. A session counts from its start until it is committed,
 * cancelled, found gone, purged (`ended`), or has been idle for `expiry`. Entries are kept in the order of
 * their last touch, so expiry drops the oldest first and costs only what it drops; the maps hold at most
 * one entry per counted session, and a session is counted only when its holder is under both bounds.
 */
export class UploadSessionLimits {
  private readonly open = new Map<string, Holder>();
  private readonly perUser = new Map<string, number>();
  private readonly perAddr = new Map<string, number>();
  private readonly now: () => number;
  private seq = 0;

  constructor(private readonly o: UploadLimitOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Counted sessions (and reservations of starts in flight). */
  get size(): number { this.expire(); return this.open.size; }

  /** Open sessions of a user and of an address, as counted now. */
  held(who: { user?: string; addr?: string }): { user: number; address: number } {
    this.expire();
    return { user: who.user ? this.perUser.get(who.user) ?? 0 : 0, address: who.addr ? this.perAddr.get(who.addr) ?? 0 : 0 };
  }

  /**
   * Reserves a slot for the caller of the current request (none outside a request: nothing is bounded) and
   * returns its provisional key; throws UploadLimitError when the user or the address is at its bound.
   */
  reserve(): string {
    this.expire();
    const facts = currentRequest();
    const user = facts?.user;
    const addr = facts ? hostOf(facts.addr) : undefined;
    const retry = this.o.retryAfter ?? 60;
    if (user !== undefined && this.o.peruser > 0 && (this.perUser.get(user) ?? 0) >= this.o.peruser) {
      throw new UploadLimitError('user', this.o.peruser, retry);
    }
    if (addr && this.o.peraddress > 0 && (this.perAddr.get(addr) ?? 0) >= this.o.peraddress) {
      throw new UploadLimitError('address', this.o.peraddress, retry);
    }
    const key = `\0pending/${++this.seq}`;
    this.open.set(key, { user, addr: addr || undefined, touched: this.now() });
    if (user !== undefined) bump(this.perUser, user, 1);
    if (addr) bump(this.perAddr, addr, 1);
    return key;
  }

  /** The reservation became session `key` (its slot stays taken). */
  started(pending: string, key: string): void {
    const h = this.open.get(pending);
    if (!h) return;
    this.open.delete(pending);
    this.open.set(key, { ...h, touched: this.now() });
  }

  /** A request worked on the session: it is not idle. */
  touch(key: string): void {
    const h = this.open.get(key);
    if (!h) return;
    this.open.delete(key);
    h.touched = this.now();
    this.open.set(key, h);
  }

  /** The session (or reservation) ended: committed, cancelled, gone, purged. Unknown keys are ignored. */
  ended(key: string): void {
    const h = this.open.get(key);
    if (!h) return;
    this.open.delete(key);
    if (h.user !== undefined) bump(this.perUser, h.user, -1);
    if (h.addr) bump(this.perAddr, h.addr, -1);
  }

  private expire(): void {
    const cutoff = this.now() - this.o.expiry;
    for (const [key, h] of this.open) {
      if (h.touched > cutoff) break;   // touch order: the rest are younger
      this.ended(key);
    }
  }
}

/**
 * The decorator: start (POST) reserves a slot, monolithic upload holds one while it runs; commit, cancel,
 * a digest mismatch (the session is deleted) and UploadUnknownError end the session's count; other calls on
 * it refresh its idle time.
 */
export function limitUploadSessions(limits: UploadSessionLimits): RepositoryDecorator {
  return (inner) => {
    const f = forwarding(inner);
    const u = f.uploads;
    const key = (id: string) => `${inner.name}/${id}`;
    /** Runs op on session id: ends the count when the session is gone or ended, touches it otherwise. */
    const on = async <T>(id: string, op: () => Promise<T>, ends: boolean): Promise<T> => {
      try {
        const r = await op();
        if (ends) limits.ended(key(id)); else limits.touch(key(id));
        return r;
      } catch (err) {
        if (err instanceof UploadUnknownError || err instanceof DigestMismatchError) limits.ended(key(id));
        else limits.touch(key(id));
        throw err;
      }
    };
    return {
      ...f,
      uploads: {
        ...u,
        async start(o) {
          const pending = limits.reserve();
          try {
            const s = await u.start(o);
            limits.started(pending, key(s.id));
            return s;
          } catch (err) {
            limits.ended(pending);
            throw err;
          }
        },
        status: (id, o) => on(id, () => u.status(id, o), false),
        append: (id, c, o) => on(id, () => u.append(id, c, o), false),
        commit: (id, d, c, o) => on(id, () => u.commit(id, d, c, o), true),
        cancel: (id, o) => on(id, () => u.cancel(id, o), true),
        async upload(d, c, o) {
          const pending = limits.reserve();
          try {
            return await u.upload(d, c, o);
          } finally {
            limits.ended(pending);
          }
        },
      },
    };
  };
}

/** The client address without its port (`[::1]:5123` → `::1`, `10.0.0.1:80` → `10.0.0.1`, `::ffff:a.b.c.d` → `a.b.c.d`). */
export function hostOf(addr: string): string {
  let h = addr;
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']') < 0 ? undefined : h.indexOf(']'));
  else if (/^[^:]+:\d+$/.test(h)) h = h.slice(0, h.lastIndexOf(':'));
  return h.startsWith('::ffff:') && h.includes('.') ? h.slice(7) : h;
}

function bump(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n > 0) m.set(k, n); else m.delete(k);
}
