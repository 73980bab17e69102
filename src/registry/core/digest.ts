// Digest grammar and hashing. Only sha256 and sha512 are accepted (as Distribution's defaults);
// a digest string is parsed once into { algorithm, hex, text }. No I/O here, no HTTP.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
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
 * A pass-through Transform that feeds every byte into `hash` and counts them (go-containerregistry's
 * verifying reader, as a stream). The hash is owned by the caller, so it can continue a running hash.
 */
export class HashTap extends Transform {
  bytes = 0;
  constructor(readonly hash?: Hash) { super({ highWaterMark: 1 << 20 }); }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}
