// The notification hook handed to the router: builds Distribution-format events for push, pull,
// mount and delete, appends them durably to the journal (the only thing a request waits on) and
// wakes one delivery loop per enabled endpoint. `stats()` reports every live endpoint for the debug
// server (/debug/vars, /metrics). It must not call a sink on the request path or decide HTTP statuses,
// and it does not know about auth: `actor` tells it who made a request.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { NotificationsConfig, RegistryConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import { buildEvent, type Action, type Source, type TargetInfo } from './events.js';
import { FileJournal, MemoryJournal, type Journal } from './journal.js';
import { EndpointQueue, type EndpointStats } from './queue.js';
import { redactURL } from './sinks/http.js';

export interface Notifier {
  /** Records one event; resolves once it is durable in the journal (never waits on an endpoint). */
  record(action: Action, target: TargetInfo, req: IncomingMessage): Promise<void>;
  stats(): EndpointStats[];
  /** Stops delivery loops (undelivered events stay in the journal) and closes the journal. Idempotent. */
  close(): Promise<void>;
}

const live = new Set<Notifier>();

/** A fully delivered file journal is emptied once it reaches this size (memory journals: always). */
export const COMPACT_BYTES = 1 << 20;

/** Per-endpoint pending/failure counts of every running registry app in this process (one, outside tests). */
export function stats(): EndpointStats[] {
  return [...live].flatMap((n) => n.stats());
}

/** Where the file journal lives: notifications.journaldirectory, else <rootdirectory>/.notifications. */
export function journalDirectory(cfg: RegistryConfig): string | undefined {
  const n = cfg.notifications;
  if (n?.journaldirectory) return n.journaldirectory;
  const fs = cfg.storage.driver === 'filesystem' ? cfg.storage.filesystem : undefined;
  return fs ? join(fs.rootdirectory, '.notifications') : undefined;
}

export interface NotifierOptions {
  log: Logger;
  source?: Source;
  /** The authenticated user of a request (the event's actor.name); undefined → anonymous (actor {}). */
  actor?: (req: IncomingMessage) => string | undefined;
}

/** undefined when no endpoint is configured and enabled (then handlers record nothing). */
export async function createNotifier(cfg: RegistryConfig, opts: NotifierOptions): Promise<Notifier | undefined> {
  const n: NotificationsConfig | undefined = cfg.notifications;
  const enabled = (n?.endpoints ?? []).filter((e) => !e.disabled);
  if (!n || enabled.length === 0) return undefined;
  const log = opts.log.child({ module: 'notifications' });
  const dir = journalDirectory(cfg);
  const journal: Journal = dir ? await FileJournal.open(dir) : new MemoryJournal();
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
  const disabled: EndpointStats[] = n.endpoints.filter((e) => e.disabled).map((e) => ({
    name: e.name, url: redactURL(e.url), disabled: true, pending: 0, delivered: 0, failures: 0, consecutiveFailures: 0,
    backingOff: false,
  }));
  let closed = false;
  const notifier: Notifier = {
    async record(action, target, req) {
      const ev = buildEvent(action, target, req, source, { includeReferences: n.events.includereferences, user: opts.actor?.(req) });
      await journal.append([Buffer.from(JSON.stringify(ev))]);
      for (const q of queues) q.notify();
    },
    stats: () => [...queues.map((q) => q.stats()), ...disabled],
    async close() {
      if (closed) return;
      closed = true;
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
