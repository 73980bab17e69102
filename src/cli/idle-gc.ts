// Gives the heap a burst of traffic left behind back to the OS once `serve` goes idle. A process concern (V8
// is process-wide), so it lives with the CLI beside gc-tuning.ts; the gateway knows nothing of it.
//
// Why: V8 collects only when JavaScript allocates, and shrinks its young generation only after a full GC at
// a low allocation rate. After 10 s of 64-connection manifest GETs berth's heap is mostly garbage (Node 24:
// 150-160 MiB committed, RSS 195-215 MiB, 69 before the load) and stays so while the server is idle; whatever
// comes next starts from there (Node 20, session 6: 4 concurrent 1 GiB uploads 3 s after that load peaked at
// 155-161 MiB against 108-126 in a fresh process; bench/RESULTS.md).
//
// The rule, checked every CHECK_MS on an unref'd timer (one getHeapStatistics() call): idle means the heap
// grew less than IDLE_GROWTH since the previous check (a request now and then allocates KiBs; a burst,
// MiBs). After IDLE_MS of idle, if the heap is GARBAGE or more above the smallest it has been, collect; then
// again after twice and four times as long if it is still that large. At most IDLE_ROUNDS until traffic comes
// back, so a heap that really holds more live data is not collected over and over. Each collection repeats
// while the heap still shrinks (V8 11 halved the young generation per full GC; V8 13's first one suffices).
//
// The collection is gc({ type: 'major', flavor: 'last-resort' }) (V8's CollectAllAvailableGarbage: full GCs
// until nothing more dies, the young generation shrunk, freed pages returned to the OS). A plain gc() shrinks
// V8 13's heap as well, but keeps the freed pages in V8's page pool ("pooled: 146 MB" in --trace-gc) until the
// memory reducer runs ~8 s later: Node 24, berth alone, plain HTTP, after that load RSS stayed at 213 MiB for
// 12 s with plain gc() (86 at 15 s), and went 221 -> 91 MiB 3 s after the load with last-resort. V8 versions without the flavor run a
// plain full GC (V8 ignores options it does not know), as berth did on Node 20.
//
// gc() comes from V8's --expose-gc, set at run time (V8 installs the gc function in contexts created after
// the flag; a fresh vm context is one), not on the command line, where --expose-gc makes V8 reject Node's code
// cache (~30 ms more start; Node 24 still does, while heap-size flags such as --max-semi-space-size no longer
// do). On berth's ~12 MiB live heap a collection takes a few ms of CPU.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const CHECK_MS = 1000;
const IDLE_MS = 2000;
/** Less growth than this between two checks means idle. */
const IDLE_GROWTH = 1024 * 1024;
/** A committed heap this much above the smallest seen is worth collecting. */
const GARBAGE = 16 * 1024 * 1024;
/** Collections per idle stretch, at IDLE_MS, 2 x IDLE_MS, 4 x IDLE_MS. */
const IDLE_ROUNDS = 3;
/** gc() calls per collection at most, and the least shrinkage that is worth another. */
const MAX_CALLS = 5;
const SHRINK_STEP = 1024 * 1024;

export interface IdleCollector { readonly enabled: boolean; collections: number; stop(): void; check(): boolean }

export interface IdleCollectorOptions {
  checkMs?: number;
  idleMs?: number;
  /** Called after each collection with the committed heap before and after (bytes) and the time it took. */
  onCollect?: (before: number, after: number, ms: number) => void;
  /** For tests: the heap reading (used and committed bytes). */
  heap?: () => { used: number; total: number };
  /** For tests: the collector (default: V8's gc({ type: 'major', flavor: 'last-resort' })). */
  gc?: () => void;
}

const v8Heap = () => { const s = getHeapStatistics(); return { used: s.used_heap_size, total: s.total_heap_size }; };

/** V8's gc (options: type 'minor' or 'major', execution 'sync', flavor 'regular' or 'last-resort'). */
export type V8Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync'; flavor?: 'regular' | 'last-resort' }) => void;

let exposed: V8Gc | null | undefined;
/** V8's gc(), or undefined where it cannot be had; obtained once per process (also used by gc-tuning.ts). */
export function exposeGc(): V8Gc | undefined {
  if (exposed !== undefined) return exposed ?? undefined;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    exposed = typeof gc === 'function' ? gc as V8Gc : null;
  } catch {
    exposed = null;
  }
  return exposed ?? undefined;
}

/** Starts the idle check; `enabled` false (and nothing running) where V8 gives no gc function. */
export function startIdleCollector(o: IdleCollectorOptions = {}): IdleCollector {
  const heap = o.heap ?? v8Heap;
  const gc = o.gc ? undefined : exposeGc();
  const collect = o.gc ?? (gc ? () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }) : undefined);
  if (!collect) return { enabled: false, collections: 0, stop() {}, check: () => false };
  const checkMs = o.checkMs ?? CHECK_MS;
  const idleMs = o.idleMs ?? IDLE_MS;
  let previous = heap();
  let floor = previous.total;   // the smallest committed heap seen
  let idleFor = 0;
  let rounds = 0;               // collections in this idle stretch
  let nextAt = idleMs;

  const self: IdleCollector = {
    enabled: true,
    collections: 0,
    check(): boolean {
      const now = heap();
      const growth = now.used - previous.used;
      previous = now;
      floor = Math.min(floor, now.total);
      if (growth >= IDLE_GROWTH) {   // traffic: a new idle stretch starts after it
        idleFor = 0; rounds = 0; nextAt = idleMs;
        return false;
      }
      if (growth < 0) {              // V8 collected by itself: something allocated, how much is unknown
        idleFor = 0;
        return false;
      }
      idleFor += checkMs;
      if (idleFor < nextAt || rounds >= IDLE_ROUNDS || now.total - floor < GARBAGE) return false;
      const t0 = performance.now();
      for (let i = 0, before = now.total; i < MAX_CALLS; i++) {
        collect();
        const after = heap().total;
        if (before - after < SHRINK_STEP) break;
        before = after;
      }
      rounds++;
      nextAt *= 2;
      self.collections++;
      previous = heap();
      floor = Math.min(floor, previous.total);
      o.onCollect?.(now.total, previous.total, performance.now() - t0);
      return true;
    },
    stop() { clearInterval(timer); },
  };
  const timer = setInterval(() => self.check(), checkMs);
  timer.unref();
  return self;
}
