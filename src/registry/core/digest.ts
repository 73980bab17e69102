// Digest grammar and hashing. Only sha256 and sha512 are accepted (as Distribution's defaults);
// a digest string is parsed once into { algorithm, hex, text }. No I/O here, no HTTP.
import { createHash, type Hash } from 'node:crypto';
import { finished as eos, Writable } from 'node:stream';
import { DigestInvalidError } from './errors.js';
import type { Digest as PathDigest } from '../storage/paths.js';

export type Algorithm = 'sha256' | 'sha512';
export interface Digest extends PathDigest { algorithm: Algorithm; hex: string; text: string }

const HEX_LEN: Record<Algorithm, number> = { sha256: 64, sha512: 128 };
const HEX_RE = /^[a-f0-9]+$/;

/** Parses "<alg>:<hex>"; throws DigestInvalidError on anything else (wrong case, length, algorithm). */
export function parseDigest(text: string): Digest {
  const d = tryParseDigest(text);
  if (!d) throw new DigestInvalidError(text.length > 200 ? text.slice(0, 200) : text);
  return d;
}

export function tryParseDigest(text: string): Digest | undefined {
  if (typeof text !== 'string' || text.length > 140) return undefined;
  const i = text.indexOf(':');
  if (i < 0) return undefined;
  const algorithm = text.slice(0, i);
  const hex = text.slice(i + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return undefined;
  if (hex.length !== HEX_LEN[algorithm] || !HEX_RE.test(hex)) return undefined;
  return { algorithm, hex, text };
}

export function digestOf(data: Uint8Array, algorithm: Algorithm = 'sha256'): Digest {
  const hex = createHash(algorithm).update(data).digest('hex');
  return { algorithm, hex, text: `${algorithm}:${hex}` };
}

/**
 * Feeds every byte into `hash`, counts it and passes it on to `dest` (go-containerregistry's verifying
 * reader, as the writable end of a pipeline). A Writable in front of dest rather than a Transform: a
 * Transform's readable side (push, flow, 'data') costs more per chunk than the hash of a 16 KiB TLS record's
 * worth of overhead. dest's backpressure, errors and premature close pass through; ending this ends dest
 * (finishing waits for dest's 'finish'); destroying this destroys dest. The hash is owned by the caller, so
 * it can continue a running hash.
 */
export class HashingWriter extends Writable {
  bytes = 0;
  private finalCb: ((err?: Error | null) => void) | null = null;

  constructor(private readonly dest: Writable, readonly hash?: Hash) {
    super({ highWaterMark: 64 * 1024 });
    eos(dest, { readable: false }, (err) => {   // dest finished (after our end) or failed / closed early
      const cb = this.finalCb;
      this.finalCb = null;
      if (cb && !err) cb();
      else if (!this.destroyed) this.destroy(err ?? undefined);   // without an error: a premature close
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    if (this.dest.write(chunk)) cb();
    else this.dest.once('drain', cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finalCb = cb;
    this.dest.end();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.dest.destroyed && !this.dest.writableFinished) this.dest.destroy(err ?? undefined);
    cb(err);
  }
}
