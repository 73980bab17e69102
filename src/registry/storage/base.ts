// The checking wrapper every driver goes through (after distribution's storagedriver/base): one path
// pattern for all drivers, the driver name on every driver error, a debug line with the duration of
// each call. It adds no storage semantics of its own, so drivers stay plain.
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../../log/logger.js';
import {
  InvalidOffsetError, InvalidPathError, StorageDriverError,
  type FileInfo, type FileWriter, type OpOptions, type StorageDriver,
} from './driver.js';
import { createObservers } from '../../util/observers.js';

/** One path component: what distribution accepts, minus the "." and ".." names. */
const COMPONENT = /^[A-Za-z0-9._-]+$/;
export const MAX_COMPONENT_LENGTH = 255;   // NAME_MAX on every filesystem we care about
export const MAX_PATH_LENGTH = 4096;       // PATH_MAX on Linux

/** True for a valid absolute driver path; "/" itself only when `allowRoot` (list and walk). */
export function isValidPath(p: unknown, allowRoot = false): p is string {
  if (typeof p !== 'string' || !p.startsWith('/') || p.length > MAX_PATH_LENGTH) return false;
  if (p === '/') return allowRoot;
  const parts = p.slice(1).split('/');
  return parts.every(isValidComponent);
}

/** True for one valid path component (a file or directory name). */
export function isValidComponent(c: string): boolean {
  return c.length <= MAX_COMPONENT_LENGTH && COMPONENT.test(c) && c !== '.' && c !== '..';
}

/**
 * The walk order shared by every driver and by callers that resume a walk (catalog pagination):
 * component-wise, so a directory's whole subtree sorts right after it and before its next sibling
 * ("/a" < "/a/z" < "/a-b"), which is depth-first order with sorted siblings. Same as distribution's
 * lessPath (which sorts "/" before every other byte).
 */
export function comparePaths(a: string, b: string): number {
  const x = a.replaceAll('/', '\0');
  const y = b.replaceAll('/', '\0');
  return x < y ? -1 : x > y ? 1 : 0;
}

/** True when `dir` is a strict ancestor of `p` ("/a" of "/a/b"; "/" of everything else). */
export function isAncestor(dir: string, p: string): boolean {
  if (dir === '/') return p !== '/';
  return p.startsWith(dir + '/');
}

/** One finished driver call, for observers such as metrics (process-wide: every wrapped driver reports). */
export interface StorageCallEvent { driver: string; op: string; durationMs: number; ok: boolean }
const storageCalls = createObservers<StorageCallEvent>();

/** Calls `fn` after every wrapped driver call; returns the function that detaches it. */
export const onStorageCall = storageCalls.on;

function notify(driver: string, op: string, durationMs: number, ok: boolean): void {
  storageCalls.report({ driver, op, durationMs, ok });
}

/** Memory a driver holds for uploads in progress (the S3 driver's part buffers: s3-writer.ts PartBuffers). */
export interface UploadBufferStats {
  /** Buffers held by uploads now, uploads waiting for one, the most at once, and each buffer's bytes. */
  inUse: number; waiting: number; limit: number; size: number;
}

/** Live upload-buffer pools by driver name, read at scrape time by metrics (process-wide, like onStorageCall). */
const bufferPools = new Map<object, { driver: string; pool: WeakRef<{ stats(): UploadBufferStats }> }>();

/** Lists `pool` under `driver` until the returned function is called (or the pool is collected). */
export function addUploadBuffers(driver: string, pool: { stats(): UploadBufferStats }): () => void {
  const key = {};
  bufferPools.set(key, { driver, pool: new WeakRef(pool) });
  return () => { bufferPools.delete(key); };
}

/** The listed pools' numbers, by driver name (pools of one driver summed). */
export function uploadBufferStats(): Map<string, UploadBufferStats> {
  const out = new Map<string, UploadBufferStats>();
  for (const [key, { driver, pool }] of bufferPools) {
    const s = pool.deref()?.stats();
    if (!s) { bufferPools.delete(key); continue; }
    const t = out.get(driver) ?? { inUse: 0, waiting: 0, limit: 0, size: s.size };
    out.set(driver, { inUse: t.inUse + s.inUse, waiting: t.waiting + s.waiting, limit: t.limit + s.limit, size: s.size });
  }
  return out;
}

/**
 * A driver parameter is missing or wrong. `key` is the config path (e.g.
 * `registry.storage.filesystem.rootdirectory`) so config errors can point at it.
 */
export class StorageParameterError extends StorageDriverError {
  constructor(readonly key: string, message: string, driver = '') {
    super('STORAGE_INVALID_PARAMETER', `${key}: ${message}`, driver);
  }
}

/** reader()'s span, checked by every driver the same way: `offset` and `length` (if given) must be
 *  non-negative safe integers, and `offset` at most the file's `size`; InvalidOffsetError names the bad
 *  value. Returns where the read ends: the file's end, or sooner with `length`. */
