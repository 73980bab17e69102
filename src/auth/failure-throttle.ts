// Budgets for wrong passwords, keyed by client address AND user (one user's typos never slow the other
// users behind the same NAT) and by address alone (spraying many user names). Past a budget, further
// attempts of that key are refused without hashing until a backoff has passed (the caller answers 429
// with Retry-After); no server-side sleeps, no lockout, bounded memory, entries expire with their window.
import { createHash } from 'node:crypto';

export interface FailureThrottleOptions {
  /** Failures of one user from one address free per window (default 5). */
  freeFailures?: number;
  /** Failures from one address, all users together, free per window (default 30). */
  addressFreeFailures?: number;
  windowMs?: number;      // default 60 s, counted from the first failure of the window
  baseDelayMs?: number;   // default 250: after the budget, the next attempt may come 250 ms after the last failure, then 500, …
  maxDelayMs?: number;    // default 4000
  maxEntries?: number;    // default 10000 per table (pairs, addresses); the oldest is evicted first
  now?: () => number;
}

interface Entry { count: number; since: number; last: number; goodUntil: number }

/** Which budgets a failure just spent (for one log line per slow-down), or null. One failure can spend both (the
 *  user's fifth from an address that had 29 others): then both slow-downs start, and both are said. */
export type ThrottleStart = 'user' | 'address' | 'both' | null;

export class FailureThrottle {
  private readonly pairs = new Map<string, Entry>();
  private readonly addrs = new Map<string, Entry>();
  private readonly o: Required<Omit<FailureThrottleOptions, 'now'>>;
  private readonly now: () => number;

  constructor(o: FailureThrottleOptions = {}) {
    this.o = {
      freeFailures: o.freeFailures ?? 5, addressFreeFailures: o.addressFreeFailures ?? 30,
      windowMs: o.windowMs ?? 60_000, baseDelayMs: o.baseDelayMs ?? 250,
      maxDelayMs: o.maxDelayMs ?? 4000, maxEntries: Math.max(1, o.maxEntries ?? 10_000),
    };
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.pairs.size + this.addrs.size;
  }

  /**
   * Ms until a credential of `user` from `addr` may be checked (0: now). The address budget does not
   * apply to a user who logged in from that address within the window (a neighbour's spraying does not
   * lock them out); `user` is undefined for a header that names none.
   */
  retryAfterMs(addr: string, user?: string): number {
    const now = this.now();
    const pair = user === undefined ? undefined : this.live(this.pairs, pairKey(addr, user), now);
    let wait = this.waitOf(pair, this.o.freeFailures, now);
    if (!(pair && pair.goodUntil > now)) wait = Math.max(wait, this.waitOf(this.live(this.addrs, addr, now), this.o.addressFreeFailures, now));
    return wait;
  }

  /** Counts one failure of `user` (if known) from `addr`; says which budget this failure used up, if any. */
  recordFailure(addr: string, user?: string): ThrottleStart {
    const now = this.now();
    const address = this.bump(this.addrs, addr, now).count === this.o.addressFreeFailures;
    const forUser = user !== undefined && this.bump(this.pairs, pairKey(addr, user), now).count === this.o.freeFailures;
    return forUser && address ? 'both' : forUser ? 'user' : address ? 'address' : null;
  }

  /** A verified password: the user's failures from this address are forgiven, and for the window the
   *  address's budget no longer applies to this user. */
  recordSuccess(addr: string, user: string): void {
    const now = this.now();
    this.put(this.pairs, pairKey(addr, user), { count: 0, since: now, last: 0, goodUntil: now + this.o.windowMs });
  }

  private waitOf(e: Entry | undefined, free: number, now: number): number {
    const over = e ? e.count - free : -1;
    if (over < 0) return 0;
    const delay = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(over, 20));
    return Math.max(0, e!.last + delay - now);
  }

  private bump(m: Map<string, Entry>, key: string, now: number): Entry {
    const e = this.live(m, key, now) ?? { count: 0, since: now, last: now, goodUntil: 0 };
    e.count++;
    e.last = now;
    this.put(m, key, e);
    return e;
  }

  private put(m: Map<string, Entry>, key: string, e: Entry): void {
    m.delete(key);
    while (m.size >= this.o.maxEntries) m.delete(m.keys().next().value!);
    m.set(key, e);
  }

  /** The entry, unless its window has passed (a success starts a window too, so good standing ends with it). */
  private live(m: Map<string, Entry>, key: string, now: number): Entry | undefined {
    const e = m.get(key);
    if (e && now - e.since >= this.o.windowMs) {
      m.delete(key);
      return undefined;
    }
    return e;
  }
}

/** Addresses contain no space, so the first space separates the two parts unambiguously. The user name is
 *  hashed: a name the table does not know is often a password typed into the wrong field. */
function pairKey(addr: string, user: string): string {
  return addr + ' ' + createHash('sha256').update(user).digest('base64');
}
