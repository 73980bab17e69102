// The npm package: `npm pack` gives a small tarball with the bundle and no sources or tests, and `npm install -g`
// of it (into a temp prefix, dependencies from the npm registry) gives a `berth` command that prints its version
// and serves: GET /v2/ answers 200, SIGTERM stops it with exit 0. The tarball has no tsconfig.json or src/, so
// had npm run the root package's `prepare` (tsc + bundle) at install, the install would fail: npm 7+ runs only
// preinstall/install/postinstall for a tarball install, and this test keeps it that way.
// The pack uses the dist/ that `npm test` built (--ignore-scripts: `prepare` would rebuild dist/ under the
// other e2e tests running at the same time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { assertBuilt, REPO_ROOT } from '../support/processes.js';
import { request } from '../support/http.js';
import { runCommand, startServing } from '../support/command.js';

const PKG = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

/** The environment without npm's own npm_* variables (set when this runs under `npm test`: npm_config_prefix
 *  would fight --prefix), with this test's node first on PATH (the bin's `#!/usr/bin/env node`). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);
  return env;
}

test('npm pack → npm install -g --prefix TMP → berth --version, serve, GET /v2/ 200, SIGTERM exit 0', async (t) => {
  assertBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'berth-npm-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // The tarball: what is in it and what is not.
  const packed = await runCommand('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO_ROOT, env: cleanEnv(), timeoutMs: 120_000 });
  assert.equal(packed.code, 0, `npm pack failed (npm is needed: it comes with Node.js)\n${packed.stderr}`);
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; size: number; files: { path: string }[] }];
  const paths = info.files.map((f) => f.path).sort();
  for (const must of ['package.json', 'README.md', 'gateway.yml', 'docker/berth.service', 'docker/berth.yml', 'dist/bundle/main.js']) assert.ok(paths.includes(must), `${must} is in the tarball: ${paths.join(' ')}`);
  assert.ok(paths.some((p) => p.startsWith('dist/bundle/chunks/') && p.endsWith('.js')), 'the bundle chunks are in the tarball');
  const unwanted = paths.filter((p) => !/^(package\.json|README\.md|gateway\.yml|docker\/berth\.(service|yml)|dist\/bundle\/(chunks\/)?[^/]+\.js)$/.test(p));
  assert.deepEqual(unwanted, [], 'nothing else: no src/, test/, dist/src, dist/test, source maps, bench/, .ci/, Dockerfile, compose files');
  assert.ok(info.size < 1024 * 1024, `tarball ${info.size} bytes, expected < 1 MiB`);
  const tgz = join(dir, info.filename);
  assert.ok((await stat(tgz)).isFile());

  // Install it globally into a temp prefix: dependencies come from the npm registry; no lifecycle script of
  // berth's own runs (`prepare` would fail here: no tsconfig.json, no src/, no typescript).
  const prefix = join(dir, 'prefix');
  const installed = await runCommand('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tgz], { cwd: dir, env: cleanEnv(), timeoutMs: 300_000 });
  assert.equal(installed.code, 0, `npm install -g failed (the npm registry must be reachable)\n${installed.stdout}\n${installed.stderr}`);
  const berth = join(prefix, 'bin', 'berth');

  const v = await runCommand(berth, ['--version'], { cwd: dir, env: cleanEnv(), timeoutMs: 30_000 });
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout, `${PKG.version}\n`);

  // serve with a temp config, from a directory that is not the checkout.
  const work = join(dir, 'work');
  await mkdir(work);
  const config = join(work, 'gateway.yml');
  await writeFile(config, 'listen: 127.0.0.1:0\nregistry:\n  storage:\n    filesystem:\n      rootdirectory: data\nlog:\n  level: warn\n');
  const server = await startServing(berth, ['serve', '--config', config], { cwd: work, env: cleanEnv(), after: (fn) => t.after(fn) });
  const url = server.output().match(/berth (\S+) listening on (http:\/\/127\.0\.0\.1:\d+)/);
  assert.ok(url, server.output());
  const r = await request(`${url[2]}/v2/`, { fresh: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  assert.ok((await stat(join(work, 'data'))).isDirectory(), 'storage root resolved against the config file directory');
  assert.equal(await server.stop(), 0, server.output());
});
