// tuneGc (src/cli/gc-tuning.ts) on a real child process: while an "upload" is in flight, the request-body-sized
// Buffers it throws away (64 KiB each, as a socket read makes them) are given back by minor GCs, so V8's external
// memory stays well under what the same allocations reach with V8 left alone (V8 13 collects such buffers only
// at a full GC 64 MiB of external memory later). The rule on scripted readings: test/unit/gc-tuning.test.ts.
// The child yields to the event loop every 4 MiB so the tuner's 1 ms check runs; nothing here is timed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const MODULE = fileURLToPath(new URL('../../src/cli/gc-tuning.ts', import.meta.url));

/** Runs 1 GiB of 64 KiB Buffers through a child with the tuner on (or V8 left alone); returns the peak growth of
 *  external memory and the tuner's collections. Bounded by spawnSync's timeout. */
function child(tuned: boolean): { mode: string; collections: number; peakGrowth: number } {
  const script = `
    const { getHeapStatistics } = await import('node:v8');
    const { tuneGc } = await import(${JSON.stringify(MODULE)});
    const tuner = tuneGc({ checkMs: 1, ...(${tuned} ? {} : { minorGc: null }) });
    const ext = () => getHeapStatistics().external_memory;
    const start = ext(); let peak = 0; let sink = 0;
    tuner.start();
    for (let i = 0; i < 16384; i++) {
      const b = Buffer.alloc(64 * 1024, i & 255);   // a socket read's buffer, dead once copied on
      sink += b[100];
      if (i % 64 === 63) { peak = Math.max(peak, ext() - start); await new Promise((r) => setTimeout(r, 1)); }
    }
    tuner.end();
    console.log(JSON.stringify({ mode: tuner.mode, collections: tuner.collections, peakGrowth: peak, sink: sink > 0 }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.error ? `child process: ${r.error.message}` : r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { mode: string; collections: number; peakGrowth: number };
}

test('during an upload, minor GCs give dead request-body buffers back long before V8 would by itself', () => {
  const alone = child(false);
  const tuned = child(true);
  assert.equal(tuned.mode, 'minor GC per 16 MiB of request-body buffers during uploads');
  assert.ok(tuned.collections >= 10, JSON.stringify(tuned));
  assert.equal(alone.collections, 0);
  assert.ok(tuned.peakGrowth < 32 * MiB, `tuned: external memory grew at most ${tuned.peakGrowth >> 20} MiB`);
  assert.ok(alone.peakGrowth > tuned.peakGrowth + 16 * MiB,
    `V8 alone held more dead buffers: ${alone.peakGrowth >> 20} MiB vs ${tuned.peakGrowth >> 20} MiB tuned`);
});
