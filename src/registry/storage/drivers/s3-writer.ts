// The S3 driver's FileWriter: streams into a multipart upload in parts of `chunksize`, and makes the object
// visible only at commit(). Content smaller than one part is one PutObject. It holds one buffer of one part (two
// while its parts overlap, below).
//
// Each part is sent while its bytes arrive: an UploadPart of `chunksize` bytes whose body is fed as the request
// body comes in (backpressure: the write callback waits for that body to drain), so the client's upload and the
// store's overlap instead of alternating (receive a part, then send it). The exception is the first part of a body
// of unknown length (a chunked PATCH, as docker sends every layer): it is sent whole from the buffer once full, so
// a body smaller than one part is one PutObject, sent once (see feed()). The same bytes are also kept in the one
// part buffer while the part streams: a streamed request cannot be retried (the SDK does not retry streaming
// bodies), so a part whose stream fails is sent again from the buffer, with the SDK's retries. A writer that ends
// mid-part aborts that part's request (the store keeps nothing of an incomplete part) and stores the buffer as it
// must: a shorter part of its own (5 MiB and up), the tail object, or the last part.
//
// Parts overlap: once a part's last byte is sent, the next part starts streaming while the store finishes the
// first (on the tests' Ceph RGW ~30 ms of a ~125 ms 10 MiB part, idle time for the store otherwise). The sent part
// keeps the buffer until the store answers, so a part the store fails after its whole body (S3 answers an
// occasional 500 InternalError or 503 SlowDown that way) is sent again from it, with the SDK's retries, as
// Distribution's driver retries its buffered parts. Meanwhile the next part goes into a second buffer from the
// driver's PartBuffers, which lends one to OVERLAP_BUFFERS writers at a time (one): the others wait for the store's
// answer before they reuse their one buffer (with another upload in flight the store has other work meanwhile).
// So memory is (uploads + OVERLAP_BUFFERS) × chunksize at most; Distribution's writer holds two parts' worth each.
// Measured (bench, 4 concurrent 1 GiB uploads, peak RSS, 2 runs each beside the one-buffer writer): one lent
// buffer 209 / 184 MiB against 209 / 184; two lent 205 / 208 against 196 / 189 (the target is 200). Holding the
// next part's incoming chunks instead of a second buffer was tried too: they outlive the scavenges that free
// request-body buffers (cli/gc-tuning.ts), and the 4 uploads ran at 187-207 MB/s against 241.
// The parts in the store stay a contiguous run (what pendingState counts): a part's last bytes are sent only after
// the part before it was acknowledged, so a part after a failed one is always incomplete, and the store drops it.
// Streamed request bodies hold the incoming chunks, never a buffer.
// Streamed parts also skip the SHA-256 of the payload the SDK computes for buffered bodies on http endpoints.
import { createHash } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { finishStream, type UploadBufferStats } from '../base.js';
import { PathNotFoundError, StorageUnavailableError, type FileWriter, type OpOptions } from '../driver.js';
import type { PutObjectCommandInput } from '@aws-sdk/client-s3';   // types only: the SDK loads on first use
import type { S3Connection } from './s3-client.js';

/** Options every object write carries (encryption, storage class, ACL), as Distribution sets them. */
export type PutOptions = Pick<PutObjectCommandInput, 'ContentType' | 'ACL' | 'StorageClass' | 'ServerSideEncryption' | 'SSEKMSKeyId'>;

/** What the writer needs of its driver (s3.ts's S3Driver). */
export interface S3WriterTarget {
  readonly bucket: string;
  readonly chunkSize: number;
  readonly put: PutOptions;
  readonly params: { readonly multipartcopychunksize: number };
  /** The driver's part buffers (bounds the second buffers of overlapping parts). */
  readonly buffers: PartBuffers;
  key(p: string): string;
  call<T>(path: string, fn: (c: S3Connection) => Promise<T>): Promise<T>;
  /** The driver's known uploads (S3Driver.known): a writer notes the multipart upload it starts, and forgets one it
   *  completes or aborts. */
  readonly known: { set(key: string, upload: { uploadId: string; initiated: Date }): void; delete(key: string): void };
}

