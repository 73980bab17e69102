// The storage seam (after distribution's StorageDriver): a small path-based interface that knows
// nothing about registries. Drivers never import registry/core; paths.ts is the only file that
// knows which paths mean what.
import type { Readable, Writable } from 'node:stream';

export interface OpOptions { signal?: AbortSignal }

export interface FileInfo {
  path: string; size: number; modTime: Date; isDir: boolean;
  /** Only from stat(p, { pending: true }): the size includes a closed, uncommitted writer's content (S3's open
   *  multipart upload), which reader()/getContent() do not see until a writer(p, { append: true }) commits. */
  pending?: boolean;
  /** Only from stat(p, { pending: true }), where the driver can tell: a token of the content (S3: the ETags of
   *  the parts and the tail, or the object's). Equal tokens mean equal content; see FileWriter.version. */
  version?: string;
}

/**
 * A writer for one path. Feed `stream` with stream.pipeline; ending the stream only flushes.
 * Content becomes visible to reader()/getContent()/stat() only after commit() resolves.
 * Exactly one of commit() or cancel() ends a writer; cancel() after commit() is a no-op and
 * cancel() may be called twice. With `append`, `size` starts at the bytes already committed.
 */
export interface FileWriter {
  readonly size: number;
  readonly stream: Writable;
  commit(o?: OpOptions): Promise<void>;
  cancel(o?: OpOptions): Promise<void>;
  /**
   * Distribution's Close: persists what was written so that writer(p, { append: true }), in any process,
   * continues from `size`, without necessarily making it visible (S3: the multipart upload stays open). Ends the
   * writer like commit(). Absent where committing is as cheap (filesystem, inmemory): callers then commit().
   */
  close?(o?: OpOptions): Promise<void>;
  /**
   * Where the driver can tell (S3), the token of the content this writer started from (once open) and, after
   * close() or commit(), of the content it left, in the form stat(p, { pending: true }) reports. Several
   * processes may append to one path: a caller that keeps state about the content (upload.ts's running hash)
   * trusts it only while the token it recorded is still the path's. Undefined: no token (filesystem, inmemory).
   */
  readonly version?: string;
}

/**
 * Paths are absolute ("/docker/registry/v2/..."), components match [A-Za-z0-9._-]+ (checked by base.ts).
 * - getContent/putContent are for small objects; putContent is atomic (readers see old or new, never half).
 * - reader() with offset beyond size throws InvalidOffsetError; a missing path throws PathNotFoundError.
 *   With `length` it ends after that many bytes (sooner if the file is shorter): a Range GET reads only
 *   what it sends.
 * - list() returns the full paths of the direct children of a directory, sorted; missing → PathNotFoundError.
 * - move() replaces the destination atomically, creating parents; missing source → PathNotFoundError.
 * - delete() is recursive; a missing path → PathNotFoundError.
 * - walk() yields every file and directory below path in lexical order of full path, depth first,
 *   starting strictly after `startAfter` when given.
 * - redirectURL() returns null when the driver cannot redirect (filesystem, inmemory).
 */
export interface StorageDriver {
  readonly name: string;
  getContent(path: string, o?: OpOptions): Promise<Buffer>;
  putContent(path: string, data: Uint8Array, o?: OpOptions): Promise<void>;
  reader(path: string, o?: OpOptions & { offset?: number; length?: number }): Promise<Readable>;
  /** `sizeHint`: the bytes the caller expects to write (a declared Content-Length), for a driver that sizes its
   *  parts by it (S3); the writer still takes more or fewer. `from` (with `append`): what stat(path, { pending:
   *  true }) returned earlier in the same operation, nothing written to the path since; a driver that had to ask
   *  the store for it (S3: the multipart upload, its parts, the tail) continues from that instead of asking again.
   *  Used once: a second writer from the same FileInfo asks the store. Drivers without such state ignore it. */
  writer(path: string, o?: OpOptions & { append?: boolean; sizeHint?: number; from?: FileInfo }): Promise<FileWriter>;
  /** With `pending`, a file that exists only as a closed, uncommitted writer is reported too (FileInfo.pending).
   *  With `file`, the caller wants a file only: where no file is at `path` the driver may throw PathNotFoundError
   *  without telling whether a directory is there (S3 then skips the listing that would tell it). */
  stat(path: string, o?: OpOptions & { pending?: boolean; file?: boolean }): Promise<FileInfo>;
  list(path: string, o?: OpOptions): Promise<string[]>;
  move(from: string, to: string, o?: OpOptions): Promise<void>;
  delete(path: string, o?: OpOptions): Promise<void>;
  redirectURL(path: string, method: 'GET' | 'HEAD'): Promise<string | null>;
  walk(path: string, o?: OpOptions & { startAfter?: string }): AsyncIterable<FileInfo>;
}

/** Base of every driver error; `code` is stable, callers check it (or instanceof), never the message. */
export class StorageDriverError extends Error {
  constructor(readonly code: string, message: string, public driver = '', options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
export class PathNotFoundError extends StorageDriverError {
  constructor(readonly path: string, driver = '', options?: { cause?: unknown }) {
    super('STORAGE_PATH_NOT_FOUND', `path not found: ${path}`, driver, options);
  }
}
export class InvalidPathError extends StorageDriverError {
  constructor(readonly path: string, driver = '') {
    super('STORAGE_INVALID_PATH', `invalid path: ${JSON.stringify(path)}`, driver);
  }
}
export class InvalidOffsetError extends StorageDriverError {
  constructor(readonly path: string, readonly offset: number, driver = '') {
    super('STORAGE_INVALID_OFFSET', `invalid offset ${offset} for ${path}`, driver);
  }
}
export class UnsupportedError extends StorageDriverError {
  constructor(what: string, driver = '') {
    super('STORAGE_UNSUPPORTED', `unsupported: ${what}`, driver);
  }
}
/**
 * The backend cannot be reached or failed (network error, timeout, 5xx after retries, refused credentials):
 * the operation may succeed later. The API answers 503 UNAVAILABLE; nothing was made visible.
 */
export class StorageUnavailableError extends StorageDriverError {
  constructor(message: string, driver = '', options?: { cause?: unknown }) {
    super('STORAGE_UNAVAILABLE', message, driver, options);
  }
}
