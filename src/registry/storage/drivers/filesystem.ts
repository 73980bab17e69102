// The filesystem driver: driver paths map 1:1 under `rootdirectory`, so the tree is the one
// registry:2 writes (see paths.ts). Small objects are replaced atomically (temp file + fsync + rename);
// it must not interpret paths or know the registry layout, and it trusts base.ts to have checked them.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { Readable, Writable } from 'node:stream';
import {
  InvalidPathError, PathNotFoundError,
  type FileInfo, type FileWriter, type OpOptions, type StorageDriver,
} from '../driver.js';
import { StorageParameterError, comparePaths, isAncestor, isValidComponent, readSpan } from '../base.js';
import { RECYCLE } from '../recycle.js';
import * as fs from 'node:fs';
import * as stream from 'node:stream';
import { promisify } from 'node:util';
import { AppendStream } from './fs-append-stream.js';
import { READ_BLOCK as BLOCK, giveBack, takeBlock } from './aligned-blocks.js';
import { DIRECT_ALIGN, DirectAppendStream } from './fs-direct-stream.js';

const NAME = 'filesystem';
const STREAM_CHUNK = 1024 * 1024;   // 1 MiB reads and write buffering: few syscalls for blobs
const READ_CHUNK = 2 * 1024 * 1024;   // reader() chunk: 2 MiB measured ~10% less server CPU per GiB than 1 MiB (see FileReadStream)
/** reader() reads files at least this large with O_DIRECT (when directio is on): blob layers. Smaller ones
 *  (configs, small layers) stay in the page cache, where repeated reads of them are cheapest. */
const DIRECT_READ_MIN = 1024 * 1024;
const SPARE_MAX = 4;                // idle read buffers kept for reuse, shared by all readers (8 MiB)
const openFd = promisify(fs.open) as (path: string, flags?: string | number) => Promise<number>;
/** Linux's O_DIRECT (undefined elsewhere: writers then use the page cache). */
const O_DIRECT: number | undefined = fs.constants.O_DIRECT;
const closeFd = promisify(fs.close) as (fd: number) => Promise<void>;
const fstatFd = promisify(fs.fstat) as (fd: number) => Promise<fs.Stats>;
// getContent/stat run on every manifest GET and blob HEAD (link files, blob stats). Node 20's
// fs.promises.readFile runs open, fstat, read and close as four promise round trips on a FileHandle; the
// callback form does the same syscalls for 2-3x less CPU (70-byte file, 64 in flight, 20 000 reads, process
// CPU per read incl. the thread pool: promises 56-84 us, callback 15-35 us; stat 14-23 vs 11 us).
const readWhole = promisify(fs.readFile) as (path: string, o: { signal?: AbortSignal }) => Promise<Buffer>;
const statPath = promisify(fs.stat) as (path: string) => Promise<fs.Stats>;

export interface FilesystemParameters {
  /** Absolute directory holding the tree (distribution's default: /var/lib/registry). */
  rootdirectory: string;
  /** Accepted for config compatibility with distribution (minimum 25); Node's libuv pool does the I/O. */
  maxthreads?: number;
  /** Upload data written, and large files read, with O_DIRECT, bypassing the page cache (default true; see
   *  fs-direct-stream.ts). Where the filesystem refuses O_DIRECT the driver uses the page cache by itself. */
  directio?: boolean;
  /** Called once, when the filesystem first refuses O_DIRECT (EINVAL) and the driver goes on through the
   *  page cache: for the operator's log (storage/factory.ts). `op` says where it was refused. */
  onDirectIoRefused?: (err: Error, op: 'open' | 'write' | 'read') => void;
  /** Tests only: the file-offset alignment of direct writes (DirectAppendStream's `align`); a smaller one
   *  than the device's makes the kernel refuse for real. */
  directAlign?: number;
}

