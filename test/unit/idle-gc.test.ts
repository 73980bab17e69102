// startIdleCollector (src/cli/idle-gc.ts): the rule on scripted heap readings (collects only after a burst
// and IDLE_MS of idle, at most three times until traffic returns, never while traffic runs or when the heap
// is near its smallest; repeats gc() while the heap shrinks), and on a real child process that V8's gc()
// obtained at run time gives a load's heap back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startIdleCollector } from '../../src/cli/idle-gc.js';

const MiB = 1024 * 1024;
const MODULE = fileURLToPath(new URL('../../src/cli/idle-gc.ts', import.meta.url));

/** A scripted heap: `used` and `total` are set by the test; gc() shrinks total by `shrinkBy` per call down to `live`. */
function scripted(o: { live: number; shrinkBy: number }) {
  const h = { used: o.live, total: o.live, gcCalls: 0 };
  const gc = () => { h.gcCalls++; h.used = o.live; h.total = Math.max(o.live, h.total - o.shrinkBy); };
  const c = startIdleCollector({ checkMs: 1000, idleMs: 2000, heap: () => ({ used: h.used, total: h.total }), gc });
  c.stop();   // checks are driven by hand below
  return { h, c };
}

test('no collection while traffic runs or while the heap is near its smallest', () => {
  const { h, c } = scripted({ live: 20 * MiB, shrinkBy: 64 * MiB });
  for (let i = 0; i < 30; i++) { h.used += 2 * MiB; h.total += 2 * MiB; assert.equal(c.check(), false, 'traffic'); }
  assert.equal(c.collections, 0);
  assert.equal(h.gcCalls, 0);
  const near = scripted({ live: 20 * MiB, shrinkBy: 64 * MiB });
  near.h.total += 15 * MiB;   // committed heap under GARBAGE above its smallest
  for (let i = 0; i < 10; i++) { near.h.used += 10_000; near.c.check(); }
  assert.equal(near.c.collections, 0);
});

test('after a burst: collects once idle for IDLE_MS, again at twice and four times that, then waits for traffic', () => {
  const { h, c } = scripted({ live: 20 * MiB, shrinkBy: 4 * MiB });
  const burst = () => { h.used += 40 * MiB; h.total += 40 * MiB; assert.equal(c.check(), false); };
  const idleCheck = () => { h.used += 20_000; return c.check(); };
  burst();
  // Each collection takes the heap down by 4 MiB per gc() call, at most 5 calls: 40 -> 20 MiB above live.
  assert.deepEqual([idleCheck(), idleCheck()], [false, true], 'at 2 s idle');
  assert.equal(h.gcCalls, 5, 'gc() repeated while the heap shrank, at most 5 times');
  assert.equal(h.total, 40 * MiB);
  assert.deepEqual([idleCheck(), idleCheck()], [false, true], 'at 4 s idle');
  assert.equal(h.total, 20 * MiB, 'back at its smallest');
  for (let i = 0; i < 20; i++) assert.equal(idleCheck(), false, 'nothing left to collect');
  assert.equal(c.collections, 2);

  // A heap that stays large (live data grew): three tries, then none until traffic comes back.
  const big = scripted({ live: 20 * MiB, shrinkBy: 0 });
  big.h.used += 40 * MiB; big.h.total += 40 * MiB; big.c.check();
  const seen: number[] = [];
  for (let s = 1; s <= 30; s++) { big.h.used += 20_000; if (big.c.check()) seen.push(s); }
  assert.deepEqual(seen, [2, 4, 8], 'collections at 2, 4 and 8 s of idle');
  assert.equal(big.h.gcCalls, 3, 'one gc() each: nothing shrank');
  big.h.used += 5 * MiB; big.c.check();   // traffic again
  for (let s = 1; s <= 2; s++) { big.h.used += 20_000; big.c.check(); }
  assert.equal(big.c.collections, 4, 'a new idle stretch after traffic');
});

test('a drop in the used heap (V8 collected by itself) restarts the idle clock but not the rounds', () => {
  const { h, c } = scripted({ live: 20 * MiB, shrinkBy: 0 });
  h.used += 40 * MiB; h.total += 40 * MiB; c.check();
  h.used += 10_000; c.check();
  h.used -= 30 * MiB; assert.equal(c.check(), false, 'V8 collected: not idle');
  h.used += 10_000; assert.equal(c.check(), false);
  h.used += 10_000; assert.equal(c.check(), true, '2 s idle after the drop');
});

test('on a real process: gc() is obtained at run time and an idle heap left by a load shrinks', () => {
  const script = `
    const { getHeapStatistics } = await import('node:v8');
    const { startIdleCollector } = await import(${JSON.stringify(MODULE)});
    const events = [];
    const c = startIdleCollector({ checkMs: 100, idleMs: 200, onCollect: (before, after) => events.push([before, after]) });
    let keep = [];
    for (let i = 0; i < 3e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 300000) keep = []; }
    keep = null;
    const loaded = getHeapStatistics().total_heap_size;
    await new Promise((r) => setTimeout(r, 2500));
    c.stop();
    console.log(JSON.stringify({ enabled: c.enabled, collections: c.collections, loaded, idle: getHeapStatistics().total_heap_size, events }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { enabled: boolean; collections: number; loaded: number; idle: number; events: number[][] };
  assert.equal(out.enabled, true);
  assert.ok(out.collections >= 1, JSON.stringify(out));
  assert.ok(out.loaded - out.idle > 16 * MiB, `the committed heap shrank: ${out.loaded >> 20} -> ${out.idle >> 20} MiB`);
  assert.ok(out.events[0]![1]! < out.events[0]![0]!, 'onCollect reports before > after');
});
