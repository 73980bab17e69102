#!/usr/bin/env node
// Runs node:test over TypeScript test files (loaded through tsx). Node 20's --test takes no globs,
// so this script finds the files. Usage: node scripts/run-tests.mjs [dir-or-file ...]
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test/unit', 'test/integration', 'test/adversarial', 'test/e2e'];
const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  else if (p.endsWith('.test.ts')) files.push(p);
};
for (const r of roots) if (existsSync(r)) walk(r);
if (files.length === 0) { console.error('no test files under', roots.join(' ')); process.exit(1); }
// Safety nets for CI's time limit: a test that hangs fails after 5 minutes (every wait in the tests has its own,
// shorter deadline), and a file whose tests are done exits even if a leaked handle would keep it alive.
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=300000', '--test-force-exit', ...files];
if (process.env.TEST_CONCURRENCY) args.splice(2, 0, `--test-concurrency=${process.env.TEST_CONCURRENCY}`);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
