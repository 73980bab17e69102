// tuneGc (src/cli/gc-tuning.ts): on V8 11 its tuner raises V8's incremental-marking triggers while uploads are
// in flight and puts V8's own rule back after the last one, unless the command line already chose. Proven on
// real child processes with --trace-incremental-marking: ordinary old-generation growth starts incremental
// marking by V8's default rule; while the tuner holds an upload it does not (the limit is reached first, so
// full GCs run on allocation failure); after end() V8's rule applies again. The mode choice alone:
// test/unit/gc-tuning.test.ts. The sleeps inside the children are the scenario (an upload starting within
// the 50 ms restore delay, or after it), not waits for something to happen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../../src/cli/gc-tuning.ts', import.meta.url));

/**
 * A node whose V8 is 11 (Node 20), where the tuner acts: this process's when it is one, else BERTH_V8_11_NODE,
 * else /usr/bin/node (the machine's Node 20 when CI runs the suite on Node 24). Without one the tests skip,
 * except under CI=true, where they fail naming what is missing.
 */
function v8_11Node(): string | undefined {
  if (process.versions.v8.startsWith('11.')) return process.execPath;
  for (const bin of [process.env.BERTH_V8_11_NODE, '/usr/bin/node']) {
    if (!bin) continue;
    const r = spawnSync(bin, ['-p', 'process.versions.v8'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0 && r.stdout.startsWith('11.')) return bin;
  }
  return undefined;
}
const NODE = v8_11Node();
const missing = 'a Node 20 (V8 11) binary: set BERTH_V8_11_NODE or install Node 20 as /usr/bin/node';

/** A child that calls the tuner's start()/end() as `calls` says, then promotes ~100 MB of short-lived arrays
 *  into the old generation; returns its output from the PHASE line on. Bounded by spawnSync's timeout. */
function child(calls: string, nodeArgs: string[] = []): string {
  const script = `
    const { tuneGc } = await import(${JSON.stringify(MODULE)});
    const gc = tuneGc(undefined, undefined, 50);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    ${calls}
    console.log("PHASE " + gc.mode);
    const keep = [];
    for (let i = 0; i < 400; i++) { keep.push(new Array(50_000).fill(0).map((_, j) => ({ i, j }))); if (keep.length > 8) keep.shift(); }
    console.log("DONE", keep.length);`;
  assert.ok(NODE, `needs ${missing}`);
  const r = spawnSync(NODE, ['--import', 'tsx', '--trace-incremental-marking', '--trace-gc', ...nodeArgs, '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.error ? `child process: ${r.error.message}` : r.stderr);
  assert.match(r.stdout, /DONE 8/);
  return r.stdout.slice(r.stdout.indexOf('PHASE'));
}

const startsByRule = /\[IncrementalMarking\] Start \((allocation limit|task)\)/;
const v8only = { skip: !NODE && process.env.CI !== 'true' && `needs ${missing}` };

test('V8 starts incremental marking by its own rule; during an upload it does not (full GCs still run); shortly after the last upload ends it does again', v8only, () => {
  assert.match(child(''), startsByRule, 'the allocation pattern starts incremental marking by default');
  const during = child('gc.start(); gc.start(); gc.end();');   // one of two uploads ended: still raised
  assert.match(during, /^PHASE marking triggers 300\/400% during uploads$/m);
  assert.doesNotMatch(during, startsByRule);
  assert.match(during, /Mark-Compact[^\n]*allocation failure/, 'old-generation garbage is still collected');
  // The next upload within the restore delay (a client's next PATCH) finds the triggers still raised.
  assert.doesNotMatch(child('gc.start(); gc.end(); await sleep(10); gc.start(); await sleep(100);'), startsByRule);
  assert.doesNotMatch(child('gc.start(); gc.end();'), startsByRule, 'not restored at once');
  assert.match(child('gc.start(); gc.start(); gc.end(); gc.end(); await sleep(100);'), startsByRule, 'V8\'s own rule is back');
});

test('an incremental-marking flag on node\'s command line is left alone in a real process', v8only, () => {
  const kept = child('gc.start();', ['--incremental-marking']);
  assert.match(kept, /^PHASE as given on the command line$/m);
  assert.match(kept, startsByRule);
});
