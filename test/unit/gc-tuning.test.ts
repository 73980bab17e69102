// tuneGc (src/cli/gc-tuning.ts): which mode it picks from node's command line and V8's version. What the
// tuner does to V8 (incremental-marking triggers raised during uploads, V8's own rule back after the last
// one) is proven on real child processes in test/integration/gc-tuning-process.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tuneGc } from '../../src/cli/gc-tuning.js';

/** Node 20's V8: the mode is chosen from the version string, whatever V8 runs the test (no flag is set here). */
const V8_11 = '11.3.244.8-node.33';

test('an explicit trigger or incremental-marking flag on node\'s command line is left alone', () => {
  assert.equal(tuneGc(['--incremental-marking'], V8_11).mode, 'as given on the command line');
  assert.equal(tuneGc(['--no-incremental-marking'], V8_11).mode, 'as given on the command line');
  assert.equal(tuneGc(['--incremental-marking-hard-trigger=90'], V8_11).mode, 'as given on the command line');
  assert.equal(tuneGc(['--max-old-space-size=512', '--incremental_marking_soft_trigger=50'], V8_11).mode, 'as given on the command line');
  assert.equal(tuneGc(['--max-old-space-size=512', '--incremental-marking-task'], V8_11).mode, 'marking triggers 300/400% during uploads');
});

test('other V8 versions keep V8 default behaviour (the values were measured on V8 11 only)', () => {
  assert.equal(tuneGc([], '12.4.254.21-node.33').mode, 'V8 default (not V8 11)');
  assert.equal(tuneGc([], '13.6.233.10-node.27').mode, 'V8 default (not V8 11)');
});
