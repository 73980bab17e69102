// tuneGc (src/cli/gc-tuning.ts): the rule on scripted external-memory readings (a minor GC once the request-body
// buffers grew STEP while an upload is in flight; nothing without uploads; the checks stop after the last one
// ends). What a minor GC does to a real process's buffers: test/integration/gc-tuning-process.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tuneGc } from '../../src/cli/gc-tuning.js';

const MiB = 1024 * 1024;

/** A scripted external memory; minor GCs drop it to `live`. The timer never fires (checks are driven by hand). */
function scripted(live = 4 * MiB) {
  const m = { external: live, gcCalls: 0 };
  const tuner = tuneGc({ checkMs: 1e9, step: 16 * MiB, external: () => m.external, minorGc: () => { m.gcCalls++; m.external = live; } });
  return { m, tuner };
}

test('no collection without an upload in flight, whatever the external memory does', () => {
  const { m, tuner } = scripted();
  assert.equal(tuner.mode, 'minor GC per 16 MiB of request-body buffers during uploads');
  m.external += 200 * MiB;
  assert.equal(tuner.check(), false);
  assert.equal(m.gcCalls, 0);
});

test('during uploads: a minor GC each time the buffers grew STEP since the last look; none after the last upload ends', () => {
  const { m, tuner } = scripted();
  tuner.start();
  tuner.start();   // two uploads
  m.external += 15 * MiB;
  assert.equal(tuner.check(), false, 'under STEP');
  m.external += 1 * MiB;
  assert.equal(tuner.check(), true, 'STEP reached');
  assert.equal(m.external, 4 * MiB);
  m.external += 40 * MiB;
  assert.equal(tuner.check(), true);
  assert.equal(tuner.collections, 2);
  tuner.end();     // one left
  m.external += 16 * MiB;
  assert.equal(tuner.check(), true, 'still one upload in flight');
  tuner.end();
  m.external += 100 * MiB;
  assert.equal(tuner.check(), false, 'no upload left');
  assert.equal(m.gcCalls, 3);
});

test('V8 freeing buffers by itself lowers the mark the growth is counted from', () => {
  const { m, tuner } = scripted();
  tuner.start();
  m.external += 12 * MiB; assert.equal(tuner.check(), false);
  m.external = 2 * MiB; assert.equal(tuner.check(), false);    // V8 collected: the floor follows
  m.external += 15 * MiB; assert.equal(tuner.check(), false);
  m.external += 1 * MiB; assert.equal(tuner.check(), true, '16 MiB above the lowest reading');
  tuner.end();
});

test('without a gc function V8 is left alone', () => {
  const tuner = tuneGc({ checkMs: 1e9, external: () => 500 * MiB, minorGc: null });
  assert.equal(tuner.mode, 'V8 default (no gc function)');
  tuner.start();
  assert.equal(tuner.check(), false);
  tuner.end();
});
