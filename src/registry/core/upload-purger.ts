// Upload purging (distribution's storage.maintenance.uploadpurging): deletes upload sessions that
// started before a cut-off, on a jittered timer. It only deletes `_uploads/<id>` directories and
// must not touch blobs, manifests or tags; errors are logged per upload and never stop a run.
import type { Logger } from '../../log/logger.js';
import { PathNotFoundError, type OpOptions, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

const HOUR = 3600_000;
const MAX_TIMER = 2 ** 31 - 1;   // setTimeout's limit (~24.8 days)

const lastComponent = (p: string) => p.slice(p.lastIndexOf('/') + 1);
/** The per-repository directory holding upload sessions (`_uploads`), as paths.ts names it. */
const UPLOADS = lastComponent(pathFor({ kind: 'uploadsRoot', name: 'x' }));

export interface PurgeOptions extends OpOptions {
  olderThan: Date;
  dryRun: boolean;
  log: Logger;
  /**
   * What must be older than `olderThan`: `started` (default, Distribution's purge: the session's start time) or
   * `modified` (`berth gc`: the newest modification time of the session's directory and anything in it, so a
   * session a request is still writing to is never taken, however long ago it started).
   */
  by?: 'started' | 'modified';
  onPurged?: (repo: string, id: string) => void;
}

/**
 * Deletes every upload under every repository whose start time is before `olderThan`. The start
 * time is `_uploads/<id>/startedat` (RFC 3339, written when the upload began); when it is missing or
 * unreadable, the upload directory's modTime stands in. With `dryRun` nothing is deleted, and
 * `deleted` lists what would have been. Returns the upload directories' driver paths. `onPurged` hears of
 * each session deleted (not in a dry run), e.g. to stop counting it (core/upload-limits.ts).
 */
export async function purgeUploads(
  driver: StorageDriver,
  { olderThan, dryRun, log, signal, onPurged, by = 'started' }: PurgeOptions,
): Promise<{ deleted: string[]; sessions: { repository: string; id: string }[] }> {
  const deleted: string[] = [];
  const sessions: { repository: string; id: string }[] = [];
  const o: OpOptions = { signal };
  const visit = async (name: string): Promise<void> => {
    const children = await listNames(driver, name === '' ? pathFor({ kind: 'repositoriesRoot' }) : pathFor({ kind: 'repository', name }), o);
    if (children === null) return;
    if (name !== '' && children.includes(UPLOADS)) await purgeRepository(name);
    for (const c of children) {
      if (!c.startsWith('_')) await visit(name === '' ? c : `${name}/${c}`);
    }
  };
  const purgeRepository = async (name: string): Promise<void> => {
    const ids = await listNames(driver, pathFor({ kind: 'uploadsRoot', name }), o);
    for (const id of ids ?? []) {
      signal?.throwIfAborted();
      const dir = pathFor({ kind: 'upload', name, id });
      try {
        const started = by === 'started' ? await startedAt(driver, name, id, o) : await lastModified(driver, name, id, o);
        if (started === null || started >= olderThan) continue;
        if (!dryRun) {
          await driver.delete(dir, o).catch((err) => { if (!(err instanceof PathNotFoundError)) throw err; });
          onPurged?.(name, id);
        }
        deleted.push(dir);
        sessions.push({ repository: name, id });
        log.info({ repo: name, uploadId: id, [by === 'started' ? 'startedAt' : 'modifiedAt']: started.toISOString(), dryRun },
          dryRun ? 'would purge upload' : 'purged upload');
      } catch (err) {
        if (signal?.aborted) throw err;
        log.warn({ err, repo: name, uploadId: id }, 'upload purge failed for one upload');
      }
    }
  };
  await visit('');
  return { deleted, sessions };
}

/**
 * Starts purging in the background: the first run after a random delay of up to min(interval, 1h)
 * (so a fleet restarted together does not purge in lockstep), then every `interval`. Uploads older
 * than `age` go. stop() cancels the timer and aborts a run in progress; it is idempotent. Timers are
 * unref'd, so they never keep the process alive. `random`, `now` and `onRun` are for tests.
 */
/** storage.maintenance.uploadpurging, in milliseconds. */
export interface UploadPurgingOptions {
  enabled: boolean;
  /** Sessions started longer ago than this are removed. */
  age: number;
  interval: number;
  dryrun: boolean;
}

export function startUploadPurger(
  driver: StorageDriver, cfg: UploadPurgingOptions, log: Logger,
  opts: {
    random?: () => number; now?: () => number; onRun?: (r: { deleted: string[] } | Error) => void;
    /** Hears of each session purged (not in a dry run). */
    onPurged?: (repo: string, id: string) => void;
  } = {},
): { stop(): void } {
  const plog = log.child({ module: 'upload-purger' });
  if (!cfg.enabled) return { stop() {} };
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;

  const schedule = (ms: number) => {
    if (ac.signal.aborted) return;
    timer = setTimeout(run, Math.min(Math.max(0, ms), MAX_TIMER));
    timer.unref();
  };
  const run = async () => {
    const olderThan = new Date(now() - cfg.age);
    let result: { deleted: string[] } | Error;
    try {
      result = await purgeUploads(driver, { olderThan, dryRun: cfg.dryrun, log: plog, signal: ac.signal, onPurged: opts.onPurged });
      plog.info({ purged: result.deleted.length, dryRun: cfg.dryrun, olderThan: olderThan.toISOString() }, 'upload purge done');
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err));
      if (!ac.signal.aborted) plog.error({ err }, 'upload purge failed');
    }
    opts.onRun?.(result);
    schedule(cfg.interval);
  };

  const first = Math.floor(random() * Math.min(cfg.interval, HOUR));
  plog.info({ firstRunInMs: first, intervalMs: cfg.interval, ageMs: cfg.age, dryRun: cfg.dryrun }, 'upload purging scheduled');
  schedule(first);
  return {
    stop() {
      ac.abort();
      if (timer) clearTimeout(timer);
    },
  };
}

