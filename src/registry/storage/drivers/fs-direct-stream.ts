// The filesystem driver's upload write stream with O_DIRECT: bytes are copied into page-aligned 1 MiB
// blocks (aligned-blocks.ts) and each full block is written with one O_DIRECT pwrite, straight from that
// block to the disk, while the next block fills. Only the unaligned edges go through the page cache: the
// head up to the first 4 KiB boundary (a resumed upload starts wherever the last PATCH ended) and the tail
// that is left at the end. commit()'s fsync on the same file then flushes little more than metadata.
//
// Why bypass the page cache for upload data: it is written once, fsynced at commit and then served from the
// blob store, so caching it while it arrives evicts hotter pages; and copying it into the page cache is the
// costliest part of an upload on machines where page-cache growth is expensive. On the bench VM (firecracker,
// DAMON reclaim) writing 1 GiB through the page cache costs 3.1-3.6 CPU-s of kernel time once the cache
// grows into memory it has not touched recently, against 0.03-0.05 CPU-s with O_DIRECT (bench/RESULTS.md).
// MinIO writes object data with O_DIRECT for the same reasons. `directwrites: false` turns it off.
//
// Staged bytes do not wait for a full block forever: when no bytes have arrived for IDLE_FLUSH_MS (a slow or
// stalled client) the staged ones are written out (aligned part direct, the rest through the page cache, and
// the stream starts over with a head), so a crash of the process loses at most that much of what a client
// sent, as with plain writes; the upload resumes from the file's size.
//
// Same contract as AppendStream: bytesWritten counts bytes in the file; pendingBytes the ones accepted
// (write callback called) but not yet there; one I/O at a time, in file order; destroy waits for the I/O in
// flight and still writes what it accepted, so the file holds every accepted byte. It never owns the
// descriptors. If the filesystem refuses an O_DIRECT write (EINVAL: alignment it does not support), that
// block and everything after it go through the page cache, and onRefused() tells the driver.
import { write } from 'node:fs';
import { Writable } from 'node:stream';
import { WRITE_BLOCK as BLOCK, giveBack, takeBlock } from './aligned-blocks.js';

/** File offsets and lengths of O_DIRECT writes are multiples of this (covers 512 B and 4 KiB devices). */
export const DIRECT_ALIGN = 4096;
/** Input idle this long with bytes staged: write them out. */
const IDLE_FLUSH_MS = 100;

export interface DirectFds {
  /** Opened for writing (O_APPEND or not), through the page cache: the unaligned head and tail. */
  append: number;
  /** Opened O_WRONLY | O_DIRECT, written at explicit offsets. */
  direct: number;
}

export class DirectAppendStream extends Writable {
  bytesWritten = 0;
  /** Always null: there are no background syncs to fail (AppendStream's field, for the writer). */
  readonly syncError: Error | null = null;
  private direct = true;
  private block: Buffer | null = null;   // the block being filled
  private fill = 0;
  private pos: number;                   // file offset of block[0], i.e. of the next byte not yet written
  private headLeft: number;              // bytes to write through the page cache before pos is aligned
  private inFlight: Promise<void> | null = null;   // the previous block's write
  private inFlightBytes = 0;
  private op: Promise<void> | null = null;          // the _writev or _final running
  /** A write failed: the file holds a correct prefix of the accepted bytes and nothing more is written
   *  (appending after a gap would put later bytes at the wrong offset). */
  private failed: Error | null = null;

  private readonly align: number;
  /** Bumped by every write; the idle timer flushes when it has not moved for a whole tick. */
  private inputSeq = 0;
  private seenSeq = -1;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly onRefused?: (err: Error) => void;

  constructor(private readonly fds: DirectFds, start: number,
    o: { signal?: AbortSignal; highWaterMark?: number; onRefused?: (err: Error) => void; align?: number } = {}) {
    // The block is the buffer: the stream's own queue needs to hold little (64 KiB, as the hashing tap).
    super({ highWaterMark: o.highWaterMark ?? 64 * 1024, signal: o.signal });
    this.pos = start;
    // `align` exists for tests: a smaller one than the device's makes the kernel refuse (EINVAL) for real.
    this.align = o.align ?? DIRECT_ALIGN;
    this.headLeft = this.headFrom(start);
    this.onRefused = o.onRefused;
  }

  /** Bytes from file offset `at` to the next aligned one (written through the page cache). */
  private headFrom(at: number): number { return (this.align - (at % this.align)) % this.align; }