const MiB = 1024 * 1024;
/** S3's smallest part but the last. */
const MIN_PART = 5 * MiB;

/** A part on its way to the store: streamed (`body`: fed as the bytes arrive), or sent whole from its buffer. */
interface SentPart {
  readonly number: number;
  /** Its declared length: the buffer's, or less where the expected size ends sooner (sizeHint). */
  readonly length: number;
  /** The streamed request's body; none when the part was sent from its buffer (a Buffer body the SDK retries). */
  readonly body?: PassThrough;
  readonly ac: AbortController;
  /** The part's ETag; rejects when the request failed or was aborted (then `failed` is true). */
  readonly done: Promise<string>;
  failed: boolean;
  /** Its bytes, once sent whole, until the store answers (settlePrev sends them again if it fails the part). */
  buf?: Buffer;
}

/** How many writers of one driver may hold a second part buffer at once (their parts overlap). */
export const OVERLAP_BUFFERS = 1;
/** Free buffers are kept for reuse this long after the last one came back (then left to the GC). */
const KEEP_FREE_MS = 30_000;

/**
 * A driver's part buffers (`size` = chunksize bytes each). Every writer gets one (acquire()); a second one, for the
 * next part to stream into while the store answers the one before, only while fewer than `limit` writers hold one
 * (second()). Buffers that come back are reused (a new 10 MiB buffer is 2,560 pages to fault in, and each PATCH of
 * a chunked upload opens a writer), at most `limit` of them, dropped KEEP_FREE_MS after the last came back.
 *
 * At most `max` buffers are out at once (the s3 parameter `buffermemory` / chunksize): each upload in progress holds
 * one, so without a bound, concurrent PATCHes (a flood of them, or only many clients at once) would take memory
 * without end. A writer over the bound waits for a buffer (first come, first served) before it reads its body:
 * the client's upload stalls (TCP flow control) instead of the process running out of memory; pulls and other
 * requests go on. The wait ends with the request (its signal). Second buffers are lent only while nobody waits.
 */
export class PartBuffers {
  private lent = 0;
  private out = 0;
  private high = 0;
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<{ resolve(b: Buffer): void; reject(err: unknown): void; cancel(): void }> = [];
  private timer?: NodeJS.Timeout;
  constructor(readonly size: number, readonly limit = OVERLAP_BUFFERS, readonly max = Infinity) {}

  /** Second buffers held now. */
  get seconds(): number { return this.lent; }
  /** Buffers out now, the most out at once so far, and the writers waiting for one. */
  get inUse(): number { return this.out; }
  get peak(): number { return this.high; }
  get queued(): number { return this.waiting.length; }
  stats(): UploadBufferStats { return { inUse: this.out, waiting: this.waiting.length, limit: this.max, size: this.size }; }

  /** A writer's buffer: at once while fewer than `max` are out and nobody waits, else when one comes back. Rejects
   *  with the signal's reason when it aborts first. */
  acquire(signal?: AbortSignal): Promise<Buffer> {
    if (this.out < this.max && this.waiting.length === 0) return Promise.resolve(this.take());
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      const w = { resolve, reject, cancel: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(w);
    });
  }

  second(): Buffer | undefined {
    if (this.lent >= this.limit || this.out >= this.max || this.waiting.length > 0) return undefined;
    this.lent++;
    return this.take();
  }

  private take(): Buffer {
    this.out++;
    if (this.out > this.high) this.high = this.out;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives a buffer back; `second`: its writer held two (one of them counted by second()). A buffer of another
   *  size (a writer's for prior content beyond one part) was never counted. */
  back(b: Buffer, second: boolean): void {
    if (b.length !== this.size) return;
    this.returned(second);
    const w = this.waiting.shift();
    if (w) {
      w.cancel();
      this.out++;
      w.resolve(b);
      return;
    }
    if (this.free.length >= this.limit) return;
    this.free.push(b);
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => { this.timer = undefined; this.free.length = 0; }, KEEP_FREE_MS).unref();
  }

  /** Counts back `n` buffers that will not come back (their writer was collected without ending: see S3Writer);
   *  waiters get new ones. */
  lost(n: number, second: boolean): void {
    for (let i = 0; i < n; i++) {
      this.returned(second && i === 0);
      const w = this.waiting.shift();
      if (w) { w.cancel(); w.resolve(this.take()); }
    }
  }

  private returned(second: boolean): void {
    if (second) this.lent--;
    this.out--;
  }
}

