// One endpoint's ordered delivery loop over the shared journal: read from the endpoint's offset,
// skip filtered events, POST a batch, retry the head batch until it succeeds (backing off after
// `threshold` consecutive failures), then advance the offset. It drops nothing itself but unreadable
// entries (the journal's bounds drop events; a batch they cut into while it was retried is read again);
// it never blocks a request, survives journal errors (retrying after a pause) and stops only on close().
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../log/logger.js';
import type { Event } from './events.js';
import type { Journal } from './journal.js';
import { deliver, redactURL, type HttpSinkOptions } from './sinks/http.js';

export interface EndpointOptions extends HttpSinkOptions {
  name: string;
  threshold: number;
  backoff: number;                       // ms
  ignoredMediaTypes: ReadonlySet<string>;
  ignoredActions: ReadonlySet<string>;
  /** Events per envelope (default 32). */
  batch?: number;
}

/** One endpoint as /debug/vars and /metrics show it. Times are ISO 8601; `url` has its password redacted. */
export interface EndpointStats {
  name: string; url: string; disabled: boolean;
  pending: number;                       // journal entries not yet delivered (or skipped) to this endpoint
  delivered: number;                     // events accepted by the endpoint (since this process started)
  dropped: number;                       // events this endpoint will never get: the journal's bounds, or not journaled
  failures: number;                      // failed delivery attempts (one per POST)
  consecutiveFailures: number;           // failed attempts since the last success (0 when healthy)
  lastError?: string; lastErrorAt?: string; lastSuccessAt?: string;
  /** True while waiting `backoff` after `threshold` consecutive failures; nextRetryAt says until when. */
  backingOff: boolean; nextRetryAt?: string;
}

interface Counters {
  delivered: number; dropped: number; failures: number; consecutiveFailures: number;
  lastError?: string; lastErrorAt?: string; lastSuccessAt?: string; nextRetryAt?: string;
}

export class EndpointQueue {
  private wake?: () => void;
  private readonly ac = new AbortController();
  private running?: Promise<void>;
  private readonly counters: Counters = { delivered: 0, dropped: 0, failures: 0, consecutiveFailures: 0 };

  constructor(
    readonly o: EndpointOptions, private readonly journal: Journal, private readonly log: Logger,
    /** Called after this endpoint's offset reached the end of the journal (compaction hook). */
    private readonly caughtUp: () => Promise<void> = async () => {},
  ) {}

  start(): void { this.running ??= this.loop().catch((err) => this.log.error({ err, endpoint: this.o.name }, 'notification loop failed')); }

  /** Called after each durable append. */
  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Counts events this endpoint lost (the journal dropped them, or could not take them). */
  dropped(n: number): void { this.counters.dropped += n; }

  stats(): EndpointStats {
    const { nextRetryAt, ...c } = this.counters;
    return {
      name: this.o.name, url: redactURL(this.o.url), disabled: false,
      pending: this.journal.countAfter(this.journal.offset(this.o.name)),
      ...c, backingOff: nextRetryAt !== undefined, ...(nextRetryAt ? { nextRetryAt } : {}),
    };
  }

  async close(): Promise<void> {
    this.ac.abort();
    this.notify();
    await this.running;
  }

  /** One step at a time; a journal error (e.g. a full disk for the offsets) pauses, then goes on. */
  private async loop(): Promise<void> {
    const signal = this.ac.signal;
    let failing = false;
    while (!signal.aborted) {
      try {
        if (!(await this.step(signal))) return;
        failing = false;
      } catch (err) {
        if (signal.aborted) return;
        if (!failing) this.log.warn({ err, endpoint: this.o.name }, 'notification journal error; delivery pauses and retries');
        failing = true;
        try { await sleep(Math.max(this.o.backoff, 100), undefined, { signal }); } catch { return; }
      }
    }
  }

  /** Reads, delivers and records one batch (or waits for one); false once closed. */
  private async step(signal: AbortSignal): Promise<boolean> {
    {   // one batch
      const from = this.journal.offset(this.o.name);
      const entries = await this.journal.read(from, this.o.batch ?? 32);
      if (entries.length === 0) {
        await new Promise<void>((r) => {
          this.wake = r;
          if (this.journal.countAfter(this.journal.offset(this.o.name)) > 0 || signal.aborted) r();
        });
        return true;
      }
      const last = entries[entries.length - 1].end;
      const kept = entries.filter((e) => this.keep(e.line));
      if (kept.length > 0) {
        const lines = kept.map((e) => e.line);
        const body = Buffer.concat([Buffer.from('{"events":['), ...lines.flatMap((l, i) => (i ? [Buffer.from(','), l] : [l])), Buffer.from(']}')]);
        const done = await this.deliverUntilDone(body, signal, from);
        if (done === 'closed') return false;
        if (done === 'stale') return true;   // the journal dropped some of the batch: read again from what is kept
        this.counters.delivered += kept.length;
        // Dropped by the journal while this POST was on its way, yet delivered: not lost after all.
        const base = this.journal.offset(this.o.name);
        this.counters.dropped -= Math.min(this.counters.dropped, kept.filter((e) => e.end <= base).length);
      }
      await this.journal.setOffset(this.o.name, last);
      if (this.journal.countAfter(this.journal.offset(this.o.name)) === 0) await this.caughtUp();
      return true;
    }
  }

  /** Retries the head batch (read at `from`) until it is delivered, closed, or stale: the journal's bounds
   *  dropped some of it meanwhile (counted in `dropped` already), so it must be read again. */
  private async deliverUntilDone(body: Buffer, signal: AbortSignal, from: number): Promise<'delivered' | 'closed' | 'stale'> {
    for (;;) {
      if (signal.aborted) return 'closed';
      if (this.journal.offset(this.o.name) > from) return 'stale';
      try {
        await deliver(this.o, body, signal);
        if (this.counters.consecutiveFailures > 0) this.log.info({ endpoint: this.o.name }, 'notification endpoint recovered');
        this.counters.consecutiveFailures = 0;
        this.counters.lastSuccessAt = new Date().toISOString();
        return 'delivered';
      } catch (err) {
        if (signal.aborted) return 'closed';
        this.counters.failures++;
        this.counters.consecutiveFailures++;
        this.counters.lastError = (err as Error).message;
        this.counters.lastErrorAt = new Date().toISOString();
        if (this.counters.consecutiveFailures === 1) {
          this.log.warn({ endpoint: this.o.name, err: (err as Error).message }, 'notification delivery failed; retrying');
        }
        const wait = this.counters.consecutiveFailures >= this.o.threshold ? this.o.backoff : 0;
        if (wait > 0) this.counters.nextRetryAt = new Date(Date.now() + wait).toISOString();
        try {
          await (wait > 0 ? sleep(wait, undefined, { signal }) : new Promise((r) => setImmediate(r)));
        } catch {
          return 'closed';
        } finally {
          this.counters.nextRetryAt = undefined;
        }
      }
    }
  }

  /** False for filtered events, and for an entry that is not an event (counted as dropped). */
  private keep(line: Buffer): boolean {
    let e: Event;
    try {
      e = JSON.parse(line.toString('utf8')) as Event;
      if (!e || typeof e !== 'object' || !e.target) throw new Error('not an event');
    } catch {
      this.counters.dropped++;
      this.log.warn({ endpoint: this.o.name }, 'unreadable notification journal entry skipped');
      return false;
    }
    if (this.o.ignoredActions.has(e.action)) return false;
    const mt = e.target.mediaType;
    return !(mt && this.o.ignoredMediaTypes.has(mt));
  }
}
