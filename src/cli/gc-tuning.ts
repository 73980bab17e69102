// V8 garbage-collector tuning for `serve`, applied once the server listens. A process concern (V8 flags are
// process-wide), so it lives with the CLI; nothing below the CLI imports it.
//
// What it fixes: uploads kept V8 (Node 20, V8 11.3) in back-to-back full GCs once berth's old generation
// was above 8 MiB, which it is after serving a few images (fresh: 7.4-7.7 MiB; after a skopeo push + pull
// of a 1 GB image: 8.0-8.3). Above 8 MiB V8 decides when to start incremental marking from the old
// generation's size PLUS the external memory allocated since the last full GC, against a limit only
// ~11-15 MiB above the live size. Every TLS record a request body arrives in is a fresh 16 KiB ArrayBuffer
// (external memory); the young ones die in the next scavenge, but V8 scavenges for them only every ~32 MiB,
// so 11-15 MiB into each upload the "limit" is reached and a full GC (incremental marking on the helper
// threads, then a finalizing pause) runs: ~50 per GiB of chunked upload, every one collecting ~1 MiB
// (--trace-incremental-marking: "Start (allocation limit): 8MB / 20MB / 12MB" right after each
// "Scavenge ... external memory pressure").
//
// The fix: V8's own --incremental-marking-{soft,hard}-trigger flags replace that rule by "start when the
// growth since the last full GC reaches N% of the room the limit left". 300% / 400% lets the scavenges free
// the TLS buffers first. Measured with the upload harness (warmed: skopeo push + pull of the 1 GB image
// first; 1 GiB, TLS + htpasswd; --trace-gc; server CPU-s from /proc):
//   chunked upload        4.3-4.6 -> 3.2 CPU-s per GiB, 220 -> 250-267 MB/s
//   4 concurrent uploads  13.4-14.8 -> 12.0 CPU-s, peak RSS 124-151 -> 120 MiB
//   mark-compacts over the whole run (push, pull, 4x1 GiB, 2x1 GiB chunked): 238 -> 13
// 200% / 300% left 68 of them, 100% / 100% 197 and 70% / 90% 202 (the growth counts the external memory,
// so it passes 100% of the room between two scavenges).
//
// The cost: ordinary old-generation growth now reaches the limit before marking starts, so that full GC is
// one pause (allocation failure) instead of slices. berth's heap is small and its caches bounded (8-30 MiB
// live): ~5-20 ms (--trace-gc). The external-memory safety net (a full GC once external memory grows 64 MiB)
// is untouched.
//
// Why at run time: any V8 flag on the command line makes V8 reject Node's built-in code cache (~30 ms more
// start); V8 reads these two flags each time it considers starting a cycle.
//
// Only on V8 11 (Node 20), where it was measured: newer V8 (Node 22+, the Dockerfile's) caps the growth
// percentage at 100, so the same values would switch the trigger off entirely; not measured there.
// An explicit trigger or incremental-marking flag on the command line or in NODE_OPTIONS is left alone.
import { setFlagsFromString } from 'node:v8';

export type GcTuning = 'marking triggers 300/400%' | 'as given on the command line' | 'V8 default (not V8 11)';

const SOFT_TRIGGER = 300;
const HARD_TRIGGER = 400;

export function tuneGc(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? '',
  v8Version = process.versions.v8): GcTuning {
  const explicit = [...execArgv, ...nodeOptions.split(/\s+/)]
    .some((a) => /^--(no-)?incremental[-_]marking([-_](soft|hard)[-_]trigger(=.*)?)?$/.test(a));
  if (explicit) return 'as given on the command line';
  if (v8Version.split('.')[0] !== '11') return 'V8 default (not V8 11)';
  setFlagsFromString(`--incremental-marking-soft-trigger=${SOFT_TRIGGER}`);
  setFlagsFromString(`--incremental-marking-hard-trigger=${HARD_TRIGGER}`);
  return 'marking triggers 300/400%';
}