/** A writer's counted buffers, for the pool to count back if the writer is collected without ending (a bug:
 *  every path of core/upload.ts ends its writers). Holds no reference to the writer. */
interface Held { pool: PartBuffers; n: number; second: boolean }
const collected = new FinalizationRegistry<Held>((h) => { if (h.n > 0) h.pool.lost(h.n, h.second); });

/**
 * Appending to a committed object (`base` bytes): below one part the prior content is read into the buffer and
 * re-written with the new bytes; from one part up it becomes the first parts of a new multipart upload by
 * UploadPartCopy (server side), as Distribution's driver resumes. Appending to a closed writer (`pending`)
 * continues its multipart upload: its tail (less than one part) is read into the buffer, nothing is copied.
 */
export interface Part { PartNumber: number; ETag: string }

/** What a writer starts from: `base` bytes stored before; `prior`: those of them it re-sends (an object smaller
 *  than one part, or a closed writer's tail); `pending`: it continues a closed writer's multipart upload. */
export interface WriterStart {
  base: number;
  existed: boolean;
  prior?: Buffer;
  pending?: { uploadId?: string; parts: Part[]; /** A tail object exists (undefined: maybe). */ tail?: boolean };
  /** The content token of what it starts from (FileWriter.version). */
  version?: string;
  /** The bytes the caller expects to write (sizeHint): parts are sized so that none is cut short at the end. */
  expect?: number;
}

/** FileWriter.version of a closed writer's state: its parts' ETags and its (counted) tail's, hashed short (a
 *  session may have thousands of parts). Part ETags differ when the content does (MD5, or random under SSE-KMS:
 *  then a token differs more often than needed, which only costs a re-hash). */
