// The notifier: builds Distribution-format events for push, pull, mount and delete, appends them to the
// journal and wakes one delivery loop per enabled endpoint; `stats()` reports every live endpoint for the
// debug server (/debug/vars, /metrics), including the events each endpoint lost to the journal's bounds
// or to a journal that could not take them. Requests reach it only through the repository decorator
// (repository-listener.ts). It never calls a sink on the request path, decides no HTTP status and knows
// nothing of auth or config files: who made a request comes from the request context (actor, addr).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../../log/logger.js';
import { currentRequest } from '../../util/request-context.js';
import { buildEvent, type Action, type Source, type TargetInfo } from './events.js';
import { FileJournal, MemoryJournal, type Journal, type JournalLimits } from './journal.js';
import { EndpointQueue, type EndpointStats } from './queue.js';
import { redactURL } from './sinks/http.js';

export interface Notifier {
  /**
   * Records one event for the current request; resolves once it is durable in the journal (never waits on
   * an endpoint). `background` (pulls, whose caller does not wait): it never rejects; an event the journal
   * cannot take is counted as dropped for every endpoint, with one warning per run of failures.
   */
  record(action: Action, target: TargetInfo, o?: { background?: boolean }): Promise<void>;
  stats(): EndpointStats[];
  /** Stops delivery loops (undelivered events stay in the journal) and closes the journal. Idempotent. */
  close(): Promise<void>;
}

/** One endpoint, in Distribution's terms (notifications.endpoints[]). */
export interface EndpointOptions {
  name: string;
  url: string;
  headers: Record<string, string[]>;
  timeout: number;
  threshold: number;
  backoff: number;
  disabled: boolean;
  ignoredmediatypes: string[];
  ignore: { mediatypes: string[]; actions: string[] };
  signingkey?: string;
}

export interface NotifierOptions {
  endpoints: readonly EndpointOptions[];
  includeReferences: boolean;
  /** Where the file journal lives; undefined → a memory journal (lost on exit). */
  journalDirectory?: string;
  /** Bounds of the journal: the oldest events are dropped past them (counted per endpoint, warned). */
  journalMaxBytes?: number;
  journalMaxAgeMs?: number;
  log: Logger;
  source?: Source;
}

const live = new Set<Notifier>();

/** A fully delivered file journal is emptied once it reaches this size (memory journals: always). */
export const COMPACT_BYTES = 1 << 20;
/** Default bounds of the journal (registry.notifications.journalmaxsize, .journalmaxage). */
export const DEFAULT_JOURNAL_MAX_BYTES = 64 << 20;
export const DEFAULT_JOURNAL_MAX_AGE_MS = 168 * 3600_000;

/** Per-endpoint pending/failure counts of every running registry app in this process (one, outside tests). */
export function stats(): EndpointStats[] {
  return [...live].flatMap((n) => n.stats());
}

/** undefined when no endpoint is configured and enabled (then nothing is recorded). */
export async function createNotifier(opts: NotifierOptions): Promise<Notifier | undefined> {
  const enabled = opts.endpoints.filter((e) => !e.disabled);
  if (enabled.length === 0) return undefined;
  const log = opts.log.child({ module: 'notifications' });
  const dir = opts.journalDirectory;
  const maxAgeMs = opts.journalMaxAgeMs ?? DEFAULT_JOURNAL_MAX_AGE_MS;
  const limits: JournalLimits = {
    maxBytes: opts.journalMaxBytes ?? DEFAULT_JOURNAL_MAX_BYTES, maxAgeMs, readers: enabled.map((e) => e.name),
    onDrop(lost, reason) {
      for (const q of queues) q.dropped(lost.get(q.o.name) ?? 0);
      log.warn({ reason, dropped: Object.fromEntries(lost), maxBytes: limits.maxBytes, maxAgeMs },
        `notification journal full (${reason}): dropped the oldest undelivered events`);
    },
  };
  const journal: Journal = dir ? await FileJournal.open(dir, limits) : new MemoryJournal(limits);
  // Everything delivered to every enabled endpoint (the usual case): start from an empty file.
  if (journal.end() > 0 && enabled.every((e) => journal.offset(e.name) === journal.end())) await journal.compact();
  const source: Source = opts.source ?? { addr: hostname(), instanceID: randomUUID() };
  const compact = () => journal.compactIfIdle(() => queues.every((q) => journal.offset(q.o.name) === journal.end()), COMPACT_BYTES);
  const queues: EndpointQueue[] = enabled.map((e) => new EndpointQueue({
    name: e.name, url: e.url, headers: e.headers, timeout: e.timeout, signingkey: e.signingkey,
    threshold: e.threshold, backoff: e.backoff,
    ignoredMediaTypes: new Set([...e.ignoredmediatypes, ...e.ignore.mediatypes]),
    ignoredActions: new Set(e.ignore.actions),
  }, journal, log, compact));
  const disabled: EndpointStats[] = opts.endpoints.filter((e) => e.disabled).map((e) => ({
    name: e.name, url: redactURL(e.url), disabled: true, pending: 0, delivered: 0, dropped: 0, failures: 0, consecutiveFailures: 0,
    backingOff: false,
  }));
  let closed = false;
  let failing = false;   // a run of background events the journal could not take (warned once per run)
  const record = async (action: Action, target: TargetInfo) => {
    const ev = buildEvent(action, target, currentRequest(), source, { includeReferences: opts.includeReferences });
    await journal.append([Buffer.from(JSON.stringify(ev))]);
    for (const q of queues) q.notify();
  };
  // Entries past maxage go even while nobody appends.
  const expiry = setInterval(() => { void journal.expire().catch(() => undefined); }, Math.min(Math.max(maxAgeMs / 4, 1000), 60_000));
  expiry.unref();
  const notifier: Notifier = {
    record(action, target, o) {
      if (!o?.background) return record(action, target);
      return record(action, target).then(() => {
        if (failing) log.info('notification journal takes events again');
        failing = false;
      }, (err: unknown) => {
        for (const q of queues) q.dropped(1);
        if (!failing) log.warn({ err, action, repository: target.repository }, 'notification journal cannot take events; dropping pull events until it can');
        failing = true;
      }).catch(() => undefined);
    },
    stats: () => [...queues.map((q) => q.stats()), ...disabled],
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(expiry);
      live.delete(notifier);
      await Promise.all(queues.map((q) => q.close()));
      await journal.close();
    },
  };
  live.add(notifier);
  for (const q of queues) q.start();
  log.info({ endpoints: enabled.map((e) => e.name), journal: dir ?? 'memory' }, 'notifications enabled');
  return notifier;
}
