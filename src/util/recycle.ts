// Chunk recycling between a storage reader and a consumer that knows when it is done with a chunk: a leaf
// protocol (drivers lend, the API's sendBody hands back), so neither layer imports the other.
// A 1 GiB blob GET otherwise allocates a thousand fresh 1 MiB buffers, and V8 answers the external
// memory growth with a scavenge every few dozen MiB and a full mark-compact now and then.
//
// The contract is opt-in on both sides: a reader that supports it has a [RECYCLE] method; a consumer that
// is certain it no longer needs a chunk (e.g. the socket write's callback has run) may hand it back, once.
// A consumer that never recycles is fine (chunks are then ordinary garbage), and a reader ignores chunks
// it did not lend (or already got back), so mistakes cost an allocation, never a reused buffer in use.
import type { Readable } from 'node:stream';

export const RECYCLE = Symbol.for('berth.storage.recycle');

interface Recycling { [RECYCLE](chunk: Uint8Array): void }

/** The reader's recycle function, when it lends reusable chunks; undefined otherwise. */
export function recyclerOf(r: Readable): ((chunk: Uint8Array) => void) | undefined {
  const f = (r as Partial<Recycling>)[RECYCLE];
  return typeof f === 'function' ? (chunk) => f.call(r, chunk) : undefined;
}
