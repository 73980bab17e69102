// Writer lease: a serving process that may write to storage announces itself with a small file
// `_berth/writer/<host>-<pid>` (heartbeat inside, refreshed every 10 s, removed on release), so
// `berth gc` can refuse to sweep under a live writer. Advisory only: it never blocks the server.
import { hostname } from 'node:os';
import type { Logger } from '../../log/logger.js';
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { deleteIfExists, isNotFound } from './driver-util.js';

export const LEASE_REFRESH_MS = 10_000;
/** A lease whose heartbeat is at least this old is a crashed or killed writer's: ignored. */
export const LEASE_STALE_MS = 30_000;

export interface WriterLease {
  readonly holder: string;
  /** Stops the heartbeat and deletes the lease file. Idempotent; never rejects. */
  release(): Promise<void>;
}

export interface LeaseHolder { holder: string; heartbeat: Date; ageMs: number }

let seq = 0;

/** Holder names are path components: hostname characters outside [A-Za-z0-9._-] become '_'. */
function holderName(): string {
  seq += 1;
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'host';
  return `${host}-${process.pid}${seq > 1 ? `-${seq}` : ''}`;   // several apps in one process (tests)
}

/**
 * Writes the lease now and refreshes it every `refreshMs` on an unref'd timer. Never rejects: a
 * failed write is logged at warn and retried on the next tick (a server must not fail to start on it).
 */
export async function acquireWriterLease(
  driver: StorageDriver, o: { log: Logger; refreshMs?: number; now?: () => Date },
): Promise<WriterLease> {
  const holder = holderName();
  const path = pathFor({ kind: 'writerLease', holder });
  const now = o.now ?? (() => new Date());
  const log = o.log.child({ module: 'writer-lease' });
  const write = () => driver.putContent(path, Buffer.from(JSON.stringify({
    holder, host: hostname(), pid: process.pid, heartbeat: now().toISOString(),
  })));
  await write().catch((err) => { log.warn({ err, holder }, 'could not write the writer lease'); });
  let inflight: Promise<void> | undefined;
  let released = false;
  const timer = setInterval(() => {
    if (inflight) return;
    inflight = write().catch((err) => { log.warn({ err, holder }, 'writer lease refresh failed'); })
      .finally(() => { inflight = undefined; });
  }, o.refreshMs ?? LEASE_REFRESH_MS);
  timer.unref();
  return {
    holder,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await inflight;
      try {
        await deleteIfExists(driver, path);
      } catch (err) {
        log.warn({ err, holder }, 'could not remove the writer lease (it goes stale in 30 s)');
      }
    },
  };
}

/** Leases whose heartbeat is younger than `staleMs` (or in the future: clock skew), oldest first. */
export async function liveWriters(
  driver: StorageDriver, opts: { staleMs?: number; now?: Date } = {}, o?: OpOptions,
): Promise<LeaseHolder[]> {
  const staleMs = opts.staleMs ?? LEASE_STALE_MS;
  const now = (opts.now ?? new Date()).getTime();
  let paths: string[];
  try {
    paths = await driver.list(pathFor({ kind: 'writerLeasesRoot' }), o);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const out: LeaseHolder[] = [];
  for (const p of paths) {
    let heartbeat: Date | undefined;
    try {
      const json = JSON.parse((await driver.getContent(p, o)).toString('utf8')) as { heartbeat?: unknown };
      if (typeof json.heartbeat === 'string' && !Number.isNaN(Date.parse(json.heartbeat))) heartbeat = new Date(json.heartbeat);
    } catch (err) {
      if (isNotFound(err)) continue;   // released meanwhile
      if (!(err instanceof SyntaxError)) throw err;
    }
    if (!heartbeat) {   // garbled (e.g. torn by another tool): trust the file's time instead
      try { heartbeat = (await driver.stat(p, o)).modTime; } catch (err) { if (isNotFound(err)) continue; throw err; }
    }
    const ageMs = now - heartbeat.getTime();
    if (ageMs < staleMs) out.push({ holder: p.slice(p.lastIndexOf('/') + 1), heartbeat, ageMs });
  }
  return out.sort((a, b) => b.ageMs - a.ageMs);
}
