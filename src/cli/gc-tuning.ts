// V8 garbage-collector tuning for `serve`, applied once the server listens. A process concern (V8 flags
// are process-wide), so it lives with the CLI; nothing below the CLI imports it.
//
// What it fixes: an upload through berth kept V8 in back-to-back full GCs. berth's old generation holds
// ~8 MiB; after each full GC V8 sets the next limit ~12 MiB above that, which is less than the 16 MiB
// young generation an upload grows to, so V8 restarts incremental marking at once ("Start (allocation
// limit): 8MB / 20MB / 12MB" in --trace-incremental-marking) and finishes it ~50 ms later: ~50
// mark-compacts per GiB of chunked upload, ~130 over 4 concurrent 1 GiB uploads, each with concurrent
// marking on the helper threads. With incremental marking off, a full GC runs only when the old
// generation reaches its limit: 0-3 per GiB. Measured (TLS + htpasswd, 1 GiB, --trace-gc, server
// CPU-s per GiB from /proc): chunked 3.4-3.7 -> 2.7, monolithic 2.75 -> 2.45, 4 concurrent uploads
// 2.91 -> 2.46; peak RSS unchanged (105-117 MiB).
//
// The cost: a full GC is one pause instead of slices. berth's heap is small (8-30 MiB live, caches are
// bounded), so a pause is ~5-10 ms (--trace-gc: 6.7-9.5 ms at 8-10 MiB).
//
// Why at run time: the launch-flag alternatives (--initial-old-space-size=64 stops the loop too) cost
// ~30 ms of start, because any V8 flag on the command line makes V8 reject Node's built-in code cache
// (start to "listening" 155 -> 182-199 ms for every heap flag tried). Changing the flag after start
// keeps the cache for everything loaded during start. V8 reads `incremental_marking` each time it
// considers starting a cycle; a cycle already running finishes normally.
//
// An explicit `node --incremental-marking …` (or NODE_OPTIONS) keeps V8's default: operators can opt out.
import { setFlagsFromString } from 'node:v8';

export type GcTuning = 'incremental marking off' | 'as given on the command line';

export function tuneGc(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): GcTuning {
  const explicit = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--(no-)?incremental[-_]marking$/.test(a));
  if (explicit) return 'as given on the command line';
  setFlagsFromString('--no-incremental-marking');
  return 'incremental marking off';
}