/** The newest modTime of the upload's directory and everything below it; null when the upload is gone. */
async function lastModified(driver: StorageDriver, name: string, id: string, o: OpOptions): Promise<Date | null> {
  const dir = pathFor({ kind: 'upload', name, id });
  try {
    let latest = (await driver.stat(dir, o)).modTime;
    for await (const f of driver.walk(dir, o)) if (f.modTime > latest) latest = f.modTime;
    // A closed, uncommitted writer (S3's open multipart upload) is not in walk(): its last write counts too.
    const data = await driver.stat(pathFor({ kind: 'uploadData', name, id }), { ...o, pending: true }).catch((err) => {
      if (err instanceof PathNotFoundError) return undefined;
      throw err;
    });
    if (data && data.modTime > latest) latest = data.modTime;
    return latest;
  } catch (err) {
    if (err instanceof PathNotFoundError) return null;
    throw err;
  }
}

/** The upload's start time, or its directory's modTime; null when the upload is gone. */
async function startedAt(driver: StorageDriver, name: string, id: string, o: OpOptions): Promise<Date | null> {
  try {
    const t = parseRfc3339((await driver.getContent(pathFor({ kind: 'uploadStartedAt', name, id }), o)).toString('utf8'));
    if (t) return t;
  } catch (err) {
    if (!(err instanceof PathNotFoundError)) throw err;
  }
  try {
    return (await driver.stat(pathFor({ kind: 'upload', name, id }), o)).modTime;
  } catch (err) {
    if (err instanceof PathNotFoundError) return null;
    throw err;
  }
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** RFC 3339 (Go's time.RFC3339 and RFC3339Nano, as registry:2 writes) to a Date; null if invalid. */
export function parseRfc3339(text: string): Date | null {
  const m = RFC3339.exec(text.trim());
  if (!m) return null;
  const frac = m[3] ? m[3].slice(0, 4).padEnd(4, '0') : '';   // ms precision is plenty
  const d = new Date(`${m[1]}T${m[2]}${frac}${m[4].toUpperCase()}`);
  return Number.isNaN(d.getTime()) ? null : d;
}

async function listNames(driver: StorageDriver, dir: string, o: OpOptions): Promise<string[] | null> {
  try {
    return (await driver.list(dir, o)).map(lastComponent);
  } catch (err) {
    if (err instanceof PathNotFoundError) return null;
    throw err;
  }
}
