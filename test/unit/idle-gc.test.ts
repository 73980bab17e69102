// startIdleCollector (src/cli/idle-gc.ts): the rule on scripted heap readings (collects only after a burst
// and IDLE_MS of idle, at most three times until traffic returns, never while traffic runs or when the heap
// is near its smallest; repeats gc() while the heap shrinks). On a real child process:
// test/integration/idle-gc-process.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startIdleCollector } from '../../src/cli/idle-gc.js';

const MiB = 1024 * 1024;

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
