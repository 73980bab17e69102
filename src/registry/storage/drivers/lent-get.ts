// One HTTP/1.1 GET whose response body is read straight into buffers the consumer hands back (util/recycle.ts):
// the S3 driver's blob bytes from a presigned URL (s3-client.ts getObject), which a blob GET with redirect off relays
// to the client. Why not undici, which does every other outbound request's job: each socket read in Node's HTTP
// clients lands in a freshly allocated 64 KiB buffer, and fresh buffers cost this relay most of its CPU (page
// faults: bench/RESULTS.md, "Pull with redirect off"). net.Socket's `onread` takes a function that gives the buffer
// for each next read, so here the reads land in a few recycled buffers that sendBody() hands back once the client's
// socket is done with them. Measured on the tests' Ceph RGW (a 200 MiB object relayed into an http response, curl
// as the client, 4 runs each, Node 24): 0.46-0.77 CPU-s per GiB at 595-705 MB/s against undici's 1.4-1.9 at 434-517.
//
// It reads only what S3 sends for GetObject: a status line, headers, a body of Content-Length bytes. Anything else
// (chunked transfer coding, no Content-Length, a 1xx) fails with NotLendable before a byte of the body is taken, and
// the caller fetches that object with undici instead. One request per connection (`Connection: close`): the store
// closes first, so no socket waits in TIME_WAIT on berth's side, and a new connection acknowledges at once (Linux
// starts it in quick-ACK mode; s3-client.ts answersWithBody says why that matters on RGW). Over https that is a
// TLS handshake per blob GET, small beside a blob's bytes.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Readable } from 'node:stream';
import { RECYCLE } from '../../../util/recycle.js';
import { storeTimeout } from './s3-timeouts.js';

/** Read buffers: 256 KiB ran a little faster and cheaper than 64 KiB in the measurement above. Consecutive reads
 *  fill one buffer (each read gets what is left of it, while at least MIN_READ is), so small reads (a store across
 *  a network, a few KiB each) do not pin a whole buffer each: a GET holds about its read-ahead in buffers. */
const READ_SIZE = 256 * 1024;
const MIN_READ = 32 * 1024;
/** Idle read buffers kept for the next reads, shared by all GETs (4 MiB). */
const SPARE_MAX = 16;
/** Body bytes read ahead of the consumer per GET (then the socket pauses). */
const READ_AHEAD = 1024 * 1024;
/** An answer's status line and headers may take this much; a longer head is a broken store or proxy. */
const HEAD_MAX = 64 * 1024;
/** After the whole body: how long the store may take to close its side before berth closes the socket. */
const LINGER_MS = 2000;

/** Code of the errors for an answer that is not HTTP as S3 sends it (s3-client.ts maps it as the store unavailable). */
export const BAD_ANSWER = 'ERR_STORE_BAD_ANSWER';

const spare: Buffer[] = [];
let allocated = 0;
let answers = 0;
const take = (): Buffer => spare.pop() ?? (allocated++, Buffer.allocUnsafe(READ_SIZE));
const keep = (b: Buffer): void => { if (spare.length < SPARE_MAX) spare.push(b); };

/** Answers whose head was read, and read buffers allocated, since the process started; idle buffers kept now
 *  (for tests and diagnostics). */
export function lentGetStats(): { answers: number; allocated: number; spare: number } {
  return { answers, allocated, spare: spare.length };
}

/** The answer is framed in a way this reader does not read (see the header): fetch it another way. */
export class NotLendable extends Error {
  constructor(why: string) {
    super(`object store answer not read by lent-get: ${why}`);
    this.name = 'NotLendable';
  }
}

export interface LentGetOptions {
  /** Request headers besides Host and Connection (e.g. range, user-agent); names in lower case. */
  headers?: Record<string, string>;
  /** For an https URL: CAs (PEM) and whether the certificate must verify. */
  tls?: { ca?: string[]; rejectUnauthorized: boolean };
  /** ms to establish the connection (TCP, and TLS for https). */
  connectTimeout: number;
  /** ms from the start until the answer's headers are in. */
  headersTimeout: number;
  /** ms the body may move no byte while the consumer is reading (a consumer that pauses does not count). */
  idleTimeout: number;
  signal?: AbortSignal;
}

export interface LentResponse {
  status: number;
  /** Header names in lower case; a repeated header's values joined with ', '. */
  headers: Record<string, string>;
  /** Exactly Content-Length bytes, then its end; an answer cut short fails it (code BAD_ANSWER). Supports [RECYCLE]. */
  body: Readable;
}

