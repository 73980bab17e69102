// The filesystem driver: driver paths map 1:1 under `rootdirectory`, so the tree is the one
// registry:2 writes (see paths.ts). Small objects are replaced atomically (temp file + fsync + rename);
// it must not interpret paths or know the registry layout, and it trusts base.ts to have checked them.
// Its stream and writer are fs-read-stream.ts and fs-writer.ts; it registers itself as "filesystem".
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Logger } from '../../../log/logger.js';
import {
  InvalidPathError, PathNotFoundError,
  type FileInfo, type FileWriter, type OpOptions, type StorageDriver,
} from '../driver.js';
import { comparePaths, isAncestor, isValidComponent, readSpan } from '../base.js';
import { parseParameters, type ParameterSpec } from '../parameters.js';
import { registerDriver } from '../registration.js';
import { AppendStream } from './fs-append-stream.js';
import { DirectAppendStream } from './fs-direct-stream.js';
import { FileReadStream } from './fs-read-stream.js';
import { FsWriter } from './fs-writer.js';

const NAME = 'filesystem';

/** reader() reads files at least this large with O_DIRECT (when directio is on): blob layers. Smaller ones
 *  (configs, small layers) stay in the page cache, where repeated reads of them are cheapest. */
const DIRECT_READ_MIN = 1024 * 1024;
const openFd = promisify(fs.open) as (path: string, flags?: string | number) => Promise<number>;
/** Linux's O_DIRECT (undefined elsewhere: writers then use the page cache). */
const O_DIRECT: number | undefined = fs.constants.O_DIRECT;
const fstatFd = promisify(fs.fstat) as (fd: number) => Promise<fs.Stats>;
// getContent/stat run on every manifest GET and blob HEAD (link files, blob stats). Node 20's
// fs.promises.readFile runs open, fstat, read and close as four promise round trips on a FileHandle; the
// callback form does the same syscalls for 2-3x less CPU (70-byte file, 64 in flight, 20 000 reads, process
// CPU per read incl. the thread pool: promises 56-84 us, callback 15-35 us; stat 14-23 vs 11 us).
const readWhole = promisify(fs.readFile) as (path: string, o: { signal?: AbortSignal }) => Promise<Buffer>;
const statPath = promisify(fs.stat) as (path: string) => Promise<fs.Stats>;

/**
 * `registry.storage.filesystem`: Distribution's keys (rootdirectory, maxthreads) plus berth's directio.
 * rootdirectory's default is next to the config file (Distribution's is /var/lib/registry); maxthreads
 * is accepted for compatibility (minimum 25, as in Distribution) and not used: Node's libuv pool does
 * the I/O. directio: see FilesystemParameters.
 */
export const FILESYSTEM_PARAMETERS = [
  { name: 'rootdirectory', kind: 'path', default: './data' },
  { name: 'maxthreads', kind: 'int', default: 100, min: 25 },
  { name: 'directio', kind: 'bool', default: true },
] as const satisfies readonly ParameterSpec[];

registerDriver(NAME, {
  parameters: FILESYSTEM_PARAMETERS,
  create(params, log) {
    const p = parseParameters(NAME, FILESYSTEM_PARAMETERS, params);
    return new FilesystemDriver({ ...p, onDirectIoRefused: logDirectIoRefused(p.rootdirectory, log) });
  },
  dataDirectory: (params) => parseParameters(NAME, FILESYSTEM_PARAMETERS, params).rootdirectory,
});

/** The operator's warning when the filesystem under `rootdirectory` refuses O_DIRECT (said once per driver). */
export function logDirectIoRefused(rootdirectory: string, log?: Logger): FilesystemParameters['onDirectIoRefused'] {
  return (err, op) => log?.warn({ err, op, rootdirectory },
    'the filesystem refused O_DIRECT: upload data and large reads go through the page cache from now on '
    + '(set registry.storage.filesystem.directio: false to say so in the config)');
}

export interface FilesystemParameters {
  /** Absolute directory holding the tree. */
  rootdirectory: string;
  /** Accepted for config compatibility with distribution (minimum 25); Node's libuv pool does the I/O. */
  maxthreads?: number;
  /** Upload data written, and large files read, with O_DIRECT, bypassing the page cache (default true; see
   *  fs-direct-stream.ts). Where the filesystem refuses O_DIRECT the driver uses the page cache by itself. */
  directio?: boolean;
  /** Called once, when the filesystem first refuses O_DIRECT (EINVAL) and the driver goes on through the
   *  page cache: for the operator's log (logDirectIoRefused). `op` says where it was refused. */
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

  /** Checks rootdirectory, maxthreads and directio as createDriver does (StorageParameterError by config key). */
  constructor(params: FilesystemParameters) {
    const { onDirectIoRefused, directAlign, ...config }: Partial<FilesystemParameters> = params ?? {};
    const p = parseParameters(NAME, FILESYSTEM_PARAMETERS, config);
    this.root = nodePath.resolve(p.rootdirectory);
    this.directIO = p.directio && O_DIRECT !== undefined;
    this.onDirectIoRefused = onDirectIoRefused;
    this.directAlign = directAlign;
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

