// One config.yml for both registry:2 and berth (issue 15 point 11): berth's gateway-only settings live in a
// top-level `berth:` section, which the real Distribution 2.8.2 (Debian's docker-registry) ignores: it starts
// and serves with the section present, and berth started from the built CLI on the same file honours it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startBerth } from '../support/processes.js';
import { request } from '../support/http.js';
import { withDeadline } from '../support/wait.js';

const configYml = (root: string) => [
  'version: 0.1',
  'log:',
  '  level: info',
  'storage:',
  '  filesystem:',
  `    rootdirectory: ${root}`,
  'http:',
  '  addr: 127.0.0.1:0',
  'berth:',
  '  clients: { rejectuseragents: "^curl/" }',
  '  proxy: { readtimeout: 60s, trustedproxies: [10.0.0.0/8] }',
  '',
].join('\n');

function hasDockerRegistry(): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn('docker-registry', ['--version'], { stdio: 'ignore' });
    c.once('error', () => resolve(false)).once('exit', (code) => resolve(code === 0));
  });
}

test('registry:2 (docker-registry 2.8.2) starts and serves with the berth: section present', async (t) => {
  if (!(await hasDockerRegistry())) {
    if (process.env.CI === 'true') assert.fail('docker-registry is not installed');
    t.skip('docker-registry is not installed'); return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'berth-onefile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yml');
  await writeFile(file, configYml(join(dir, 'data')));
  const child = spawn('docker-registry', ['serve', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  t.after(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; } });
  let out = '';
  const addr = await withDeadline(new Promise<string>((resolve, reject) => {
    const onData = (c: Buffer) => { out += c; const m = /listening on (127\.0\.0\.1:\d+)/.exec(out); if (m) resolve(m[1]!); };
    child.stdout!.on('data', onData); child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`docker-registry exited before listening:\n${out}`)));
  }), 15_000, 'docker-registry to listen', () => out);
  const r = await request(`http://${addr}/v2/`, { headers: { 'User-Agent': 'curl/8' } });
  assert.equal(r.status, 200, 'registry:2 ignores the berth: section (its User-Agent rule is berth\'s only)');
  assert.doesNotMatch(out, /berth/i, 'not even a warning about it');
});

test('berth on the same file honours the berth: section; check-config says ok', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-onefile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yml');
  await writeFile(file, configYml(join(dir, 'data')));
  const c = await runCli(['check-config', file]);
  assert.equal(c.code, 0, c.stdout + c.stderr);
  assert.equal(c.stdout, `${file}: ok\n`);
  const b = await startBerth({ configYaml: configYml('ROOT') });
  t.after(() => b.close());
  assert.equal((await request(`${b.url}/v2/`, { headers: { 'User-Agent': 'curl/8' } })).status, 404, 'clients.rejectuseragents from berth:');
  assert.equal((await request(`${b.url}/v2/`, { headers: { 'User-Agent': 'docker/27.0' } })).status, 200);
});
