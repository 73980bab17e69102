// startIdleCollector (src/cli/idle-gc.ts) on a real child process: V8's gc() is obtained at run time and an
// idle heap left by a load shrinks, and its pages go back to the OS at once (RSS drops by itself: V8 13 kept
// them in its page pool after a plain gc() until the memory reducer ran seconds later). The rule itself, on scripted heap readings: test/unit/idle-gc.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const MODULE = fileURLToPath(new URL('../../src/cli/idle-gc.ts', import.meta.url));

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
    const loadedRss = process.memoryUsage().rss;
    // Idle until a collection gave the heap back (short polls, at most 20 s), not for a fixed time.
    const deadline = Date.now() + 20_000;
    while (!(events.length > 0 && loaded - getHeapStatistics().total_heap_size > 16 * 1024 * 1024) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    c.stop();
    console.log(JSON.stringify({ enabled: c.enabled, collections: c.collections, loaded, idle: getHeapStatistics().total_heap_size, events,
      loadedRss, idleRss: process.memoryUsage().rss }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.error ? `child process: ${r.error.message}` : r.stderr);   // spawnSync's timeout bounds it
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { enabled: boolean; collections: number; loaded: number; idle: number; events: number[][]; loadedRss: number; idleRss: number };
  assert.equal(out.enabled, true);
  assert.ok(out.collections >= 1, JSON.stringify(out));
  assert.ok(out.loaded - out.idle > 16 * MiB, `the committed heap shrank: ${out.loaded >> 20} -> ${out.idle >> 20} MiB`);
  assert.ok(out.events[0]![1]! < out.events[0]![0]!, 'onCollect reports before > after');
  assert.ok(out.loadedRss - out.idleRss > 16 * MiB, `RSS went down with the heap: ${out.loadedRss >> 20} -> ${out.idleRss >> 20} MiB`);
});
