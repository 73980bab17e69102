// scripts/run-tests.mjs ends with what was skipped and why: one line per skipped test or suite, then one summary
// line; under CI=true a run that skipped anything fails. Run here on small fixture test files in a temp dir, with
// the real runner (node --test, tsx, the spec reporter and scripts/skip-reporter.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../support/processes.js';
import { withDeadline } from '../support/wait.js';

const FIXTURE = `import { test, describe, it } from 'node:test';
test('push with sometool', { skip: 'not installed: sometool (apt-get install sometool)' }, () => {});
test('pull with sometool', { skip: 'not installed: sometool (apt-get install sometool)' }, () => {});
test('reads the sample', (t) => { t.skip('no /etc/thing'); });
describe('a cache suite', { skip: 'redis-server is not installed' }, () => { it('inner', () => {}); });
test('runs', () => {});
`;

interface Run { code: number | null; lines: string[]; out: string }

async function runTests(t: { after(fn: () => Promise<void>): void }, source: string, env: NodeJS.ProcessEnv = {}): Promise<Run & { file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-run-tests-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'fixture.test.ts');
  await writeFile(file, source);
  const base = { ...process.env };
  delete base.CI; delete base.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'run-tests.mjs'), file], { cwd: REPO_ROOT, env: { ...base, ...env } });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const closed = new Promise<number | null>((res, rej) => { child.once('error', rej).once('close', (c) => res(c)); });
  try {
    const code = await withDeadline(closed, 60_000, 'run-tests.mjs to exit', () => out);
    return { code, out, lines: out.trimEnd().split('\n'), file: relative(REPO_ROOT, file) };
  } finally {
    if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }
}

test('a run that skips ends with one line per skip and a summary line grouped by reason; exit 0 outside CI', async (t) => {
  const r = await runTests(t, FIXTURE);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /ℹ skipped 3\n/, 'the spec reporter still prints the run');
  assert.deepEqual(r.lines.slice(-5), [
    `skipped: ${r.file}: push with sometool (not installed: sometool (apt-get install sometool))`,
    `skipped: ${r.file}: pull with sometool (not installed: sometool (apt-get install sometool))`,
    `skipped: ${r.file}: reads the sample (no /etc/thing)`,
    `skipped: ${r.file}: suite a cache suite (redis-server is not installed)`,
    `skipped 3 tests and 1 suite: not installed: sometool (apt-get install sometool) (2: ${r.file}); no /etc/thing (1: ${r.file}); redis-server is not installed (1: ${r.file})`,
  ]);
});

test('under CI=true a skip fails the run, the summary still last', async (t) => {
  const r = await runTests(t, FIXTURE, { CI: 'true' });
  assert.equal(r.code, 1, r.out);
  assert.equal(r.lines.at(-2), 'CI=true: 4 skipped (tests and suites); under CI nothing may skip (bash .ci/run installs every tool the tests need)');
  assert.match(r.lines.at(-1)!, /^skipped 3 tests and 1 suite: not installed: sometool/);
});

test('nothing skipped: "skipped: none"; a failing test keeps its exit status', async (t) => {
  const ok = await runTests(t, `import { test } from 'node:test';\ntest('runs', () => {});\n`, { CI: 'true' });
  assert.equal(ok.code, 0, ok.out);
  assert.equal(ok.lines.at(-1), 'skipped: none');
  const failing = await runTests(t, `import { test } from 'node:test';\ntest('fails', () => { throw new Error('boom'); });\n`);
  assert.equal(failing.code, 1, failing.out);
  assert.equal(failing.lines.at(-1), 'skipped: none');
});
