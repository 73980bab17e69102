// `check-config` says what `serve` would fail on (issue 15 point 10): the htpasswd file and the storage root
// are checked by both with the same lines (`file:line:col  key  path: why`), and a start failure is one plain
// line without a stack. The built CLI as a process (`npm run build` first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/processes.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-preflight-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** check-config and serve on the same file: check-config's stdout lines are serve's stderr lines after its first. */
async function both(file: string): Promise<{ check: string[]; serve: string[] }> {
  const c = await runCli(['check-config', file]);
  assert.equal(c.code, 1, c.stdout + c.stderr);
  const s = await runCli(['serve', '--config', file], {}, 20_000);
  assert.equal(s.code, 1, s.stdout + s.stderr);
  const lines = s.stderr.trimEnd().split('\n').filter((l) => !l.startsWith('warning: '));
  assert.equal(lines[0], 'berth: cannot start', s.stderr);
  assert.doesNotMatch(s.stderr + s.stdout, /\n\s+at /, 'no stack trace');
  return { check: c.stdout.trimEnd().split('\n'), serve: lines.slice(1) };
}

test('the Debian sample config.yml: its htpasswd path is a directory, named by key and path (not a bare EISDIR)', async (t) => {
  const dir = await tempDir(t);
  const sample = await readFile('/etc/docker/registry/config.yml', 'utf8').catch(() => undefined);
  if (sample === undefined) { t.skip('no /etc/docker/registry/config.yml (Debian docker-registry)'); return; }
  const file = join(dir, 'config.yml');
  // The sample as shipped, with its storage root and port moved somewhere a test may use.
  await writeFile(file, sample.replace('/var/lib/docker-registry', join(dir, 'data')).replace(':5000', '127.0.0.1:0'));
  const r = await both(file);
  const line = `${file}:19:11  auth.htpasswd.path  /etc/docker/registry: is a directory, expected an htpasswd file`;
  assert.deepEqual(r.check, [line]);
  assert.deepEqual(r.serve, [line]);
});

test('htpasswd: missing, a directory, a bad line; storage root: a file, below a file; all at once, same in serve', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'bad.htpasswd'), 'this line has no colon\n');
  await writeFile(join(dir, 'plain-file'), 'x');
  const conf = (htpasswd: string, root: string) => writeFile(join(dir, 'gateway.yml'),
    `listen: 127.0.0.1:0\nauth:\n  htpasswd: { path: ${htpasswd} }\nregistry:\n  storage:\n    filesystem: { rootdirectory: ${root} }\n`);
  const file = join(dir, 'gateway.yml');

  await conf('missing.htpasswd', 'plain-file');
  let r = await both(file);
  assert.deepEqual(r.check, [
    `${file}:3:21  auth.htpasswd.path  ${join(dir, 'missing.htpasswd')}: file not found`,
    `${file}:6:34  registry.storage.filesystem.rootdirectory  ${join(dir, 'plain-file')}: not a directory`,
  ]);
  assert.deepEqual(r.serve, r.check);

  await conf('.', 'plain-file/data');
  r = await both(file);
  assert.deepEqual(r.check, [
    `${file}:3:21  auth.htpasswd.path  ${dir}: is a directory, expected an htpasswd file`,
    `${file}:6:34  registry.storage.filesystem.rootdirectory  ${join(dir, 'plain-file/data')}: cannot be created: ${join(dir, 'plain-file')} is not a directory`,
  ]);
  assert.deepEqual(r.serve, r.check);

  // A line serve would skip is a warning (serve logs the same), not a failure.
  await conf('bad.htpasswd', 'new/data');
  const skipped = await runCli(['check-config', file]);
  assert.equal(skipped.code, 0, skipped.stdout + skipped.stderr);
  assert.equal(skipped.stderr, `warning: ${join(dir, 'bad.htpasswd')}:1: malformed line: expected user:hash; line skipped\n`);

  // A root that does not exist yet but can be created is fine (serve creates it).
  await writeFile(join(dir, 'ok.htpasswd'), 'alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n');
  await conf('ok.htpasswd', 'new/data');
  const ok = await runCli(['check-config', file]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
});

test('config.yml: the keys are the Distribution ones; a default root is named without a position', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'data'), 'not a directory');
  const file = join(dir, 'config.yml');
  await writeFile(file, 'version: 0.1\nhttp: { addr: "127.0.0.1:0" }\nstorage:\n  filesystem: { rootdirectory: ./data }\n');
  let r = await both(file);
  assert.deepEqual(r.check, [`${file}:4:32  storage.filesystem.rootdirectory  ${join(dir, 'data')}: not a directory`]);
  await writeFile(file, 'version: 0.1\nhttp: { addr: "127.0.0.1:0" }\n');   // berth's default ./data next to the file
  r = await both(file);
  assert.deepEqual(r.check, [`${file}  storage.filesystem.rootdirectory  ${join(dir, 'data')}: not a directory`]);
  assert.deepEqual(r.serve, r.check);
});

test('serve: a port in use is one plain line naming listen at its line:col, no stack', async (t) => {
  const dir = await tempDir(t);
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const file = join(dir, 'gateway.yml');
  await mkdir(join(dir, 'data'));
  await writeFile(file, `log: { level: info }\nlisten: 127.0.0.1:${port}\nregistry: { storage: { filesystem: { rootdirectory: data } } }\n`);
  const s = await runCli(['serve', '--config', file], {}, 20_000);
  assert.equal(s.code, 1);
  assert.equal(s.stderr, `berth: cannot start: ${file}:2:9  listen  cannot listen on 127.0.0.1:${port}: address already in use\n`);
  assert.doesNotMatch(s.stdout, /"stack"|\n\s+at /, 'no stack trace at the default level');
});

test('storage root not writable by the running user: named by key and path, in check-config and serve alike', async (t) => {
  // Root may write any ordinary directory, but not /proc/sys (procfs checks permissions itself: EACCES even for
  // root); without root a directory of mode 0555 does it.
  const dir = await tempDir(t);
  let root = '/proc/sys';
  if (process.getuid?.() !== 0) {
    root = join(dir, 'data');
    await mkdir(root, { mode: 0o555 });
    t.after(() => chmod(root, 0o755).catch(() => undefined));   // after the temp dir is gone: nothing to restore
  }
  const file = join(dir, 'gateway.yml');
  await writeFile(file, `listen: 127.0.0.1:0\nregistry:\n  storage:\n    filesystem: { rootdirectory: ${root} }\n`);
  const r = await both(file);
  // The explanation (uid, owner, fix) is tested in preflight-permissions.test.ts.
  const want = `${file}:4:34  registry.storage.filesystem.rootdirectory  ${root}: not writable (`;
  assert.equal(r.check.length, 1, r.check.join('\n'));
  assert.ok(r.check[0]!.startsWith(want), r.check[0]);
  assert.match(r.check[0]!, process.getuid?.() === 0 ? /refused even to root/ : /; fix: chmod -R u\+rwX /);
  assert.deepEqual(r.serve, r.check);
});