/**
 * Stores each driver path as the file of the same name under `rootdirectory`.
 *
 * Visibility: putContent() and move() are atomic (rename), and they are how registry-visible content
 * (blobs, links, tags) is made visible. writer() writes straight into the file at `path`, like
 * distribution's filesystem writer: the bytes of an upload's `data` file can be seen before commit(),
 * which is fine because upload data is not registry content until it is moved into place.
 * commit() flushes, fsyncs and closes; cancel() closes and deletes the file, including bytes that
 * earlier writers committed to it. commit() after the stream was destroyed (an aborted pipeline)
 * keeps the bytes that reached the file, and `size` says how many.
 *
 * Temporary files are named with a "~", which no valid path contains, and list()/walk() skip every
 * name that is not a valid component, so a crash can leave a temp file but never make it visible.
 * getContent()/reader() on a directory and list()/walk() on a file throw PathNotFoundError.
 */
export class FilesystemDriver implements StorageDriver {
  readonly name = NAME;
  readonly root: string;

  constructor(params: FilesystemParameters) {
    const root = params?.rootdirectory;
    if (typeof root !== 'string' || root === '') {
      throw new StorageParameterError('registry.storage.filesystem.rootdirectory', 'required', NAME);
    }
    if (!nodePath.isAbsolute(root)) {
      throw new StorageParameterError('registry.storage.filesystem.rootdirectory',
        `must be an absolute path, got ${JSON.stringify(root)}`, NAME);
    }
    const mt = params.maxthreads;
    if (mt !== undefined && (!Number.isInteger(mt) || mt < 25)) {
      throw new StorageParameterError('registry.storage.filesystem.maxthreads',
        `must be an integer >= 25, got ${JSON.stringify(mt)}`, NAME);
    }
    this.root = nodePath.resolve(root);
    const dio = params.directio;
    if (dio !== undefined && typeof dio !== 'boolean') {
      throw new StorageParameterError('registry.storage.filesystem.directio',
        `must be true or false, got ${JSON.stringify(dio)}`, NAME);
    }
    this.directIO = (dio ?? true) && O_DIRECT !== undefined;
    this.onDirectIoRefused = params.onDirectIoRefused;
    this.directAlign = params.directAlign;
  }

  private readonly onDirectIoRefused?: FilesystemParameters['onDirectIoRefused'];
  private readonly directAlign?: number;

  /** The filesystem refused O_DIRECT: the page cache from now on, and one report. */
  private directRefused(err: Error, op: 'open' | 'write' | 'read'): void {
    if (!this.directIO) return;
    this.directIO = false;
    this.onDirectIoRefused?.(err, op);
  }

  /** Whether writer() and reader() still try O_DIRECT: off by configuration, or once the filesystem refused. */
  private directIO: boolean;

  /** The OS path of a driver path. Refuses anything that would leave the root (defence in depth). */
  private full(p: string): string {
    const f = nodePath.join(this.root, p);
    if (f !== this.root && !f.startsWith(this.root + nodePath.sep)) throw new InvalidPathError(p, NAME);
    return f;
  }

  async getContent(p: string, o?: OpOptions): Promise<Buffer> {
    try {
      return await readWhole(this.full(p), { signal: o?.signal });
    } catch (err) {
      throw mapErr(err, p, true);
    }
  }

