// The in-memory driver: a tree of directories and byte buffers with the filesystem driver's semantics
// (same errors, same walk order), for tests and throwaway registries. Nothing survives the process;
// it must not be used for anything large or shared between processes. It registers itself as "inmemory".
import { Readable, Writable } from 'node:stream';
import {
  InvalidPathError, PathNotFoundError,
  type FileInfo, type FileWriter, type OpOptions, type StorageDriver,
} from '../driver.js';
import { comparePaths, finishStream, isAncestor, readSpan } from '../base.js';
import { parseParameters } from '../parameters.js';
import { registerDriver } from '../registration.js';

const NAME = 'inmemory';

/** `registry.storage.inmemory` takes no parameters (as in Distribution). */
registerDriver(NAME, {
  parameters: [],
  create(params) {
    parseParameters(NAME, [], params);
    return new InMemoryDriver();
  },
});

type Dir = { kind: 'dir'; children: Map<string, Node>; modTime: Date };
type File = { kind: 'file'; data: Buffer; modTime: Date };
type Node = Dir | File;

const parts = (p: string): string[] => (p === '/' ? [] : p.slice(1).split('/'));

/**
 * Holds everything in memory. A writer buffers its chunks and exposes them only on commit() (the
 * file then holds the content it had when the writer opened, when appending, plus the new bytes);
 * cancel() deletes the file at the path, like the filesystem driver. putContent() and move() are
 * atomic by construction. getContent()/reader() on a directory and list()/walk() on a file throw
 * PathNotFoundError.
 */
export class InMemoryDriver implements StorageDriver {
  readonly name = NAME;
  private readonly root: Dir = { kind: 'dir', children: new Map(), modTime: new Date() };

  private find(p: string): Node | undefined {
    let n: Node = this.root;
    for (const c of parts(p)) {
      if (n.kind !== 'dir') return undefined;
      const next = n.children.get(c);
      if (!next) return undefined;
      n = next;
    }
    return n;
  }

  private file(p: string): File {
    const n = this.find(p);
    if (!n || n.kind !== 'file') throw new PathNotFoundError(p, NAME);
    return n;
  }

  private dir(p: string): Dir {
    const n = this.find(p);
    if (!n || n.kind !== 'dir') throw new PathNotFoundError(p, NAME);
    return n;
  }

  /** The parent directory of `p`, created as needed; a file in the way is an error, as on disk. */
  private mkParents(p: string): { parent: Dir; base: string } {
    const ps = parts(p);
    if (ps.length === 0) throw new InvalidPathError(p, NAME);
    let d = this.root;
    for (const c of ps.slice(0, -1)) {
      let next = d.children.get(c);
      if (!next) {
        next = { kind: 'dir', children: new Map(), modTime: new Date() };
        d.children.set(c, next);
        d.modTime = new Date();
      }
      if (next.kind !== 'dir') throw new PathNotFoundError(p, NAME);
      d = next;
    }
    return { parent: d, base: ps[ps.length - 1] };
  }

  private put(p: string, data: Buffer): void {
    const { parent, base } = this.mkParents(p);
    const existing = parent.children.get(base);
    if (existing?.kind === 'dir') throw new Error(`EISDIR: ${p} is a directory`);
    parent.children.set(base, { kind: 'file', data, modTime: new Date() });
  }

  async getContent(p: string, _o?: OpOptions): Promise<Buffer> {
    return Buffer.from(this.file(p).data);
  }

  async putContent(p: string, data: Uint8Array, _o?: OpOptions): Promise<void> {
    this.put(p, Buffer.from(data));
  }

  async reader(p: string, o?: OpOptions & { offset?: number; length?: number }): Promise<Readable> {
    const span = readSpan(p, o, NAME);
    const whole = this.file(p).data;
    const data = whole.subarray(0, span.end(whole.length));
    let pos = span.offset;
    const CHUNK = 64 * 1024;
    return new Readable({
      signal: o?.signal,
      read() {
        if (pos >= data.length) { this.push(null); return; }
        const end = Math.min(pos + CHUNK, data.length);
        this.push(data.subarray(pos, end));
        pos = end;
      },
    });
  }

  async writer(p: string, o?: OpOptions & { append?: boolean }): Promise<FileWriter> {
    this.mkParents(p);   // fail now, not at commit, when a file is in the way
    const n = this.find(p);
    if (n?.kind === 'dir') throw new Error(`EISDIR: ${p} is a directory`);
    const base = o?.append && n?.kind === 'file' ? n.data : Buffer.alloc(0);
    return new MemWriter(this, p, base, o?.signal);
  }

