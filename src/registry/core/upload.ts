// Blob upload sessions (Distribution's blobWriter): bytes are appended to `_uploads/<id>/data`,
// hashed while streaming, verified at commit and then moved atomically into the content-addressed
// store and linked into the repository. Must not trust in-memory state blindly: after a restart (or
// when another process appended) the stored bytes are re-hashed at commit, as Distribution does.
//
// Concurrency: one in-process async lock per upload id (UploadStates.locked). Several *processes* sharing
// a store are serialised per upload id only by the redis upload lock (core/upload-lock.ts, with registry.redis):
// without it, two PATCHes of one session at one offset in two processes both write, and a process whose running
// hash covers the stored size trusts it at commit even if the other's bytes replaced some of its parts.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FileInfo, FileWriter, OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { blobDataPath, type BlobStore } from './blob-store.js';
import { HashingWriter, type Algorithm, type Digest } from './digest.js';
import { contentIfExists, deleteIfExists, fileIfExists, isNotFound, sizeIfExists } from './driver-util.js';
import {
  ClientDisconnectError, DigestMismatchError, isDisconnect, RegistryError, SizeInvalidError, UploadRangeError, UploadUnknownError,
} from './errors.js';
import type { BlobDescriptor, Chunk, UploadStatus, Uploads } from './repository.js';
import { reportUploadCommit, uploadObserved as observed } from './upload-calls.js';
import { Recent } from '../../util/recent.js';