  async putContent(p: string, data: Uint8Array, o?: OpOptions): Promise<void> {
    const target = this.full(p);
    const dir = nodePath.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = `${target}~${randomBytes(6).toString('hex')}.tmp`;
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(tmp, 'wx', 0o644);
      await fh.writeFile(data, { signal: o?.signal });
      await fh.sync();
      await fh.close();
      fh = undefined;
      o?.signal?.throwIfAborted();
      await fsp.rename(tmp, target);
    } catch (err) {
      await fh?.close().catch(() => {});
      await fsp.rm(tmp, { force: true }).catch(() => {});
      throw mapErr(err, p);
    }
    await syncDir(dir);
  }

  async reader(p: string, o?: OpOptions & { offset?: number; length?: number }): Promise<Readable> {
    const span = readSpan(p, o, NAME);
    const offset = span.offset;
    const file = this.full(p);
    let fd: number;
    try {
      fd = await openFd(file);
    } catch (err) {
      throw mapErr(err, p, true);
    }
    let end: number;   // where the stream ends: the file's size, or sooner with `length`
    try {
      const st = await fstatFd(fd);
      if (st.isDirectory()) throw new PathNotFoundError(p, NAME);
      end = span.end(st.size);
    } catch (err) {
      fs.close(fd, () => {});
      throw err;
    }
    const directFd = this.directIO && end - offset >= DIRECT_READ_MIN
      ? await this.openDirect(file, fs.constants.O_RDONLY) : undefined;
    return new FileReadStream(fd, offset, end, o?.signal, directFd, (err) => this.directRefused(err, 'read'));
  }

  async writer(p: string, o?: OpOptions & { append?: boolean }): Promise<FileWriter> {
    const target = this.full(p);
    const flags = o?.append ? 'a' : 'w';
    let fh: fsp.FileHandle;
    try {
      // Upload data files exist already (their directory too): mkdir only when the open says it must.
      fh = await fsp.open(target, flags, 0o644).catch(async (err) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await fsp.mkdir(nodePath.dirname(target), { recursive: true });
        return fsp.open(target, flags, 0o644);
      });
    } catch (err) {
      throw mapErr(err, p);
    }
    let initial = 0;
    try {
      if (o?.append) initial = (await fh.stat()).size;
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    const directFd = this.directIO ? await this.openDirect(target, fs.constants.O_WRONLY) : undefined;
    if (directFd === undefined) return new FsWriter(target, fh, new AppendStream(fh.fd, { signal: o?.signal }), initial);
    const s = new DirectAppendStream({ append: fh.fd, direct: directFd }, initial, {
      signal: o?.signal, align: this.directAlign, onRefused: (err) => this.directRefused(err, 'write'),
    });
    return new FsWriter(target, fh, s, initial, directFd);
  }

  /** A second descriptor on `file` for O_DIRECT I/O, or undefined (and no more tries) where the
   *  filesystem has no O_DIRECT (open fails with EINVAL, e.g. tmpfs before Linux 6.6). */
  private async openDirect(file: string, mode: number): Promise<number | undefined> {
    try {
      return await openFd(file, mode | O_DIRECT!);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') this.directRefused(err as Error, 'open');
      return undefined;
    }
  }

  async stat(p: string, _o?: OpOptions): Promise<FileInfo> {
    try {
      const st = await statPath(this.full(p));
      return toInfo(p, st);
    } catch (err) {
      throw mapErr(err, p);
    }
  }

  async list(p: string, o?: OpOptions): Promise<string[]> {
    o?.signal?.throwIfAborted();
    return (await this.children(p)).map((c) => c.path);
  }

  async move(from: string, to: string, o?: OpOptions): Promise<void> {
    const src = this.full(from);
    const dst = this.full(to);
    try {
      await fsp.stat(src);
    } catch (err) {
      throw mapErr(err, from);
    }
    o?.signal?.throwIfAborted();
    await fsp.mkdir(nodePath.dirname(dst), { recursive: true });
    try {
      await fsp.rename(src, dst);
    } catch (err) {
      throw mapErr(err, from);
    }
    await syncDir(nodePath.dirname(dst));
  }

  async delete(p: string, _o?: OpOptions): Promise<void> {
    const f = this.full(p);
    if (f === this.root) throw new InvalidPathError(p, NAME);
    try {
      await fsp.lstat(f);
    } catch (err) {
      throw mapErr(err, p);
    }
    await fsp.rm(f, { recursive: true, force: true });
  }

  async redirectURL(_p: string, _method: 'GET' | 'HEAD'): Promise<string | null> {
    return null;
  }

  async *walk(p: string, o?: OpOptions & { startAfter?: string }): AsyncGenerator<FileInfo> {
    const st = await fsp.stat(this.full(p)).catch((err) => { throw mapErr(err, p); });
    if (!st.isDirectory()) throw new PathNotFoundError(p, NAME);
    yield* this.walkDir(p, o?.startAfter, o?.signal, true);
  }

  private async *walkDir(p: string, startAfter: string | undefined, signal: AbortSignal | undefined,
    top: boolean): AsyncGenerator<FileInfo> {
    let entries: FileInfo[];
    try {
      entries = await this.children(p, true);
    } catch (err) {
      if (!top && err instanceof PathNotFoundError) return;   // removed while we walked
      throw err;
    }
    for (const fi of entries) {
      signal?.throwIfAborted();
      if (startAfter !== undefined && comparePaths(fi.path, startAfter) <= 0) {
        if (fi.isDir && (fi.path === startAfter || isAncestor(fi.path, startAfter))) yield* this.walkDir(fi.path, startAfter, signal, false);
        continue;
      }
      yield fi;
      if (fi.isDir) yield* this.walkDir(fi.path, undefined, signal, false);
    }
  }

  /** Direct children as FileInfo (stat'ed only when `withInfo`), sorted, invalid names skipped. */
  private async children(p: string, withInfo = false): Promise<FileInfo[]> {
    const dir = this.full(p);
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (err) {
      throw mapErr(err, p);
    }
    const prefix = p === '/' ? '/' : p + '/';
    const out: FileInfo[] = [];
    for (const n of names.filter(isValidComponent).sort()) {
      const cp = prefix + n;
      if (!withInfo) { out.push({ path: cp, size: 0, modTime: new Date(0), isDir: false }); continue; }
      try {
        out.push(toInfo(cp, await fsp.stat(nodePath.join(dir, n))));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;   // vanished meanwhile
      }
    }
    return out;
  }
}