  /** @internal used by MemWriter */
  _commit(p: string, data: Buffer): void { this.put(p, data); }
  /** @internal used by MemWriter */
  _remove(p: string): void {
    const { parent, base } = this.mkParents(p);
    parent.children.delete(base);
  }

  async stat(p: string, _o?: OpOptions): Promise<FileInfo> {
    const n = this.find(p);
    if (!n) throw new PathNotFoundError(p, NAME);
    return info(p, n);
  }

  async list(p: string, _o?: OpOptions): Promise<string[]> {
    const prefix = p === '/' ? '/' : p + '/';
    return [...this.dir(p).children.keys()].sort().map((c) => prefix + c);
  }

  async move(from: string, to: string, _o?: OpOptions): Promise<void> {
    const n = this.find(from);
    if (!n) throw new PathNotFoundError(from, NAME);
    if (from === to) return;
    if (isAncestor(from, to)) throw new Error(`EINVAL: cannot move ${from} into itself`);
    const { parent, base } = this.mkParents(to);
    const existing = parent.children.get(base);
    if (existing?.kind === 'dir' && (n.kind === 'file' || existing.children.size > 0)) {
      throw new Error(`ENOTEMPTY: ${to} is a directory`);
    }
    if (existing?.kind === 'file' && n.kind === 'dir') throw new Error(`ENOTDIR: ${to} is a file`);
    const src = this.mkParents(from);
    src.parent.children.delete(src.base);
    parent.children.set(base, n);
  }

  async delete(p: string, _o?: OpOptions): Promise<void> {
    const ps = parts(p);
    if (ps.length === 0) throw new InvalidPathError(p, NAME);
    if (!this.find(p)) throw new PathNotFoundError(p, NAME);
    const { parent, base } = this.mkParents(p);
    parent.children.delete(base);
  }

  async redirectURL(_p: string, _method: 'GET' | 'HEAD'): Promise<string | null> {
    return null;
  }

  async *walk(p: string, o?: OpOptions & { startAfter?: string }): AsyncGenerator<FileInfo> {
    const d = this.dir(p);
    yield* walkDir(p, d, o?.startAfter, o?.signal);
  }
}

function* walkDir(p: string, d: Dir, startAfter: string | undefined, signal?: AbortSignal): Generator<FileInfo> {
  const prefix = p === '/' ? '/' : p + '/';
  // Snapshot the names so callers may change the tree between steps, as on a real filesystem.
  for (const name of [...d.children.keys()].sort()) {
    signal?.throwIfAborted();
    const n = d.children.get(name);
    if (!n) continue;
    const cp = prefix + name;
    if (startAfter !== undefined && comparePaths(cp, startAfter) <= 0) {
      if (n.kind === 'dir' && (cp === startAfter || isAncestor(cp, startAfter))) yield* walkDir(cp, n, startAfter, signal);
      continue;
    }
    yield info(cp, n);
    if (n.kind === 'dir') yield* walkDir(cp, n, undefined, signal);
  }
}

function info(p: string, n: Node): FileInfo {
  return { path: p, size: n.kind === 'file' ? n.data.length : 0, modTime: n.modTime, isDir: n.kind === 'dir' };
}

class MemWriter implements FileWriter {
  private readonly chunks: Buffer[] = [];
  private accepted = 0;
  private state: 'open' | 'committed' | 'cancelled' = 'open';
  readonly stream: Writable;

  constructor(private readonly d: InMemoryDriver, private readonly path: string,
    private readonly base: Buffer, signal?: AbortSignal) {
    const self = this;
    this.stream = new Writable({
      signal,
      write(chunk: Buffer, _enc, cb) {
        if (self.state !== 'open') { cb(new Error(`writer for ${path} is closed`)); return; }
        self.chunks.push(Buffer.from(chunk));
        self.accepted += chunk.length;
        cb();
      },
    });
    this.stream.on('error', () => {});   // errors reach the pipeline; never crash on a stray one
  }

  get size(): number { return this.base.length + this.accepted; }

  async commit(_o?: OpOptions): Promise<void> {
    if (this.state === 'committed') return;
    if (this.state === 'cancelled') throw new Error(`writer for ${this.path} was cancelled`);
    await finishStream(this.stream);
    this.state = 'committed';
    this.d._commit(this.path, Buffer.concat([this.base, ...this.chunks]));
    this.chunks.length = 0;
  }

  async cancel(_o?: OpOptions): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'cancelled';
    this.chunks.length = 0;
    if (!this.stream.destroyed) this.stream.destroy();
    try { this.d._remove(this.path); } catch { /* nothing to remove */ }
  }
}

