// Bounds concurrent password checks. @node-rs/bcrypt verifies on libuv's threadpool (4 threads by
// default), which file I/O shares: a flood of guesses must never take all of it. At most `concurrency`
// checks run at once; a few more wait in FIFO order, at most `perAddress` (running + waiting) per
// client address so one address cannot fill the queue; anything beyond is refused at once (CheckRefusedError;
// the caller answers 429). It never hashes anything itself and holds no credentials.

export interface CheckGateOptions {
  /** Checks running at once (default: half of libuv's pool, UV_THREADPOOL_SIZE, default 4 → 2; the other half
   *  stays free for storage I/O). */
  concurrency?: number;
  /** Checks waiting for a slot, all addresses together (default 16). */
  maxWaiting?: number;
  /** Checks running or waiting from one address (default concurrency + 2). */
  perAddress?: number;
}

/** The check was not run: the address's share or the whole queue is full, or the client left while waiting. */
export class CheckRefusedError extends Error {
  readonly code = 'BERTH_ERR_AUTH_BUSY';
  constructor(readonly reason: 'address' | 'all' | 'gone') {
    super(reason === 'gone' ? 'client went away while waiting for a password check'
      : `too many password checks in progress (${reason === 'all' ? 'all clients' : 'this address'})`);
    this.name = 'CheckRefusedError';
  }
}

interface Waiter { addr: string; start: () => void; cancel: (err: Error) => void; gone: () => boolean }

export class PasswordCheckGate {
  readonly concurrency: number;
  private readonly maxWaiting: number;
  private readonly perAddress: number;
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private readonly byAddr = new Map<string, number>();
  /** Highest number of checks seen running at once (for tests and the startup line). */
  peak = 0;

  constructor(o: CheckGateOptions = {}) {
    this.concurrency = Math.max(1, o.concurrency ?? Math.floor(threadpoolSize() / 2));
    this.maxWaiting = Math.max(0, o.maxWaiting ?? 16);
    this.perAddress = Math.max(1, o.perAddress ?? this.concurrency + 2);
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `check` when a slot is free. Rejects with CheckRefusedError at once when the address or the queue is
   * full, and without running `check` when `gone()` says the client left while it waited.
   */
  async run<T>(addr: string, check: () => Promise<T>, gone: () => boolean = () => false): Promise<T> {
    const mine = this.byAddr.get(addr) ?? 0;
    if (mine >= this.perAddress) throw new CheckRefusedError('address');
    if (this.running >= this.concurrency && this.waiting.length >= this.maxWaiting) throw new CheckRefusedError('all');
    this.byAddr.set(addr, mine + 1);
    try {
      if (this.running < this.concurrency) this.running++;
      else await new Promise<void>((start, cancel) => this.waiting.push({ addr, start, cancel, gone }));
      this.peak = Math.max(this.peak, this.running);
      try {
        return await check();
      } finally {
        this.next();
      }
    } finally {
      const n = (this.byAddr.get(addr) ?? 1) - 1;
      if (n > 0) this.byAddr.set(addr, n); else this.byAddr.delete(addr);
    }
  }

  /** Hands the finished check's slot to the next waiter whose client is still there. */
  private next(): void {
    for (let w = this.waiting.shift(); w; w = this.waiting.shift()) {
      if (w.gone()) { w.cancel(new CheckRefusedError('gone')); continue; }
      w.start();   // the slot passes on: `running` stays the same
      return;
    }
    this.running--;
  }
}

/** libuv's threadpool size as libuv reads it: UV_THREADPOOL_SIZE through atoi, 0 → 1, at most 1024; unset → 4. */
export function threadpoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.UV_THREADPOOL_SIZE;
  if (v === undefined || v === '') return 4;
  const n = parseInt(v, 10) || 0;
  return Math.min(1024, Math.max(1, n));
}