export function readSpan(p: string, o: { offset?: number; length?: number } | undefined, driver: string): {
  offset: number; end(size: number): number;
} {
  const offset = o?.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidOffsetError(p, offset, driver);
  const length = o?.length;
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) throw new InvalidOffsetError(p, length, driver);
  return {
    offset,
    end(size: number): number {
      if (offset > size) throw new InvalidOffsetError(p, offset, driver);
      return length === undefined ? size : Math.min(size, offset + length);
    },
  };
}

/**
 * Wraps a driver: rejects invalid paths with InvalidPathError before the driver sees them, fails fast
 * on an already-aborted signal, stamps the driver name on every StorageDriverError and logs each call
 * at debug ({ module: 'storage', driver }, op, path, durationMs). `startAfter` of walk() is only a
 * bound for comparison and is never opened, so it is not checked.
 */
export function wrapDriver(driver: StorageDriver, log?: Logger): StorageDriver {
  const name = driver.name;
  const dlog = log?.child({ module: 'storage', driver: name });

  const check = (p: unknown, allowRoot = false): void => {
    if (!isValidPath(p, allowRoot)) throw new InvalidPathError(String(p), name);
  };
  const stamp = (err: unknown): unknown => {
    if (err instanceof StorageDriverError && !err.driver) err.driver = name;
    return err;
  };
  async function call<T>(op: string, path: string, o: OpOptions | undefined, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    let ok = false;
    try {
      o?.signal?.throwIfAborted();
      const r = await fn();
      ok = true;
      return r;
    } catch (err) {
      throw stamp(err);
    } finally {
      const durationMs = performance.now() - start;
      notify(name, op, durationMs, ok);
      dlog?.debug({ op, path, durationMs: Math.round(durationMs * 1000) / 1000 }, 'storage call');
    }
  }
  const wrapWriter = (w: FileWriter, path: string): FileWriter => ({
    get size() { return w.size; },
    get stream() { return w.stream; },
    get version() { return w.version; },
    commit: (o) => call('writer.commit', path, undefined, () => w.commit(o)),
    // cancel must work after an abort: it is how callers clean up, so no signal check here.
    cancel: (o) => call('writer.cancel', path, undefined, () => w.cancel(o)),
    ...(w.close ? { close: (o?: OpOptions) => call('writer.close', path, undefined, () => w.close!(o)) } : {}),
  });

  return {
    name,
    getContent: async (p, o) => { check(p); return call('getContent', p, o, () => driver.getContent(p, o)); },
    putContent: async (p, data, o) => { check(p); return call('putContent', p, o, () => driver.putContent(p, data, o)); },
    reader: async (p, o): Promise<Readable> => { check(p); return call('reader', p, o, () => driver.reader(p, o)); },
    writer: async (p, o) => {
      check(p);
      return wrapWriter(await call('writer', p, o, () => driver.writer(p, o)), p);
    },
    stat: async (p, o) => { check(p); return call('stat', p, o, () => driver.stat(p, o)); },
    list: async (p, o) => { check(p, true); return call('list', p, o, () => driver.list(p, o)); },
    move: async (from, to, o) => {
      check(from); check(to);
      return call('move', `${from} -> ${to}`, o, () => driver.move(from, to, o));
    },
    delete: async (p, o) => { check(p); return call('delete', p, o, () => driver.delete(p, o)); },
    redirectURL: async (p, method) => { check(p); return call('redirectURL', p, undefined, () => driver.redirectURL(p, method)); },
    walk: (p, o) => walkChecked(p, o),
  };

  async function* walkChecked(p: string, o?: OpOptions & { startAfter?: string }): AsyncGenerator<FileInfo> {
    const start = performance.now();
    let count = 0;
    let ok = true;   // a consumer that stops early (break) is not a failure
    try {
      check(p, true);
      o?.signal?.throwIfAborted();
      for await (const fi of driver.walk(p, o)) {
        count++;
        yield fi;
      }
    } catch (err) {
      ok = false;
      throw stamp(err);
    } finally {
      notify(name, 'walk', performance.now() - start, ok);
      dlog?.debug({ op: 'walk', path: p, entries: count, durationMs: Math.round((performance.now() - start) * 1000) / 1000 }, 'storage call');
    }
  }
}

/**
 * Ends a writer's stream and waits until its last write was handled ('finish'), for a writer's commit: a stream
 * already finished or destroyed returns at once, one that failed rethrows its error. (fs-writer.ts keeps its own:
 * its stream is never destroyed before commit, and it ends only a stream not yet ended.)
 */
export async function finishStream(s: Writable): Promise<void> {
  if (s.destroyed || s.writableFinished) return;
  if (s.errored) throw s.errored;
  await new Promise<void>((resolve, reject) => {
    s.once('finish', resolve);
    s.once('error', reject);
    s.end();
  });
}
