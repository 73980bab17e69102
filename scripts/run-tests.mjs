#!/usr/bin/env node
// Runs node:test over TypeScript test files (loaded through tsx). Node 20's --test takes no globs,
// so this script finds the files. Usage: node scripts/run-tests.mjs [dir-or-file ...]
// It ends with what was skipped and why: one line per skipped test or suite (file, name, reason), then
// one summary line, "skipped: none" or "skipped N tests[ and M suites]: REASON (count: files); …". Under CI=true a run that skipped
// anything fails (exit 1): CI installs every tool the tests drive, so nothing may skip there.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test/unit', 'test/integration', 'test/adversarial', 'test/e2e'];
const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  else if (p.endsWith('.test.ts')) files.push(p);
};
for (const r of roots) if (existsSync(r)) walk(r);
if (files.length === 0) { console.error('no test files under', roots.join(' ')); process.exit(1); }
const skipDir = mkdtempSync(join(tmpdir(), 'berth-test-skips-'));
const skipFile = join(skipDir, 'skips.jsonl');
// Safety net for CI's time limit: a test that hangs fails after 5 minutes (every wait in the tests has its own,
// shorter deadline). No --test-force-exit: with it a file's process could end before the runner had all of its
// results, and a run passed with a file's last tests never reported (13 of config-distribution's in one CI run;
// 3 of 363 unit tests in one of seven local runs). A file that leaks a handle now hangs instead, visibly.
const args = ['--import', 'tsx', '--test',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${fileURLToPath(new URL('./skip-reporter.mjs', import.meta.url))}`, `--test-reporter-destination=${skipFile}`,
  '--test-timeout=300000', ...files];
if (process.env.TEST_CONCURRENCY) args.splice(2, 0, `--test-concurrency=${process.env.TEST_CONCURRENCY}`);
// Started from inside a test (run-tests' own test), node:test's child marker would turn this run into TAP.
const env = { ...process.env };
delete env.NODE_TEST_CONTEXT;
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env });
let status = r.status ?? 1;

let skips = [];
try {
  skips = readFileSync(skipFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
} catch { /* no file: the run ended before the reporter wrote anything */ }
rmSync(skipDir, { recursive: true, force: true });
const where = (s) => (s.file ? relative(process.cwd(), s.file) : '?');
for (const s of skips) console.log(`skipped: ${where(s)}: ${s.suite ? 'suite ' : ''}${s.name}${s.reason ? ` (${s.reason})` : ''}`);
if (skips.length && process.env.CI === 'true') {
  console.log(`CI=true: ${skips.length} skipped (tests and suites); under CI nothing may skip (bash .ci/run installs every tool the tests need)`);
  if (status === 0) status = 1;
}
console.log(summary(skips));
process.exit(status);

/** "skipped: none", or "skipped N tests and M suites: REASON (count: file, file); REASON (count: file)", most frequent
 *  reason first (counted as the spec reporter counts: a skipped suite's tests are not run, so not counted). */
function summary(list) {
  if (list.length === 0) return 'skipped: none';
  const byReason = new Map();
  for (const s of list) {
    const reason = s.reason || 'no reason given';
    const e = byReason.get(reason) ?? { count: 0, files: new Set() };
    e.count++; e.files.add(where(s));
    byReason.set(reason, e);
  }
  const parts = [...byReason].sort((a, b) => b[1].count - a[1].count)
    .map(([reason, e]) => `${reason} (${e.count}: ${[...e.files].join(', ')})`);
  const suites = list.filter((s) => s.suite).length;
  const tests = list.length - suites;
  const n = (k, what) => `${k} ${what}${k === 1 ? '' : 's'}`;
  return `skipped ${[tests && n(tests, 'test'), suites && n(suites, 'suite')].filter(Boolean).join(' and ')}: ${parts.join('; ')}`;
}