/** Idle read buffers (READ_CHUNK bytes each) that readers take before allocating. */
const spare: Buffer[] = [];

/**
 * reader()'s stream: the file from `start` to `end` (its size when opened, or less for a `length`; blob data
 * never changes),
 * read with positional fs.read() calls (callback API: no promise per chunk) of up to READ_CHUNK bytes
 * into buffers it lends out and takes back through [RECYCLE] (see recycle.ts), so a long GET reuses a few
 * buffers instead of allocating one per chunk. highWaterMark = one chunk: one read ahead of the consumer.
 * Small files get a buffer of their own size. The descriptor is closed on end, error or destroy, after
 * any read still in flight has returned.
 *
 * With a `directFd` (O_DIRECT, see fs-direct-stream.ts for why) it reads BLOCK-sized aligned spans into
 * page-aligned blocks and pushes the part that was asked for; if the filesystem refuses (EINVAL) it goes on
 * through `fd` and the page cache, and while no block can be had (budget used up) it reads that chunk so.
 */
class FileReadStream extends stream.Readable {
  private reading = false;
  private closeWhenIdle: (() => void) | undefined;
  /** Chunks pushed and not yet recycled → the buffer (or aligned block) they are part of. */
  private readonly lent = new Map<Uint8Array, { buf: Buffer; block: boolean }>();
  /** Direct mode: reads in flight or done and not yet pushed, in file order, and the next aligned offset. */
  private readonly ahead: DirectRead[] = [];
  private nextAt: number;
  private inFlight = 0;
  private eof = false;

  constructor(private readonly fd: number, private pos: number, private readonly end: number,
    signal?: AbortSignal, private directFd?: number, private readonly onRefused?: (err: Error) => void) {
    super({ highWaterMark: READ_CHUNK, signal });
    this.nextAt = pos - (pos % DIRECT_ALIGN);
  }

  override _read(): void {
    if (this.directFd !== undefined && !this.reading) {
      this.fillAhead();
      if (this.ahead.length > 0 || this.pos >= this.end) { this.deliver(); return; }
      // No block to be had (budget used up): this chunk through the page cache, direct again after it.
    }
    if (this.end - this.pos <= 0) { this.push(null); return; }
    if (this.reading) return;
    this.reading = true;
    this.readBuffered();
  }

