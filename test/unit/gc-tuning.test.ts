// tuneGc (src/cli/gc-tuning.ts): after it, V8 runs full GCs without incremental marking, unless the
// command line already chose. Proven on real child processes with --trace-incremental-marking: the same
// allocation pattern starts incremental marking without the tuning and never after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tuneGc } from '../../src/cli/gc-tuning.js';

const MODULE = fileURLToPath(new URL('../../src/cli/gc-tuning.ts', import.meta.url));

/** A child that (optionally) tunes, then promotes ~100 MB of short-lived arrays into the old generation. */
function child(tune: boolean, nodeArgs: string[] = []): { out: string; afterTune: string } {
  const script = `
    const { tuneGc } = await import(${JSON.stringify(MODULE)});
    ${tune ? 'console.log("TUNED", tuneGc());' : 'console.log("TUNED none");'}
    const keep = [];
    for (let i = 0; i < 400; i++) { keep.push(new Array(50_000).fill(0).map((_, j) => ({ i, j }))); if (keep.length > 8) keep.shift(); }
    console.log("DONE", keep.length);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--trace-incremental-marking', '--trace-gc', ...nodeArgs, '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /DONE 8/);
  return { out: r.stdout, afterTune: r.stdout.slice(r.stdout.indexOf('TUNED')) };
}

test('without tuning, V8 marks incrementally; after tuneGc() it never starts incremental marking, full GCs still run', () => {
  const control = child(false);
  assert.match(control.afterTune, /\[IncrementalMarking\] Start/, 'the allocation pattern starts incremental marking by default');
  const tuned = child(true);
  assert.match(tuned.afterTune, /^TUNED incremental marking off$/m);
  assert.doesNotMatch(tuned.afterTune, /\[IncrementalMarking\] Start/);
  assert.match(tuned.afterTune, /Mark-Compact/, 'old-generation garbage is still collected');
});

test('an explicit --incremental-marking on the command line or in NODE_OPTIONS is left alone', () => {
  assert.equal(tuneGc(['--incremental-marking'], ''), 'as given on the command line');
  assert.equal(tuneGc(['--no-incremental-marking'], ''), 'as given on the command line');
  assert.equal(tuneGc([], '--max-old-space-size=512 --incremental_marking'), 'as given on the command line');
  const kept = child(true, ['--incremental-marking']);
  assert.match(kept.afterTune, /^TUNED as given on the command line$/m);
  assert.match(kept.afterTune, /\[IncrementalMarking\] Start/);
});
