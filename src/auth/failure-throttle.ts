// Slows down repeated authentication failures from one address: after `freeFailures` failures within
// `windowMs`, each further attempt waits an increasing delay (capped). No lockout, bounded memory;
// entries expire with their window. Must not block the event loop (the caller awaits the delay).

export interface FailureThrottleOptions {
  freeFailures?: number;  // default 5
  windowMs?: number;      // default 60 s, counted from the first failure of the window
  baseDelayMs?: number;   // default 250: the 6th attempt waits 250 ms, then 500, 1000, …
  maxDelayMs?: number;    // default 4000
  maxEntries?: number;    // default 10000 addresses; the oldest is evicted first
  now?: () => number;
}

export class FailureThrottle {
  private readonly entries = new Map<string, { count: number; since: number }>();
  private readonly o: Required<Omit<FailureThrottleOptions, 'now'>>;
  private readonly now: () => number;

  constructor(o: FailureThrottleOptions = {}) {
    this.o = {
      freeFailures: o.freeFailures ?? 5, windowMs: o.windowMs ?? 60_000, baseDelayMs: o.baseDelayMs ?? 250,
      maxDelayMs: o.maxDelayMs ?? 4000, maxEntries: Math.max(1, o.maxEntries ?? 10_000),
    };
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Ms to wait before checking a new credential from `addr` (0 when it is in good standing). */
  delayFor(addr: string): number {
    const e = this.live(addr);
    const over = e ? e.count - this.o.freeFailures : -1;
    if (over < 0) return 0;
    return Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(over, 20));
  }

  /** Counts one failure; returns true when this failure is the one that starts the slow-down. */
  recordFailure(addr: string): boolean {
    const e = this.live(addr) ?? { count: 0, since: this.now() };
    e.count++;
    this.entries.delete(addr);
    while (this.entries.size >= this.o.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(addr, e);
    return e.count === this.o.freeFailures;
  }

  private live(addr: string): { count: number; since: number } | undefined {
    const e = this.entries.get(addr);
    if (e && this.now() - e.since >= this.o.windowMs) {
      this.entries.delete(addr);
      return undefined;
    }
    return e;
  }
}