  private readBuffered(): void {
    const want = Math.min(READ_CHUNK, this.end - this.pos);
    const buf = want === READ_CHUNK ? spare.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK) : Buffer.allocUnsafe(want);
    fs.read(this.fd, buf, 0, want, this.pos, (err, n) => {
      this.reading = false;
      if (this.destroyed) { keepSpare(buf); this.closeWhenIdle?.(); return; }
      if (err) { keepSpare(buf); this.destroy(err); return; }
      if (n === 0) { keepSpare(buf); this.push(null); return; }   // the file shrank: the consumer sees it short
      this.pos += n;
      const chunk = n === buf.length ? buf : buf.subarray(0, n);
      if (buf.length === READ_CHUNK) this.lent.set(chunk, { buf, block: false });
      this.push(chunk);
    });
  }

  /** Direct mode: keeps DIRECT_DEPTH aligned BLOCK reads in flight ahead of the consumer, so the disk
   *  works while the socket is written (see DIRECT_DEPTH). */
  private fillAhead(): void {
    if (this.ahead.length === 0) this.nextAt = this.pos - (this.pos % DIRECT_ALIGN);   // after a buffered read
    while (this.directFd !== undefined && this.ahead.length < DIRECT_DEPTH && this.nextAt < this.end && !this.destroyed) {
      const block = takeBlock(BLOCK);
      if (!block) break;
      const r: DirectRead = { at: this.nextAt, block, done: false, n: 0, err: null };
      this.nextAt += BLOCK;
      this.ahead.push(r);
      this.inFlight++;
      fs.read(this.directFd, block, 0, BLOCK, r.at, (err, n) => {
        this.inFlight--;
        r.done = true; r.err = err; r.n = n;
        if (this.destroyed || this.eof) { giveBack(block); if (this.inFlight === 0) this.closeWhenIdle?.(); return; }
        this.deliver();
      });
    }
  }

  /** Pushes the finished reads at the head, in order, while the consumer wants more. */
  private deliver(): void {
    while (this.ahead[0]?.done && !this.destroyed && !this.eof) {
      const r = this.ahead[0];
      if (r.err && (r.err as NodeJS.ErrnoException).code === 'EINVAL') {   // refused: the page cache from here on
        if (this.inFlight > 0) return;   // deliver() runs again when the last read returns
        this.onRefused?.(r.err);
        this.leaveDirect();
        return;
      }
      this.ahead.shift();
      if (r.err) { giveBack(r.block); this.destroy(r.err); return; }
      const lead = this.pos - r.at;
      const usable = Math.min(r.n, this.end - r.at) - lead;
      if (usable <= 0) {   // the file shrank: the consumer sees it short
        giveBack(r.block);
        this.finish();
        return;
      }
      this.pos += usable;
      const chunk = r.block.subarray(lead, lead + usable);
      this.lent.set(chunk, { buf: r.block, block: true });
      const more = this.push(chunk);
      if (this.pos >= this.end) { this.finish(); return; }
      if (!more) return;
      this.fillAhead();
    }
    if (this.pos >= this.end && this.ahead.length === 0 && !this.destroyed) this.finish();
  }

  /** Direct mode's end of data, once: later completions (only after a shrunk file) give their blocks back. */
  private finish(): void {
    if (this.eof) return;
    this.eof = true;
    for (const r of this.ahead.splice(0)) if (r.done) giveBack(r.block);   // in-flight ones: on return
    this.push(null);
  }

  /** Stops direct reads (all have returned): gives their blocks back and reads on through the page cache. */
  private leaveDirect(): void {
    for (const r of this.ahead.splice(0)) giveBack(r.block);
    this.closeDirect();
    if (this.pos >= this.end) { this.push(null); return; }
    this.reading = true;
    this.readBuffered();
  }

  private closeDirect(): void {
    const fd = this.directFd;
    this.directFd = undefined;
    if (fd !== undefined) fs.close(fd, () => {});
  }

  /** The consumer is done with `chunk` (one this stream pushed): its buffer may be read into again. */
  [RECYCLE](chunk: Uint8Array): void {
    const l = this.lent.get(chunk);
    if (!l || !this.lent.delete(chunk)) return;
    if (l.block) giveBack(l.buf);
    else keepSpare(l.buf);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const close = () => { this.closeDirect(); fs.close(this.fd, (e) => cb(err ?? e ?? null)); };
    for (const r of this.ahead.splice(0)) if (r.done) giveBack(r.block);   // in-flight ones: on return
    if (this.reading || this.inFlight > 0) this.closeWhenIdle = close;   // never close a descriptor a read still uses
    else close();
  }
}