/** Sends GET `url` and resolves with the answer once its headers are in. Fails with NotLendable (nothing of the
 *  body read), a network or TLS error, a TimeoutError, an AbortError, or code BAD_ANSWER. */
export function lentGet(url: URL, o: LentGetOptions): Promise<LentResponse> {
  return new Promise<LentResponse>((resolve, reject) => { new LentBody(url, o, resolve, reject); });
}

const badAnswer = (what: string) => Object.assign(new Error(`object store: ${what}`), { code: BAD_ANSWER });

/** A read buffer and how much of it reads have filled; `out`: its chunks pushed and not handed back; `current`:
 *  reads still land in it. It goes back to the pool when neither holds. */
interface Slab { buf: Buffer; used: number; out: number; current: boolean }

class LentBody extends Readable {
  private readonly socket: net.Socket;
  private state: 'head' | 'body' | 'done' = 'head';
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private left = 0;
  /** The buffer reads land in now. */
  private slab: Slab | undefined;
  /** Chunks pushed and not yet handed back → the read buffer each is part of. */
  private readonly lent = new Map<Uint8Array, Slab>();
  /** The socket stopped reading because the consumer is behind: the idle timeout does not run meanwhile. */
  private held = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly onAbort: () => void;

  constructor(url: URL, private readonly o: LentGetOptions,
    private resolveHead: ((r: LentResponse) => void) | undefined, private rejectHead: ((e: unknown) => void) | undefined) {
    super({ highWaterMark: READ_AHEAD });
    const https = url.protocol === 'https:';
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port) || (https ? 443 : 80);
    const onread = { buffer: () => this.nextRead(), callback: (n: number) => this.onRead(n) };
    // tls.connect takes onread as net.connect does (Node's docs; its types leave it out): the decrypted bytes land in
    // the buffers given.
    this.socket = https
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...o.tls, onread } as tls.ConnectionOptions)
      : net.connect({ host, port, onread });
    this.socket.setNoDelay(true);
    const headers = Object.entries(o.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n${headers}connection: close\r\n\r\n`;
    this.timers.push(setTimeout(() => this.fail(storeTimeout('no connection', o.connectTimeout)), o.connectTimeout));
    this.timers.push(setTimeout(() => this.fail(storeTimeout('no answer', o.headersTimeout)), o.headersTimeout));
    this.socket.once(https ? 'secureConnect' : 'connect', () => {
      clearTimeout(this.timers[0]);
      this.socket.write(request);
    });
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('end', () => {
      if (this.state === 'done') return;   // the store closed after the body, as asked
      this.fail(badAnswer(this.state === 'head' ? 'connection closed before the answer' : `body ended ${this.left} bytes short`));
    });
    this.socket.on('timeout', () => { if (!this.held && this.state === 'body') this.fail(storeTimeout('no body byte', o.idleTimeout)); });
    this.socket.once('close', () => {
      this.retire();   // no read lands in it any more
      for (const t of this.timers) clearTimeout(t);
      if (this.state !== 'done') this.fail(badAnswer('connection closed'));
    });
    this.onAbort = () => this.fail(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
    if (o.signal?.aborted) queueMicrotask(this.onAbort);
    else o.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** onread's buffer function, before every read: what is left of the current buffer, or a new one. */
  private nextRead(): Uint8Array {
    let s = this.slab;
    if (!s || s.buf.length - s.used < MIN_READ) {
      this.retire();
      s = this.slab = { buf: take(), used: 0, out: 0, current: true };
    }
    return s.buf.subarray(s.used);
  }

  /** Reads no longer land in the current buffer: it goes back to the pool now, or when its last chunk does. */
  private retire(): void {
    const s = this.slab;
    this.slab = undefined;
    if (!s) return;
    s.current = false;
    if (s.out === 0) keep(s.buf);
  }

  /** onread's callback: `n` new bytes where nextRead() said. False pauses the socket. */
  private onRead(n: number): boolean {
    const s = this.slab!;
    const at = s.used;
    s.used += n;
    if (this.state === 'head') return this.readHead(s, at, n);
    if (this.state === 'done' || this.destroyed) return true;   // bytes after the body: ignored
    return this.deliver(s, at, at + n);
  }

  private readHead(s: Slab, at: number, n: number): boolean {
    const fresh = s.buf.subarray(at, at + n);
    const data = this.head.length === 0 ? fresh : Buffer.concat([...this.head, fresh]);
    const end = data.indexOf('\r\n\r\n');
    if (end < 0) {
      this.headBytes += n;
      if (this.headBytes > HEAD_MAX) { this.fail(badAnswer(`answer's head longer than ${HEAD_MAX} bytes`)); return false; }
      this.head.push(Buffer.from(fresh));
      return true;
    }
    if (end > HEAD_MAX) { this.fail(badAnswer(`answer's head longer than ${HEAD_MAX} bytes`)); return false; }
    const parsed = parseHead(data.toString('latin1', 0, end));
    if (parsed instanceof Error) { this.fail(parsed); return false; }
    answers++;
    this.state = 'body';
    this.left = parsed.length;
    clearTimeout(this.timers[1]);
    this.socket.setTimeout(this.o.idleTimeout);
    const resolve = this.resolveHead!;
    this.resolveHead = this.rejectHead = undefined;
    resolve({ status: parsed.status, headers: parsed.headers, body: this });
    const start = end + 4;
    let more = true;
    if (this.head.length > 0) {   // the head came in several reads: the body's first bytes are in a copy
      if (data.length > start) more = this.deliver(undefined, start, data.length, data);
    } else if (n > start) {
      more = this.deliver(s, at + start, at + n);
    }
    this.head.length = 0;
    if (this.left === 0 && this.state === 'body') this.finish();   // an empty body (deliver() finishes the others)
    return more;
  }

  /** Pushes bytes [from, to) of the read buffer `s` (lent: handed back through [RECYCLE]) or of `copy` (not lent). */
  private deliver(s: Slab | undefined, from: number, to: number, copy?: Buffer): boolean {
    const len = Math.min(to - from, this.left);
    if (len <= 0) return true;
    const chunk = (s ? s.buf : copy!).subarray(from, from + len);
    if (s) { s.out++; this.lent.set(chunk, s); }
    this.left -= len;
    const more = this.push(chunk);
    if (this.left === 0) { this.finish(); return true; }   // read on to the store's close
    if (!more) this.held = true;
    return more;
  }

  /** The whole body is in: the stream ends; the socket reads on until the store closes it (bounded by LINGER_MS). */
  private finish(): void {
    this.state = 'done';
    this.push(null);
    this.held = false;
    this.socket.setTimeout(0);
    this.socket.resume();
    const t = setTimeout(() => this.socket.destroy(), LINGER_MS);
    t.unref();
    this.timers.push(t);
  }

  private fail(err: unknown): void {
    if (this.rejectHead) {
      const reject = this.rejectHead;
      this.resolveHead = this.rejectHead = undefined;
      this.state = 'done';
      this.socket.destroy();
      this.cleanup();
      reject(err);
      return;
    }
    if (this.state !== 'done' && !this.destroyed) this.destroy(err as Error);
  }

  override _read(): void {
    if (this.held) {
      this.held = false;
      if (this.state === 'body') this.socket.setTimeout(this.o.idleTimeout);   // the idle count starts again
    }
    this.socket.resume();
  }

  /** The consumer is done with `chunk` (one this stream pushed): its buffer may be read into again. */
  [RECYCLE](chunk: Uint8Array): void {
    const s = this.lent.get(chunk);
    if (!s || !this.lent.delete(chunk)) return;
    s.out--;
    if (s.out === 0 && !s.current) keep(s.buf);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // After the whole body the socket lingers until the store closes it (finish); before, it goes at once.
    if (this.state !== 'done') { this.state = 'done'; this.socket.destroy(); }
    this.cleanup();
    cb(err);
  }

  private cleanup(): void {
    this.o.signal?.removeEventListener('abort', this.onAbort);
  }
}

/** The status, headers and body length of an answer's head, or why it cannot be read here. */
function parseHead(text: string): { status: number; headers: Record<string, string>; length: number } | Error {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]!);
  if (!m) return badAnswer(`not an HTTP/1.1 answer: ${JSON.stringify(lines[0]!.slice(0, 60))}`);
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t') return badAnswer(`malformed header line: ${JSON.stringify(line.slice(0, 60))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  if (status < 200) return new NotLendable(`status ${status}`);
  if (headers['transfer-encoding'] !== undefined) return new NotLendable(`transfer-encoding ${headers['transfer-encoding']}`);
  const cl = headers['content-length'];
  if (cl === undefined) return new NotLendable('no content-length');
  const values = new Set(cl.split(',').map((v) => v.trim()));
  const only = values.size === 1 ? [...values][0]! : '';
  if (!/^\d{1,15}$/.test(only)) return badAnswer(`content-length ${JSON.stringify(cl.slice(0, 40))}`);
  return { status, headers, length: Number(only) };
}