export function pendingVersion(parts: readonly Part[], tailETag?: string): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.PartNumber}:${p.ETag},`);
  h.update(`|${tailETag ?? ''}`);
  return `mp:${h.digest('base64url').slice(0, 32)}`;
}

/** FileWriter.version of a committed object (its ETag); undefined when there is none. */
export function objectVersion(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : `o:${etag}`;
}

/** The hidden object holding a closed writer's bytes after its last full part ("~" is not a path character, so
 *  list() and walk() never show it). */
export const TAIL = '~tail';

/**
 * The tail's metadata key (x-amz-meta-berth-parts): how many parts the multipart upload had when the tail was
 * written. A writer that continues the upload sends the tail's bytes first, in its first new part, and deletes the
 * tail only at commit; if its process dies in between (kill -9 mid-PATCH), the upload has more parts than the tail
 * names, and the tail's bytes are in them: such a tail is stale and is not counted (pendingState), or the size
 * would count those bytes twice and the client would resume past what is stored.
 */
export const TAIL_PARTS = 'berth-parts';

export class S3Writer implements FileWriter {
  readonly stream: Writable;
  private buf?: Buffer;
  private fill = 0;
  private accepted = 0;
  private dirty = false;
  private uploadId?: string;
  private parts: Part[] = [];
  private state: 'open' | 'committed' | 'cancelled' | 'failed' = 'open';
  /** The part's capacity (the buffers' length). */
  private readonly cap: number;
  /** The writer holds a second buffer (PartBuffers.second()). */
  private second = false;
  private inflight: Promise<void> = Promise.resolve();
  /** Content it starts from (a closed writer's tail, a small object), until the writer has its buffer. */
  private prior?: Buffer;
  /** The counted buffers it holds (PartBuffers), for the pool should the writer be collected without ending. */
  private readonly held: Held;
  /** Ends a wait for a buffer: the caller's signal, or cancel(). */
  private readonly stop = new AbortController();
  private readonly waitSignal: AbortSignal;
  private cur?: SentPart;
  /** The part sent whole, not yet acknowledged (at most one). */
  private prev?: SentPart;
  /** Why the writer cannot go on: a part sent whole failed, and its bytes are gone from the buffer. */
  private broken?: unknown;
  private readonly expect?: number;

  private readonly base: number;
  private readonly existed: boolean;
  private readonly pending: boolean;
  /** A tail object may exist (the closed writer's it continues): commit and cancel delete it. */
  private readonly pendingTail: boolean;

  constructor(private readonly d: S3WriterTarget, private readonly path: string, start: WriterStart, signal?: AbortSignal) {
    this.base = start.base;
    this.existed = start.existed;
    this.pending = !!start.pending;
    this.pendingTail = !!start.pending && start.pending.tail !== false;
    this.version = start.version;
    this.expect = start.expect !== undefined && Number.isSafeInteger(start.expect) && start.expect >= 0 ? start.expect : undefined;
    if (start.pending) {
      this.uploadId = start.pending.uploadId;
      this.parts = [...start.pending.parts];
    }
    const prior = start.prior;
    this.cap = Math.max(d.chunkSize, prior?.length ?? 0);
    if (prior && prior.length) {
      this.prior = prior;   // copied into the buffer when the writer gets one (its first write)
      this.fill = prior.length;
    }
    this.waitSignal = signal ? AbortSignal.any([signal, this.stop.signal]) : this.stop.signal;
    this.held = { pool: d.buffers, n: 0, second: false };
    collected.register(this, this.held, this.held);
    const self = this;
    this.stream = new Writable({
      signal,
      write(chunk: Buffer, _enc, cb) {
        if (self.state !== 'open') { cb(new Error(`writer for ${path} is closed`)); return; }
        const p = self.inflight = self.take(chunk);
        p.then(() => cb(), cb);
      },
    });
    this.stream.on('error', () => {});   // errors reach the pipeline; never crash on a stray one
  }

  get size(): number { return this.base + this.accepted; }

  /** FileWriter.version: what it started from, then (after close or commit) what it left. */
  version?: string;

  /** True when the prior content is copied server side (it is at least one part) rather than buffered. */
  private get copyPrior(): boolean { return !this.pending && this.base >= this.d.chunkSize; }

  private async take(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'cancelled') return;
      if (this.broken) throw this.broken;
      if (!this.buf) {
        await this.ownBuffer();
        if (!this.buf) return;   // cancelled while it waited
      }
      const n = Math.min(chunk.length - at, (this.cur?.length ?? this.cap) - this.fill);
      const piece = chunk.subarray(at, at + n);
      piece.copy(this.buf, this.fill);
      this.fill += n;
      this.accepted += n;
      this.dirty = true;
      at += n;
      await this.feed(piece);
      if (this.fill === (this.cur?.length ?? this.cap)) await this.finishPart();
    }
  }

  /** The writer's buffer, from the driver's (it may wait for one: PartBuffers), with the prior content in it. */
  private async ownBuffer(): Promise<void> {
    const counted = this.cap === this.d.chunkSize;
    const b = counted ? await this.d.buffers.acquire(this.waitSignal) : Buffer.allocUnsafeSlow(this.cap);
    if (counted) this.held.n++;
    if (this.state !== 'open') { this.drop(b); return; }
    this.prior?.copy(b);
    this.prior = undefined;
    this.buf = b;
  }

  /** The bytes of the part being filled (without the writer's buffer: the prior content, or nothing). */
  private content(): Buffer {
    return this.buf ? this.buf.subarray(0, this.fill) : this.prior ? this.prior.subarray(0, this.fill) : Buffer.alloc(0);
  }

  /**
   * Sends `piece` (the bytes just added to the buffer) on the part in flight, first starting one when it is due:
   * at once when the multipart upload exists (or the prior content is copied into one, or the expected size says
   * there will be one), else when the buffer holds MIN_PART bytes (less may stay a single PutObject, and a
   * multipart upload is only worth it from there). A new part's body begins with a copy of the buffer so far (so
   * starting at once copies one chunk, not MIN_PART). The bytes that complete a part wait for the part before it
   * (settlePrev).
   *
   * A body of unknown length (no sizeHint: a chunked PATCH, as docker sends every layer) starts no multipart upload
   * and streams nothing until its first part is full: that part is sent whole from the buffer (finishPart), and the
   * parts after it stream. Streamed from the start, a layer smaller than one part would be a part cut short at its
   * end, aborted and sent again (and a multipart upload where one PutObject does); the first part waits instead.
   * Measured (bench/s3-stream.ts --no-length, 3 at a time, 6 runs): 3 × 7 MiB 0.32-0.45 s against 0.49-0.61 s
   * streamed; 3 × 25 MiB 0.69-0.87 s against 0.68-1.08; one 1 GiB 166-187 MiB/s against 149-164. Buffering every
   * part of such a body, as Distribution does, was slower for large ones (one 1 GiB 122-148 MiB/s): the store then
   * waits for each part to fill.
   */
  private async feed(piece: Buffer): Promise<void> {
    let part = this.cur;
    if (!part) {
      if (!this.uploadId && !this.copyPrior) {
        if (this.expect === undefined) return;   // the first part of a body of unknown length: see above
        const hinted = this.fill + Math.max(0, this.expect - this.accepted) >= MIN_PART;
        if (!hinted && this.fill < Math.min(MIN_PART, this.cap)) return;
      }
      const length = this.partLength();
      if (length === undefined) return;
      part = await this.startPart(length);
      piece = Buffer.from(this.buf!.subarray(0, this.fill));
    }
    if (part.failed) return;   // sent again from the buffer when the part is full
    if (this.fill >= part.length) await this.settlePrev();
    if (part.failed) return;
    if (!part.body!.write(piece)) await drained(part as SentPart & { body: PassThrough });
  }

  /** Waits for the part sent whole before (if any) and records it. When the store failed it (a 5xx, a network
   *  error: not a missing upload), it is sent again from its buffer, with the SDK's retries; when that fails too, the
   *  writer is broken and this throws the store's error. Its buffer is free after. */
  private async settlePrev(): Promise<void> {
    const part = this.prev;
    if (!part) { if (this.broken) throw this.broken; return; }
    let err: unknown;
    let ETag = await part.done.catch((e: unknown) => { err = e; return undefined; });
    if (ETag === undefined && part.body && part.buf && err instanceof StorageUnavailableError && this.state === 'open') {
      ETag = await this.uploadPart(part.number, part.buf.subarray(0, part.length), { signal: part.ac.signal }).catch((e: unknown) => { err = e; return undefined; });
    }
    this.prev = undefined;
    this.release(part);
    if (ETag === undefined) {
      this.broken = err ?? new Error(`part ${part.number} of ${this.path} failed`);
      throw this.broken;
    }
    this.parts.push({ PartNumber: part.number, ETag });
  }

  /** A settled part's buffer: the writer's one buffer again if it has none (it got no second), else back to the
   *  driver's. */
  private release(part: SentPart): void {
    const b = part.buf;
    part.buf = undefined;
    if (!b) return;
    if (this.buf === undefined && this.state === 'open') this.buf = b;
    else this.drop(b);
  }

  private drop(b: Buffer | undefined): void {
    if (!b) return;
    if (b.length === this.d.buffers.size) {
      this.held.n--;
      this.held.second = false;
    }
    this.d.buffers.back(b, this.second);
    this.second = false;
  }

  /**
   * The length to declare for the next streamed part: the buffer's, unless the expected size (sizeHint) ends
   * sooner. Then the part is what remains, or, when that would leave a last piece under MIN_PART after a full
   * part, what remains less MIN_PART (both parts valid, no tail); undefined when what remains is under MIN_PART:
   * it is not streamed (it becomes the tail or the last part from the buffer).
   */
  private partLength(): number | undefined {
    const cap = this.cap;
    if (this.expect === undefined) return cap;
    const remaining = this.fill + Math.max(0, this.expect - this.accepted);   // this part's bytes, if the hint holds
    let length = cap;
    if (remaining < MIN_PART) return this.fill >= cap ? cap : undefined;
    if (remaining <= cap) length = remaining;
    else if (remaining < cap + MIN_PART && remaining - MIN_PART >= MIN_PART) length = remaining - MIN_PART;
    return Math.min(cap, Math.max(length, this.fill));
  }

  /** Starts the next part's UploadPart with a streamed body of `length` bytes (fed by feed()). */
  private async startPart(length: number): Promise<SentPart> {
    const UploadId = await this.ensureUpload();
    const body = new PassThrough();
    const ac = new AbortController();
    const number = this.parts.length + (this.prev ? 2 : 1);
    const done = this.d.call(this.path, (c) => c.client.send(new c.commands.UploadPartCommand({
      Bucket: this.d.bucket, Key: this.d.key(this.path), UploadId, PartNumber: number, Body: body, ContentLength: length,
    }), { abortSignal: ac.signal })).then((r) => r.ETag!);
    const part: SentPart = { number, length, body, ac, done, failed: false };
    done.catch(() => { part.failed = true; body.destroy(); });
    this.cur = part;
    return part;
  }

  /** The part is complete: when it was streamed whole, it is acknowledged later (settlePrev) and keeps its buffer
   *  until then. Else (nothing streamed: a body of unknown length; or its stream failed) the buffer is sent as the
   *  part now, a Buffer body the SDK retries, and it too is acknowledged later. Either way the next part goes into a
   *  second buffer meanwhile, or, when the driver has none to spare, into the same one once the store answered. */
  private async finishPart(): Promise<void> {
    const part = this.cur;
    this.cur = undefined;
    await this.settlePrev();
    if (part && !part.failed) {
      part.body!.end();
      return this.handOff(part);
    }
    await this.ensureUpload();
    const number = this.parts.length + 1;
    const ac = new AbortController();
    const done = this.uploadPart(number, this.buf!.subarray(0, this.fill), { signal: ac.signal });
    const sent: SentPart = { number, length: this.fill, ac, done, failed: false };
    done.catch(() => { sent.failed = true; });
    return this.handOff(sent);
  }

  /** `part` (its last byte sent) keeps the buffer until the store answers; the writer goes on in a second one. */
  private async handOff(part: SentPart): Promise<void> {
    part.buf = this.buf;
    this.prev = part;
    this.buf = this.d.buffers.second();
    this.second = this.buf !== undefined;
    if (this.second) { this.held.n++; this.held.second = true; }
    this.fill = 0;
    if (!this.buf) await this.settlePrev();   // gives the part's buffer back to this writer
  }

  /** Aborts the part being fed (the writer ends mid-part, or is cancelled): the store keeps nothing of it. */
  private async abortStreamed(): Promise<void> {
    const part = this.cur;
    if (!part) return;
    this.cur = undefined;
    part.failed = true;
    part.ac.abort();
    part.body?.destroy();
    await part.done.catch(() => {});
  }

  private async ensureUpload(o?: OpOptions): Promise<string> {
    if (this.uploadId) return this.uploadId;
    const Key = this.d.key(this.path);
    const r = await this.d.call(this.path, (c) => c.client.send(new c.commands.CreateMultipartUploadCommand({
      Bucket: this.d.bucket, Key, ...this.d.put,
    }), { abortSignal: o?.signal }));
    this.uploadId = r.UploadId!;
    this.d.known.set(Key, { uploadId: this.uploadId, initiated: new Date() });
    if (this.copyPrior) {
      const source = `${this.d.bucket}/${encodeURIComponent(Key).replaceAll('%2F', '/')}`;
      for (const [a, b] of copyRanges(this.base, this.d.params.multipartcopychunksize)) {
        const PartNumber = this.parts.length + 1;
        const p = await this.d.call(this.path, (c) => c.client.send(new c.commands.UploadPartCopyCommand({
          Bucket: this.d.bucket, Key, UploadId: this.uploadId, PartNumber, CopySource: source, CopySourceRange: `bytes=${a}-${b - 1}`,
        }), { abortSignal: o?.signal }));
        this.parts.push({ PartNumber, ETag: p.CopyPartResult!.ETag! });
      }
    }
    return this.uploadId;
  }

  /** Stores the buffer as the next part; the buffer is reused only after the store answered. */
  private async flushPart(o?: OpOptions): Promise<void> {
    await this.ensureUpload(o);
    const PartNumber = this.parts.length + 1;
    const ETag = await this.uploadPart(PartNumber, this.content(), o);
    this.parts.push({ PartNumber, ETag });
    this.fill = 0;
  }

  /** One part from memory (a Buffer body: the SDK retries it). */
  private async uploadPart(PartNumber: number, body: Buffer, o?: OpOptions): Promise<string> {
    const UploadId = this.uploadId!;
    const r = await this.d.call(this.path, (c) => c.client.send(new c.commands.UploadPartCommand({
      Bucket: this.d.bucket, Key: this.d.key(this.path), UploadId, PartNumber, Body: body, ContentLength: body.length,
    }), { abortSignal: o?.signal }));
    return r.ETag!;
  }

  private async settle(): Promise<void> {
    await finishStream(this.stream);
    await this.inflight.catch(() => {});   // a failed part stays in the buffer and is sent again below
  }

  /**
   * Persists what was written without completing the multipart upload, so writer(p, { append: true }) in any
   * process continues it: full parts are in the upload, the rest goes to the tail object. Without a multipart
   * upload (less than one part in all) this is commit(): one PutObject.
   */
  async close(o?: OpOptions): Promise<void> {
    if (this.state === 'committed') return;
    if (this.state !== 'open') throw new Error(`writer for ${this.path} was ${this.state}`);
    await this.ending(() => this.closeOpen(o));
  }

  private async closeOpen(o?: OpOptions): Promise<void> {
    await this.settle();
    if (!this.dirty && (this.pending || this.existed)) { this.end(); return; }   // nothing new: the store is as it was
    if (!this.uploadId && !(this.copyPrior && this.dirty)) return this.commitOpen(o);
    await this.abortStreamed();
    await this.settlePrev();   // a broken writer stores nothing more: what the store acknowledged is the session
    await this.ensureUpload(o);
    // From MIN_PART up the rest is a (shorter) part of its own; below, the tail object. No new tail leaves an
    // earlier one stale (its part count is behind), so it is never counted again.
    if (this.fill >= MIN_PART) await this.flushPart(o);
    let tailETag: string | undefined;
    if (this.fill > 0) {
      const body = this.content();
      const r = await this.d.call(this.path, (c) => c.client.send(new c.commands.PutObjectCommand({
        Bucket: this.d.bucket, Key: this.d.key(this.path) + TAIL, Body: body, ContentLength: body.length, ...this.d.put,
        Metadata: { [TAIL_PARTS]: String(this.parts.length) },
      }), { abortSignal: o?.signal }));
      tailETag = r.ETag;
    }
    this.version = pendingVersion(this.parts, tailETag);
    this.end();
  }

  private end(): void {
    this.state = 'committed';
    this.freeBuffers();
  }

  /** Runs close's or commit's work; when it fails, the writer is done too (its buffers go back to the driver):
   *  what the store acknowledged stays, and the caller's retry opens a new writer on it. */
  private async ending(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (this.state === 'open') { this.state = 'failed'; this.freeBuffers(); }
      throw err;
    }
  }

  /** Gives the writer's buffers back (a part still unanswered after a failure or cancel is not sent again). */
  private freeBuffers(): void {
    if (this.prev) { this.drop(this.prev.buf); this.prev.buf = undefined; }
    this.drop(this.buf);
    this.buf = undefined;
    this.prior = undefined;
  }

  async commit(o?: OpOptions): Promise<void> {
    if (this.state === 'committed') return;
    if (this.state !== 'open') throw new Error(`writer for ${this.path} was ${this.state}`);
    await this.ending(() => this.commitOpen(o));
  }

  private async commitOpen(o?: OpOptions): Promise<void> {
    await this.settle();
    const Key = this.d.key(this.path);
    if (!this.uploadId && !(this.copyPrior && this.dirty)) {
      if (this.dirty || this.pending || !this.existed || this.base === 0) {
        const body = this.content();
        const r = await this.d.call(this.path, (c) => c.client.send(new c.commands.PutObjectCommand({
          Bucket: this.d.bucket, Key, Body: body, ContentLength: body.length, ...this.d.put,
        }), { abortSignal: o?.signal }));
        this.version = objectVersion(r.ETag);
      }
    } else {
      // A failure here leaves the multipart upload (and a tail) as they were: what the store acknowledged stays
      // the session's content (a tail whose part count is now behind is stale, not counted), so the client's
      // retried commit completes it. Aborting it would lose every byte of the session. cancel() and purging abort.
      await this.abortStreamed();
      await this.settlePrev();
      if (this.fill > 0 || !this.uploadId) await this.flushPart(o);
      const UploadId = this.uploadId!;
      const r = await this.d.call(this.path, (c) => c.client.send(new c.commands.CompleteMultipartUploadCommand({
        Bucket: this.d.bucket, Key, UploadId, MultipartUpload: { Parts: this.parts },
      }), { abortSignal: o?.signal }));
      this.d.known.delete(Key);
      this.version = objectVersion(r.ETag);
    }
    if (this.pendingTail) await this.deleteTail();
    this.end();
  }

  private async deleteTail(): Promise<void> {
    await this.d.call(this.path, (c) => c.client.send(new c.commands.DeleteObjectCommand({
      Bucket: this.d.bucket, Key: this.d.key(this.path) + TAIL,
    })));
  }

  private async abort(): Promise<void> {
    if (!this.uploadId) return;
    const UploadId = this.uploadId;
    this.uploadId = undefined;
    this.d.known.delete(this.d.key(this.path));
    await this.d.call(this.path, (c) => c.client.send(new c.commands.AbortMultipartUploadCommand({
      Bucket: this.d.bucket, Key: this.d.key(this.path), UploadId,
    }))).catch((err) => { if (!(err instanceof PathNotFoundError)) throw err; });
  }

  async cancel(_o?: OpOptions): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'cancelled';
    this.stop.abort(new Error(`writer for ${this.path} was cancelled`));   // a write waiting for a buffer
    if (!this.stream.destroyed) this.stream.destroy();
    this.prev?.ac.abort();   // its answer, or its sending again from the buffer (settlePrev), is not waited for
    await this.abortStreamed();
    await this.inflight.catch(() => {});
    await this.abortStreamed();   // one the last write may have started meanwhile
    const prev = this.prev;
    if (prev) { prev.ac.abort(); await prev.done.catch(() => {}); }   // the upload is aborted below anyway
    this.freeBuffers();
    this.prev = undefined;
    await this.abort();
    await this.d.call(this.path, (c) => c.client.send(new c.commands.DeleteObjectCommand({
      Bucket: this.d.bucket, Key: this.d.key(this.path),
    })));
    if (this.pendingTail) await this.deleteTail();
  }
}

/** Resolves when the part's body can take more, or its request ended (then nobody reads the body any more). */
function drained(part: SentPart & { body: PassThrough }): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { part.body.off('drain', done); resolve(); };
    part.body.once('drain', done);
    part.done.then(done, done);
  });
}

/** [start, end) ranges of about `chunk` bytes covering `size`, none but the last under 5 MiB (a short
 *  remainder joins the range before it). */
export function copyRanges(size: number, chunk: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a < size; a += chunk) out.push([a, Math.min(size, a + chunk)]);
  if (out.length > 1 && out[out.length - 1][1] - out[out.length - 1][0] < 5 * MiB) {
    const last = out.pop()!;
    out[out.length - 1][1] = last[1];
  }
  return out;
}