interface DirectRead { at: number; block: Buffer; done: boolean; n: number; err: NodeJS.ErrnoException | null }

/** Direct reads kept in flight per reader (each one BLOCK). 1 GiB GET through TLS on the bench VM, curl as
 *  client: one 1 MiB read at a time 690 MB/s; three 1 MiB reads 840; two 2 MiB reads 950-1280 MB/s at
 *  0.7-0.97 server CPU-s, as fast as the page cache when the blob is in it (930-1170, 0.83-1.1). */
const DIRECT_DEPTH = 2;

/** Keeps a whole READ_CHUNK buffer for the next reader (up to SPARE_MAX idle); others are garbage. */
function keepSpare(buf: Buffer): void {
  if (spare.length < SPARE_MAX && buf.length === READ_CHUNK && buf.byteOffset === 0) spare.push(buf);
}

class FsWriter implements FileWriter {
  private state: 'open' | 'committed' | 'cancelled' = 'open';
  private closed: Promise<void> | undefined;
  private final: number | undefined;   // the file's size once committed

  constructor(private readonly file: string, private readonly fh: fsp.FileHandle,
    readonly stream: AppendStream | DirectAppendStream, private readonly initial: number,
    private readonly directFd?: number) {
    // Errors reach whoever pipes into the stream; this listener only keeps a stray error
    // (e.g. an abort after the pipeline settled) from crashing the process.
    stream.on('error', () => {});
  }

  get size(): number {
    return this.final ?? this.initial + this.stream.bytesWritten + this.stream.pendingBytes + this.stream.writableLength;
  }

  async commit(_o?: OpOptions): Promise<void> {
    if (this.state === 'committed') return;
    if (this.state === 'cancelled') throw new Error(`writer for ${this.file} was cancelled`);
    try {
      // After an aborted pipeline the stream is destroyed: once it has closed, what it took is in the file.
      if (this.stream.destroyed) await waitClosed(this.stream);
      else await settle(this.stream);
      if (this.stream.syncError) throw this.stream.syncError;   // seen once by a background sync (errseq)
      await this.fh.sync();
      this.final = (await this.fh.stat()).size;
      this.state = 'committed';
    } finally {
      await this.close();
    }
  }

  async cancel(_o?: OpOptions): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'cancelled';
    await this.close();
    await fsp.rm(this.file, { force: true });
  }

  /** Destroys the stream (it waits for its write or sync in flight), then closes the handle. */
  private close(): Promise<void> {
    return this.closed ??= (async () => {
      if (!this.stream.destroyed) this.stream.destroy();
      await waitClosed(this.stream);
      if (this.directFd !== undefined) await closeFd(this.directFd).catch(() => {});
      await this.fh.close();
    })();
  }
}

/** Ends the stream and waits until everything is written. */
async function settle(s: Writable): Promise<void> {
  if (s.writableFinished) return;
  if (s.errored) throw s.errored;
  await new Promise<void>((resolve, reject) => {
    const onFinish = () => { s.off('error', onError); resolve(); };
    const onError = (err: Error) => { s.off('finish', onFinish); reject(err); };
    s.once('finish', onFinish);
    s.once('error', onError);
    if (!s.writableEnded) s.end();
  });
}

function waitClosed(s: Writable): Promise<void> {
  if (s.closed) return Promise.resolve();
  return new Promise((resolve) => s.once('close', () => resolve()));
}

function toInfo(p: string, st: { size: number; mtime: Date; isDirectory(): boolean }): FileInfo {
  const isDir = st.isDirectory();
  return { path: p, size: isDir ? 0 : st.size, modTime: st.mtime, isDir };
}

/** ENOENT/ENOTDIR (and EISDIR where a file was wanted) become PathNotFoundError; the rest pass through. */
function mapErr(err: unknown, p: string, dirIsMissing = false): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || (dirIsMissing && code === 'EISDIR')) {
    return new PathNotFoundError(p, NAME, { cause: err });
  }
  return err;
}

/** fsync a directory so a rename survives a crash; best effort (not every platform allows it). */
async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // ignore: durability of the directory entry is best effort
  } finally {
    await fh?.close().catch(() => {});
  }
}

