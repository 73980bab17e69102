// tuneGc (src/cli/gc-tuning.ts): on V8 11 it sets V8's incremental-marking triggers, unless the command line
// already chose. Proven on real child processes with --trace-incremental-marking: ordinary old-generation
// growth starts incremental marking by V8's default rule, and after tuneGc() only once the growth passes the
// trigger (here: never, the limit is reached first, so full GCs run on allocation failure), and the
// upload-shaped pattern (16 KiB ArrayBuffers with an old generation above 8 MiB) is still collected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tuneGc } from '../../src/cli/gc-tuning.js';

const MODULE = fileURLToPath(new URL('../../src/cli/gc-tuning.ts', import.meta.url));
const V8_11 = process.versions.v8.startsWith('11.');

/** A child that (optionally) tunes, then promotes ~100 MB of short-lived arrays into the old generation. */
function child(tune: boolean, nodeArgs: string[] = []): string {
  const script = `
    const { tuneGc } = await import(${JSON.stringify(MODULE)});
    console.log(${tune ? '"TUNED " + tuneGc()' : '"TUNED none"'});
    const keep = [];
    for (let i = 0; i < 400; i++) { keep.push(new Array(50_000).fill(0).map((_, j) => ({ i, j }))); if (keep.length > 8) keep.shift(); }
    console.log("DONE", keep.length);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--trace-incremental-marking', '--trace-gc', ...nodeArgs, '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /DONE 8/);
  return r.stdout.slice(r.stdout.indexOf('TUNED'));
}

const startsByRule = /\[IncrementalMarking\] Start \((allocation limit|task)\)/;

test('without tuning V8 starts incremental marking by its own rule; after tuneGc() it does not, and full GCs still run', { skip: !V8_11 && 'V8 11 only (Node 20)' }, () => {
  assert.match(child(false), startsByRule, 'the allocation pattern starts incremental marking by default');
  const tuned = child(true);
  assert.match(tuned, /^TUNED marking triggers 300\/400%$/m);
  assert.doesNotMatch(tuned, startsByRule);
  assert.match(tuned, /Mark-Compact[^\n]*allocation failure/, 'old-generation garbage is still collected');
});

test('an explicit trigger or incremental-marking flag on the command line or in NODE_OPTIONS is left alone', { skip: !V8_11 && 'V8 11 only (Node 20)' }, () => {
  assert.equal(tuneGc(['--incremental-marking'], ''), 'as given on the command line');
  assert.equal(tuneGc(['--no-incremental-marking'], ''), 'as given on the command line');
  assert.equal(tuneGc(['--incremental-marking-hard-trigger=90'], ''), 'as given on the command line');
  assert.equal(tuneGc([], '--max-old-space-size=512 --incremental_marking_soft_trigger=50'), 'as given on the command line');
  const kept = child(true, ['--incremental-marking']);
  assert.match(kept, /^TUNED as given on the command line$/m);
  assert.match(kept, startsByRule);
});

test('other V8 versions keep V8 default behaviour (the values were measured on V8 11 only)', () => {
  assert.equal(tuneGc([], '', '12.4.254.21-node.33'), 'V8 default (not V8 11)');
  assert.equal(tuneGc([], '', '13.6.233.10-node.27'), 'V8 default (not V8 11)');
});