/** Upload ids are ours (UUIDs) or registry:2's (UUIDs); anything else can't name a session. */
const UPLOAD_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** A running hash of the first `size` bytes of a session, and the storage's token of that content when the driver
 *  gives one (FileWriter.version: S3's part ETags). The hash is trusted only while the session still holds `size`
 *  bytes and, past 0 bytes, the same token: a replica that appended meanwhile, even at the same offset and to the
 *  same size, changed the token, and the stored bytes are hashed again at commit instead. */
interface HashState { size: number; algorithm: Algorithm; hash: Hash; version?: string }

/** Whether `st` describes the content stored now (`size` bytes, token `version`). */
function current(st: HashState | undefined, size: number, version: string | undefined): st is HashState {
  return !!st && st.size === size && (size === 0 || st.version === version);
}

/** How many sessions UploadStates remembers hashes and start times of (least recently used forgotten first;
 *  a start time is ~100 bytes, a running hash ~0.5 KiB). Forgetting is always safe: commit re-hashes. */
const MAX_ENTRIES = 10_000;
/** A session nobody touched for this long is forgotten (its hash and start time; storage keeps the session). */
const IDLE_MS = 3600_000;

/**
 * Process-wide running hashes, start times and per-upload locks, keyed by "<repo>/<id>". Bounded: entries of
 * sessions idle for an hour (abandoned, purged, expired) are dropped, and never more than MAX_ENTRIES are kept;
 * locks exist only while held or awaited.
 */
export class UploadStates {
  private readonly hashes: Recent<HashState>;
  private readonly starts: Recent<Date>;
  private readonly locks = new Map<string, Promise<void>>();
  /** Housekeeping that runs after a response (later()); idle() waits for it. */
  private readonly behind = new Set<Promise<void>>();

  constructor(o: { max?: number; idleMs?: number; now?: () => number } = {}) {
    const now = o.now ?? Date.now;
    this.hashes = new Recent(o.max ?? MAX_ENTRIES, o.idleMs ?? IDLE_MS, now);
    this.starts = new Recent(o.max ?? MAX_ENTRIES, o.idleMs ?? IDLE_MS, now);
  }

  get(key: string): HashState | undefined { return this.hashes.get(key); }
  set(key: string, s: HashState): void { this.hashes.set(key, s); }
  drop(key: string): void { this.hashes.delete(key); }

  /** The `startedat` of a session this process started or resumed (saves reading it on every PATCH). */
  startedAt(key: string): Date | undefined { return this.starts.get(key); }
  rememberStart(key: string, d: Date): void { this.starts.set(key, d); }
  /** Forgets everything about a session (committed, cancelled or found gone). */
  forget(key: string): void { this.hashes.delete(key); this.starts.delete(key); }

  /** Entries held: running hashes, start times, locks (tests; all bounded). */
  get sizes(): { hashes: number; starts: number; locks: number } {
    return { hashes: this.hashes.size, starts: this.starts.size, locks: this.locks.size };
  }

  /**
   * Starts fn without anyone waiting for it: housekeeping a response need not wait for. A failure is dropped (what
   * it leaves behind is the upload purger's). idle() waits for all of it (shutdown).
   */
  later(fn: () => Promise<void>): void {
    const p: Promise<void> = fn().catch(() => undefined).finally(() => this.behind.delete(p));
    this.behind.add(p);
  }

  /** Resolves once the work later() started has ended (also work it started meanwhile, up to a few rounds). */
  async idle(): Promise<void> {
    for (let round = 0; round < 8 && this.behind.size > 0; round++) await Promise.allSettled([...this.behind]);
  }

  /** Runs fn with the lock for key held; callers queue in FIFO order. */
  async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const tail = prev.then(() => mine);
    this.locks.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

export class UploadStore implements Uploads {
  constructor(
    private readonly driver: StorageDriver,
    readonly name: string,
    private readonly states: UploadStates,
    private readonly blobs: BlobStore,
  ) {}

  async start(o?: OpOptions): Promise<UploadStatus> {
    return (await this.create('sha256', o)).status();
  }

  status(id: string, o?: OpOptions): Promise<UploadStatus> {
    // Under the lock, so the size reported is never that of a half-appended chunk.
    return this.locked(id, async () => (await this.resume(id, o)).status());
  }

  append(id: string, chunk: Chunk, o?: OpOptions): Promise<UploadStatus> {
    return this.locked(id, async () => {
      const session = await this.resume(id, o);
      await this.appendChunk(session, chunk, o);
      return session.status();
    });
  }

  commit(id: string, digest: Digest, last?: Chunk, o?: OpOptions): Promise<BlobDescriptor> {
    return this.locked(id, async () => {
      const session = await this.resume(id, o);
      if (last) await this.appendChunk(session, last, o);
      return session.commit(digest, o);
    });
  }

  /** The session never had an id the client saw: whatever fails, nothing of it is left behind. */
  async upload(digest: Digest, chunk: Chunk, o?: OpOptions): Promise<BlobDescriptor> {
    const session = await this.create(digest.algorithm, o);
    return this.locked(session.id, async () => {
      try {
        await this.appendChunk(session, chunk, o);
        return await session.commit(digest, o);
      } catch (err) {
        await session.cancel().catch(() => undefined);   // no signal: the client may be gone already
        throw err;
      }
    });
  }

  cancel(id: string, o?: OpOptions): Promise<void> {
    return this.locked(id, async () => (await this.resume(id, o)).cancel(o));
  }

  /**
   * Starts a session: empty data file plus `startedat` (RFC 3339), as registry:2 writes them. When either
   * cannot be written (a full disk), whatever was written is removed: the client never got the id.
   */
  private async create(algorithm: Algorithm, o?: OpOptions): Promise<UploadSession> {
    const id = randomUUID();
    const startedAt = new Date();
    try {
      // Written side by side (one round trip to an object store): nobody knows the id before both are. Both
      // settle before a failure is handled, so the clean-up below runs after the last write.
      const written = await Promise.allSettled([
        this.driver.putContent(pathFor({ kind: 'uploadData', name: this.name, id }), new Uint8Array(0), o),
        this.driver.putContent(pathFor({ kind: 'uploadStartedAt', name: this.name, id }), Buffer.from(startedAt.toISOString()), o),
      ]);
      for (const r of written) if (r.status === 'rejected') throw r.reason;
    } catch (err) {
      await deleteIfExists(this.driver, pathFor({ kind: 'upload', name: this.name, id })).catch(() => undefined);
      throw err;
    }
    this.states.set(this.key(id), { size: 0, algorithm, hash: createHash(algorithm) });
    this.states.rememberStart(this.key(id), startedAt);
    return new UploadSession(this.driver, this.name, id, startedAt, 0, this.states, this.blobs);
  }

  /**
   * Re-opens a session from storage; throws UploadUnknownError when it does not exist. The data file is
   * stat'ed every time (its size is the truth, and a purge or another process may have removed it);
   * `startedat` is read only the first time this process sees the session.
   */
  private async resume(id: string, o?: OpOptions): Promise<UploadSession> {
    if (!UPLOAD_ID_RE.test(id)) throw new UploadUnknownError(id.slice(0, 130));
    const key = this.key(id);
    const known = this.states.startedAt(key);
    const [started, data] = await Promise.all([
      known ?? contentIfExists(this.driver, pathFor({ kind: 'uploadStartedAt', name: this.name, id }), o),
      fileIfExists(this.driver, pathFor({ kind: 'uploadData', name: this.name, id }), { signal: o?.signal, pending: true }),
    ]);
    if (started === undefined || data === undefined) {
      this.states.forget(key);
      throw new UploadUnknownError(id);
    }
    let t = started instanceof Date ? started : new Date(started.toString('utf8').trim());
    if (Number.isNaN(t.getTime())) t = new Date(0);
    this.states.rememberStart(key, t);   // also when known: keeps it from expiring while the session is used
    return new UploadSession(this.driver, this.name, id, t, data.size, this.states, this.blobs, data);
  }

  /**
   * The one place a chunk's headers are checked: a malformed Content-Range → UploadRangeError; a
   * Content-Length that disagrees with the range → SizeInvalidError. Where the chunk starts is checked once,
   * by UploadSession.append against the size the storage writer reports. A client that goes away mid-chunk
   * becomes ClientDisconnectError (the session stays resumable).
   */
  private async appendChunk(session: UploadSession, chunk: Chunk, o?: OpOptions): Promise<void> {
    const { range } = chunk;
    if (range === 'malformed') throw new UploadRangeError(session.size, 'malformed Content-Range', { repo: this.name, id: session.id });
    // The bytes the chunk declares (Content-Range, else Content-Length): checked against what arrives, and the storage
    // writer's sizeHint (S3 sizes its parts by it: a streamed PATCH of a known length, as skopeo and podman send a
    // layer, never has its last part cut short and sent again).
    let length = chunk.length;
    if (range) {
      length = range.end - range.start + 1;
      if (chunk.length !== undefined && chunk.length !== length) {
        throw new SizeInvalidError(`Content-Length ${chunk.length} does not match Content-Range ${range.start}-${range.end}`);
      }
    }
    const sizeBefore = session.size;
    try {
      await session.append(chunk.body, { start: range?.start, length, signal: o?.signal });
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      if (o?.signal?.aborted || isDisconnect(err)) {
        throw new ClientDisconnectError({ cause: err }, { uploadId: session.id, repo: this.name, sizeBefore, sessionKept: true });
      }
      throw err;
    }
  }

  /** Serialises work on one upload id within this process. */
  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.states.locked(this.key(id), fn);
  }

  private key(id: string): string { return `${this.name}/${id}`; }
}

/** One session while a store operation holds its lock; not exported past core. */
class UploadSession {
  constructor(
    private readonly driver: StorageDriver,
    readonly name: string,
    readonly id: string,
    readonly startedAt: Date,
    /** Bytes stored so far (from the driver's stat, or after our own append). */
    public size: number,
    private readonly states: UploadStates,
    private readonly blobs: BlobStore,
    /** The data file as resume() found it (stat with `pending`), for the first append or commit of this operation
     *  (the driver continues from it instead of asking storage again); dropped once used or stale. */
    private found?: FileInfo,
  ) {}

  /** `found`, once. */
  private takeFound(): FileInfo | undefined {
    const fi = this.found;
    this.found = undefined;
    return fi;
  }

  private get key(): string { return `${this.name}/${this.id}`; }

  status(): UploadStatus { return { id: this.id, size: this.size, startedAt: this.startedAt }; }
  private get dataPath(): string { return pathFor({ kind: 'uploadData', name: this.name, id: this.id }); }

  /**
   * Appends src to the upload. `start` (from Content-Range) must equal the current size, else
   * UploadRangeError; `length`, when declared, must equal the bytes received, else SizeInvalidError.
   * On failure (including a client disconnect) the bytes that reached storage are KEPT (the writer
   * is committed, never cancelled: the drivers' cancel() deletes the whole file), so the session stays
   * resumable at its stored size; the running hash is dropped and commit() re-hashes.
   */
  async append(src: Readable, o: OpOptions & { start?: number; length?: number } = {}): Promise<void> {
    const w = await this.driver.writer(this.dataPath, { append: true, signal: o.signal, sizeHint: o.length, from: this.takeFound() });
    const base = w.size;
    if (o.start !== undefined && o.start !== base) {   // the one start check, against what storage holds
      await closeWriter(w).catch(() => undefined);     // nothing written: the session and its hash stay as they were
      this.size = base;
      throw new UploadRangeError(base, String(o.start), { repo: this.name, id: this.id });
    }
    const st = this.states.get(this.key);
    this.states.drop(this.key);                  // the hash is mutated below; only a success restores it
    const hash = current(st, base, w.version) ? st!.hash : undefined;
    let received = 0;
    try {
      const tap = new HashingWriter(w.stream, hash);
      await pipeline(src, tap, { signal: o.signal });
      received = tap.bytes;
      if (o.length !== undefined && received !== o.length) {
        throw new SizeInvalidError(`received ${received} bytes, declared ${o.length}`);
      }
    } catch (err) {
      await closeWriter(w).catch(() => undefined);   // keep what reached storage; size comes from stat later
      this.size = base;
      throw err;
    }
    await closeWriter(w, o);
    this.size = base + received;
    if (hash && st) this.states.set(this.key, { size: this.size, algorithm: st.algorithm, hash, version: w.version });
  }

  /**
   * Verifies the stored bytes against `digest` and makes them visible: move into blobs/ (skipped when
   * the blob already exists), link into the repository, drop the session. On mismatch the session is
   * deleted (as Distribution does) and DigestMismatchError is thrown; nothing becomes visible.
   */
  async commit(digest: Digest, o?: OpOptions): Promise<BlobDescriptor> {
    const fi = this.takeFound() ?? await fileIfExists(this.driver, this.dataPath, { signal: o?.signal, pending: true });
    if (fi === undefined) throw new UploadUnknownError(this.id);
    let size = fi.size;
    let version = fi.version;
    if (fi.pending) {   // closed but not committed (S3's open multipart upload): make it readable first
      const w = await this.driver.writer(this.dataPath, { append: true, signal: o?.signal, from: fi });
      version = w.version;   // the content this commit makes readable
      await w.commit(o);
      size = w.size;
    }
    const st = this.states.get(this.key);
    const hex = current(st, size, version) && st.algorithm === digest.algorithm
      ? st.hash.copy().digest('hex')
      : await this.rehash(digest.algorithm, o);
    if (hex !== digest.hex) {
      await this.cancel(o);
      throw new DigestMismatchError(digest.text, `${digest.algorithm}:${hex}`);
    }
    const blobPath = blobDataPath(digest);
    if ((await sizeIfExists(this.driver, blobPath, o)) === undefined) {
      try {
        await this.driver.move(this.dataPath, blobPath, o);
      } catch (err) {
        // A concurrent commit of the same session may have moved it first.
        if (!isNotFound(err) || (await sizeIfExists(this.driver, blobPath, o)) === undefined) throw err;
      }
    }
    await this.blobs.link(digest, o);
    // The blob is whole and linked: the client's upload succeeded. Removing the session is housekeeping, done after
    // the response: on an object store it is a listing of the session, one of its multipart uploads and a batch
    // delete (three answers with a body, ~100 ms a layer on Ceph RGW), which the client need not wait for. The
    // session is unknown to every process already: its data path was moved (resume() finds no data); only when the
    // blob existed before, and the move was skipped, is it found until the removal ends: a commit of it again
    // then links the same blob. If the removal fails, or the process dies before it ends (close() waits for it),
    // the leftovers (startedat, an emptied data path) are the upload purger's (uploadpurging,
    // `berth gc --upload-idle`); answering 503 would only make the client push a blob that exists.
    this.states.forget(this.key);
    this.states.later(() => this.cancel());   // no signal: the request is over when it runs
    if (observed()) reportUploadCommit({ durationMs: Date.now() - this.startedAt.getTime(), size });
    return { digest, size };
  }

  /** Deletes the session (data, startedat, anything registry:2 left). Safe to call twice. */
  async cancel(o?: OpOptions): Promise<void> {
    this.states.forget(this.key);
    await deleteIfExists(this.driver, pathFor({ kind: 'upload', name: this.name, id: this.id }), o);
  }

  private async rehash(algorithm: Algorithm, o?: OpOptions): Promise<string> {
    const hash = createHash(algorithm);
    const r = await this.driver.reader(this.dataPath, { signal: o?.signal });
    for await (const chunk of r) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }
}

/** Ends a PATCH's writer so the next PATCH continues it: close() where the driver has it (S3 keeps its multipart
 *  upload open), else commit(). */
function closeWriter(w: FileWriter, o?: OpOptions): Promise<void> {
  return w.close ? w.close(o) : w.commit(o);
}
