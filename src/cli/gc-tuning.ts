// V8 garbage-collector tuning for `serve` while uploads are in flight. A process concern (V8 is process-wide), so
// it lives with the CLI; the gateway only reports upload traffic through the start()/end() hooks it is given.
//
// What it fixes (Node 24, V8 13.6; bench/RESULTS.md, "Node 24: memory"): every socket read of a request body is
// a fresh 64 KiB Buffer (16 KiB per TLS record) whose memory is outside the heap and is given back only when V8
// collects its small wrapper object. V8 13 does that at a full GC once external memory has grown 64 MiB, not
// in the scavenges the wrappers would otherwise die in (a young generation takes minutes of upload to fill),
// so 4 concurrent 1 GiB uploads held 40-70 MiB of dead buffers at a time: peak RSS 160-177 MiB against 119 on
// Node 20 (V8 11 scavenged for external memory every ~32 MiB).
//
// The fix: while an upload is in flight, every CHECK_MS look at V8's external memory (one getHeapStatistics()
// call) and, when it grew STEP since the last look, run a minor GC (a scavenge of the young generation only:
// the buffers die there). Measured (bench/memory-probe.ts, berth alone, --max-semi-space-size=16, 4 x 1 GiB,
// interleaved): plain HTTP peak RSS 126-128 MiB instead of 157-176 at the same CPU within the noise; TLS +
// htpasswd 138-141 instead of 175-184, RSS 5 s after 126-134 instead of 160-172, but 14.4-15.0 server CPU-s per
// 4 GiB instead of 11.5-12.4 (aggregate 243-289 MB/s instead of 314-382). A STEP of 32 MiB: 144-150 MiB at
// 13.9-14.4 CPU-s. One upload alone: 3.4-4.7 CPU-s per GiB against 3.4-3.7 (noise). Kept for the memory target
// (<= 150 MiB during 4 concurrent 1 GiB uploads); the CPU is the price (bench/RESULTS.md).
//
// The V8 11 tuning this file held before (incremental-marking triggers raised during uploads) is gone: engines
// is >= 22, and V8 12+ caps those triggers at 100%, which would switch the trigger off rather than delay it.
//
// gc() comes from V8's --expose-gc, set at run time (idle-gc.ts explains why not on the command line), and only
// at the first upload. An explicit --expose-gc or GC flag on the command line changes nothing here.
import { getHeapStatistics } from 'node:v8';
import { exposeGc } from './idle-gc.js';

export type GcTuning = 'minor GC per 16 MiB of request-body buffers during uploads' | 'V8 default (no gc function)';

const CHECK_MS = 25;
/** External memory growth since the last look that is worth a scavenge. */
const STEP = 16 * 1024 * 1024;

export interface GcTuner {
  readonly mode: GcTuning;
  /** Minor GCs run so far. */
  readonly collections: number;
  /** An upload began (a request body of 1 MiB or more, or chunked; gateway/server.ts tells). */
  start(): void;
  /** One ended; with none left in flight the checks stop. */
  end(): void;
  /** One check (the timer's, every CHECK_MS while uploads run): true when it collected. */
  check(): boolean;
}

export interface GcTunerOptions {
  checkMs?: number;
  step?: number;
  /** For tests: V8's external memory in bytes. */
  external?: () => number;
  /** For tests: the minor collector (default: V8's gc({ type: 'minor' })). Undefined: leave V8 alone. */
  minorGc?: (() => void) | null;
}

export function tuneGc(o: GcTunerOptions = {}): GcTuner {
  const external = o.external ?? (() => getHeapStatistics().external_memory);
  const checkMs = o.checkMs ?? CHECK_MS;
  const step = o.step ?? STEP;
  let collect = o.minorGc ?? undefined;
  let resolved = o.minorGc !== undefined;
  let uploads = 0;
  let timer: NodeJS.Timeout | undefined;
  let floor = 0;
  const self = {
    mode: (resolved && !collect ? 'V8 default (no gc function)' : 'minor GC per 16 MiB of request-body buffers during uploads') as GcTuning,
    collections: 0,
    start() {
      uploads++;
      if (!resolved) {
        resolved = true;
        const gc = exposeGc();
        collect = gc ? () => gc({ type: 'minor' }) : undefined;
        if (!collect) self.mode = 'V8 default (no gc function)';
      }
      if (timer || !collect) return;
      floor = external();
      timer = setInterval(() => self.check(), checkMs);
      timer.unref();
    },
    check(): boolean {
      if (uploads === 0 || !collect) return false;
      const now = external();
      if (now - floor < step) { floor = Math.min(floor, now); return false; }
      collect();
      self.collections++;
      floor = external();
      return true;
    },
    end() {
      if (--uploads > 0 || !timer) return;
      uploads = 0;
      clearInterval(timer);
      timer = undefined;
    },
  };
  return self;
}
