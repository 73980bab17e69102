// V8 garbage-collector tuning for `serve`, while uploads are in flight. A process concern (V8 flags are
// process-wide), so it lives with the CLI; the gateway only reports upload traffic through the hooks it is given.
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
// the TLS buffers first. They are raised only while an upload (a request body of 1 MiB or more, or chunked;
// gateway/server.ts tells) is in flight and put back to 0 (V8's own rule) 1 s after the last one ends; put
// back at once, V8 started a full GC in the few ms between a client's PATCHes. Raised for good, the old
// generation also grew to its limit under the 64-connection manifest/HEAD load, and the heap that load left
// behind raised the next 4-upload peak RSS (bench order, 2-5 runs each: 125-151 MiB default, 147-177 raised
// for good, 150-151 raised during uploads only, with manifest/HEAD peaks unchanged).
// Measured with the upload harness (warmed: skopeo push + pull of the 1 GB image first; 1 GiB, TLS +
// htpasswd; --trace-gc; server CPU-s from /proc):
//   chunked upload        4.3-4.6 -> 2.5-2.7 CPU-s per GiB, 210-224 -> 312-334 MB/s
//   full GCs over push, pull and 2x1 GiB chunked: 105 -> 6-10 (restored at once: 12-26)
// Values tried for good (command line): 70/90% 202 MCs, 100/100% 197, 200/300% 68, 300/400% 13 (the growth
// counts the external memory, so it passes 100% of the room between two scavenges); 200/300% during uploads
// only: no lower RSS than 300/400% within the noise (139-161 MiB), more CPU (3.2-3.4 per GiB chunked).
//
// The cost: while uploads run, ordinary old-generation growth reaches the limit before marking starts, so
// that full GC is one pause (allocation failure) instead of slices. berth's heap is small and its caches
// bounded (8-30 MiB live): ~5-20 ms (--trace-gc). The external-memory safety net (a full GC once external
// memory grows 64 MiB) is untouched.
//
// Why at run time, not `node --incremental-marking-soft-trigger=...`: any V8 flag on the command line makes
// V8 reject Node's built-in code cache (~30 ms more start); V8 reads these two flags each time it considers
// starting a cycle, so setting them per upload is a string parse, nothing more.
//
// Only on V8 11 (Node 20), where it was measured: newer V8 (Node 22+, the Dockerfile's) caps the growth
// percentage at 100, so the same values would switch the trigger off entirely; not measured there.
// An explicit trigger or incremental-marking flag on node's command line is left alone (Node refuses V8 flags
// like these in NODE_OPTIONS).
import { setFlagsFromString } from 'node:v8';

export type GcTuning = 'marking triggers 300/400% during uploads' | 'as given on the command line' | 'V8 default (not V8 11)';

const RAISED = ['--incremental-marking-soft-trigger=300', '--incremental-marking-hard-trigger=400'];
const DEFAULT = ['--incremental-marking-soft-trigger=0', '--incremental-marking-hard-trigger=0'];   // 0: V8's own rule

export interface GcTuner { readonly mode: GcTuning; start(): void; end(): void }

/** V8's rule comes back this long after the last upload ended, not at once: between one client's PATCHes
 *  (a few ms apart) V8 would otherwise start the very full GC the tuning avoids, once per PATCH. */
const RESTORE_AFTER_MS = 1000;

export function tuneGc(execArgv: readonly string[] = process.execArgv, v8Version = process.versions.v8,
  restoreAfterMs = RESTORE_AFTER_MS): GcTuner {
  const explicit = execArgv.some((a) => /^--(no-)?incremental[-_]marking([-_](soft|hard)[-_]trigger(=.*)?)?$/.test(a));
  if (explicit) return { mode: 'as given on the command line', start() {}, end() {} };
  if (v8Version.split('.')[0] !== '11') return { mode: 'V8 default (not V8 11)', start() {}, end() {} };
  let uploads = 0;
  let raised = false;
  let restore: NodeJS.Timeout | undefined;
  return {
    mode: 'marking triggers 300/400% during uploads',
    start() {
      uploads++;
      if (restore) { clearTimeout(restore); restore = undefined; }
      if (!raised) { raised = true; for (const f of RAISED) setFlagsFromString(f); }
    },
    end() {
      if (--uploads > 0) return;
      restore = setTimeout(() => {
        restore = undefined;
        if (uploads === 0 && raised) { raised = false; for (const f of DEFAULT) setFlagsFromString(f); }
      }, restoreAfterMs);
      restore.unref();
    },
  };
}