  /** Accepted bytes not yet in the file (staged in the current block or being written). */
  get pendingBytes(): number { return this.fill + this.inFlightBytes; }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // The common case, synchronously: a chunk (≤ 64 KiB from a socket) that fits in the block being filled.
    // No promise per chunk: at 16 KiB TLS records that is 65536 chunks per GiB.
    const blk = this.block;
    if (blk && !this.op && this.fill + chunk.length < blk.length) {
      chunk.copy(blk, this.fill);
      this.fill += chunk.length;
      this.inputSeq++;
      cb();
      return;
    }
    this.run(() => this.take([chunk]), cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.run(() => this.take(chunks.map((c) => c.chunk)), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.stopIdleTimer();
    this.run(() => this.flushAll(), cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Let the running operation finish, then write what was accepted: the file must hold every byte the
    // stream took (the upload stays resumable at the file's size). Errors here are the caller's to see in
    // the file size; the destroy reason is what the stream reports.
    this.stopIdleTimer();
    const pending = this.op ?? Promise.resolve();
    pending.catch(() => undefined).then(() => this.flushAll()).catch(() => undefined).then(() => cb(err));
  }

  /** Runs `f` after the operation in flight (an idle flush may be running when a write comes in). */
  private run(f: () => Promise<void>, cb: (err?: Error | null) => void): void {
    this.inputSeq++;
    this.track(this.op ? this.op.catch(() => undefined).then(f) : f())
      .then(() => { this.armIdleTimer(); cb(); }, (e: Error) => cb(e));
  }

  /** Makes `p` the operation in flight until it settles; returns it. */
  private track(p: Promise<void>): Promise<void> {
    this.op = p;
    const clear = () => { if (this.op === p) this.op = null; };
    p.then(clear, clear);
    return p;
  }

  /** While bytes are staged, checks every IDLE_FLUSH_MS whether input has stopped (no write for a whole
   *  tick, so IDLE_FLUSH_MS to twice that); then writes them out. */
  private armIdleTimer(): void {
    if (this.idleTimer || this.fill === 0 || this.destroyed) return;
    this.seenSeq = this.inputSeq;
    this.idleTimer = setInterval(() => {
      if (this.fill === 0 || this.destroyed || this.writableEnded) { this.stopIdleTimer(); return; }
      const moved = this.seenSeq !== this.inputSeq;
      this.seenSeq = this.inputSeq;
      if (this.op || moved) return;
      this.track(this.flushAll().then(() => { this.headLeft = this.headFrom(this.pos); }))
        .catch((e: Error) => this.destroy(e));
      this.stopIdleTimer();
    }, IDLE_FLUSH_MS);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = null;
  }

  private async take(bufs: Buffer[]): Promise<void> {
    if (this.failed) throw this.failed;
    for (const b of bufs) {
      let off = 0;
      if (this.headLeft > 0) {
        const n = Math.min(this.headLeft, b.length);
        await this.appendWrite(b, 0, n, this.pos);
        this.pos += n;
        this.headLeft -= n;
        off = n;
      }
      while (off < b.length) {
        if (!this.block) {
          this.block = this.direct ? takeBlock(BLOCK) : null;
          if (!this.block) {   // direct writes refused, or the block budget used up: through the page cache
            await this.settleInFlight();
            await this.appendWrite(b, off, b.length - off, this.pos);
            this.pos += b.length - off;
            break;
          }
          this.fill = 0;
        }
        const n = b.copy(this.block, this.fill, off);
        this.fill += n;
        off += n;
        if (this.fill === BLOCK) await this.startBlockWrite();
      }
    }
  }

  /** Waits for the previous block's write, then starts writing the full current block (not awaited). */
  private async startBlockWrite(): Promise<void> {
    await this.settleInFlight();
    const { blk, len, at } = this.detachStaged()!;
    const p = this.blockWrite(blk, len, at).finally(() => { giveBack(blk); this.inFlightBytes = 0; });
    this.inFlight = p;
    p.catch(() => undefined);   // observed by the next startBlockWrite or flushAll
  }

  /** Everything accepted into the file: the block in flight, then the staged block (aligned part direct,
   *  the rest through the page cache). */
  private async flushAll(): Promise<void> {
    await this.settleInFlight();   // throws if a write failed: nothing more is written
    const staged = this.detachStaged();
    if (!staged) return;
    const { blk, len, at } = staged;
    try {
      const aligned = len - (len % this.align);
      if (aligned > 0) await this.blockWrite(blk, aligned, at);
      if (len > aligned) await this.appendWrite(blk, aligned, len - aligned, at + aligned);
    } finally {
      giveBack(blk);
      this.inFlightBytes = 0;
    }
  }

  /** Takes the staged block out for writing: its bytes now count as in flight at file offset `at`. */
  private detachStaged(): { blk: Buffer; len: number; at: number } | null {
    const blk = this.block;
    if (!blk) return null;
    const len = this.fill;
    const at = this.pos;
    this.block = null;
    this.fill = 0;
    this.pos += len;
    this.inFlightBytes = len;
    return { blk, len, at };
  }

  private async settleInFlight(): Promise<void> {
    const p = this.inFlight;
    this.inFlight = null;
    if (p) await p;
    if (this.failed) throw this.failed;
  }

  /** Writes blk[0, len) at file offset `at`: O_DIRECT while the filesystem takes it. */
  private async blockWrite(blk: Buffer, len: number, at: number): Promise<void> {
    let done = 0;
    while (done < len && this.direct) {
      let n: number;
      try {
        n = await pwrite(this.fds.direct, blk, done, len - done, at + done);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw (this.failed ??= err as Error);
        this.direct = false;            // this filesystem or device wants another alignment
        this.onRefused?.(err as Error);
        break;
      }
      this.bytesWritten += n;
      done += n;
      if (n % this.align !== 0) break;   // a short, unaligned write (not seen on regular files): finish buffered
    }
    if (done < len) await this.appendWrite(blk, done, len - done, at + done);
  }

  /** Writes buf[off, off+len) at file offset `at` through the page cache. Positional, because the
   *  descriptor's own offset knows nothing of the direct writes; on an O_APPEND descriptor Linux appends
   *  instead, which is the same place: one I/O at a time, in file order, so the file ends at `at`. */
  private async appendWrite(buf: Buffer, off: number, len: number, at: number): Promise<void> {
    let done = 0;
    while (done < len) {
      let n: number;
      try {
        n = await pwrite(this.fds.append, buf, off + done, len - done, at + done);
      } catch (err) {
        throw (this.failed ??= err as Error);
      }
      this.bytesWritten += n;
      done += n;
    }
  }
}

function pwrite(fd: number, buf: Buffer, off: number, len: number, at: number | null): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, off, len, at, (err, n) => (err ? reject(err) : resolve(n))));
}
