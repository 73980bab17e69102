// Volumes and users (issue 16 point 4): serve and check-config refuse at once, one line per problem, when the
// running user cannot read the htpasswd file or a tls: file, or cannot read and write the storage root or the
// Distribution layout a registry:2 volume has under it (root-owned), naming the path, berth's uid/gid, the
// owner and mode, and the fix. The built CLI as a process (`npm run build` first). Root bypasses permission
// bits, so as root berth runs as nobody (uid/gid 65534, spawn's uid/gid options) on files root owns; as another
// user, on files of mode 0 it owns (the fix is then a chmod).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, chown, copyFile, link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BERTH_MAIN, REPO_ROOT, assertBuilt, type CliRun } from '../support/processes.js';
import { withDeadline } from '../support/wait.js';

const ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
/** Who berth runs as in these tests, and its ids as berth prints them. */
const AS = ROOT ? { uid: NOBODY, gid: NOBODY } : { uid: process.getuid!(), gid: process.getgid!() };

const run = promisify(execFile);
interface Runtime { node: string; main: string; cwd: string }

/** Whether AS can execute `node` and read the bundle and one of its external packages (what a start needs). */
async function reachable(r: Runtime): Promise<boolean> {
  const probe = ['test -x "$1" && test -r "$2" && test -r "$3"', 'sh', r.node, r.main, join(r.cwd, 'node_modules', 'yaml', 'package.json')];
  return run('/bin/sh', ['-c', ...probe], { uid: AS.uid, gid: AS.gid, timeout: 10_000 }).then(() => true, () => false);
}

/**
 * node and the built CLI at paths AS can reach. As root they may not be: CI installs Node 24 under $HOME/.cache
 * (/root is 0700) and the clone may sit below a private directory, and then spawning as nobody fails with EACCES
 * before berth runs. Then a copy is staged in a 0755 temp dir: node, package.json (the bundle is ESM by it),
 * dist/bundle and node_modules (hard links when on one filesystem, else copies), removed after the file's tests.
 */
let runtime: Promise<Runtime> | undefined;
let staging: string | undefined;
after(async () => { if (staging) await rm(staging, { recursive: true, force: true }); });
function runtimeForAs(): Promise<Runtime> {
  runtime ??= (async () => {
    const direct = { node: process.execPath, main: BERTH_MAIN, cwd: REPO_ROOT };
    if (!ROOT || await reachable(direct)) return direct;
    const dir = staging = await mkdtemp(join(tmpdir(), 'berth-perm-runtime-'));
    await chmod(dir, 0o755);
    const node = join(dir, 'node');
    await link(process.execPath, node).catch(async () => { await copyFile(process.execPath, node); await chmod(node, 0o755); });
    await mkdir(join(dir, 'dist'), { mode: 0o755 });
    await copyFile(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'));
    await chmod(join(dir, 'package.json'), 0o644);
    for (const [from, to] of [[join(REPO_ROOT, 'dist', 'bundle'), join(dir, 'dist', 'bundle')], [join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules')]]) {
      await run('cp', ['-al', from, to], { timeout: 120_000 }).catch(async () => {
        await rm(to, { recursive: true, force: true });
        await run('cp', ['-a', from, to], { timeout: 120_000 });
      });
    }
    const staged = { node, main: join(dir, 'dist', 'bundle', 'main.js'), cwd: dir };
    if (!await reachable(staged)) throw new Error(`uid ${AS.uid} cannot run ${node} ${staged.main} even from the staged copy in ${dir}`);
    return staged;
  })();
  return runtime;
}

/** The built CLI, as AS (uid/gid options when root), clean environment, bounded. */
async function runAs(args: string[], timeoutMs = 20_000): Promise<CliRun> {
  assertBuilt();
  const r = await runtimeForAs();
  const child = spawn(r.node, [r.main, ...args], {
    cwd: r.cwd, env: { PATH: process.env.PATH }, ...(ROOT ? { uid: AS.uid, gid: AS.gid } : {}),
  });
  let stdout = ''; let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const closed = new Promise<number | null>((res, rej) => { child.once('error', rej).once('close', (c) => res(c)); });
  try {
    return { code: await withDeadline(closed, timeoutMs, `berth ${args.join(' ')}`, () => stdout + stderr), stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  }
}

/** A temp dir the test user can enter (mkdtemp makes 0700 dirs: nobody could not read the config in it). */
async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-perm-'));
  await chmod(dir, 0o755);
  t.after(async () => {
    for (const p of [...denied].filter((d) => d.startsWith(`${dir}/`)).reverse()) await chmod(p, 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

const denied = new Set<string>();
/** Makes `path` unusable by AS: as root it stays root's with `mode`; otherwise it is ours with mode 0. */
async function deny(path: string, mode: number): Promise<void> {
  denied.add(path);
  await chmod(path, ROOT ? mode : 0);
}

/** The explanation berth gives for `path` (owned by root as root, else by us) after "PATH: ". */
function explained(path: string, problem: string, mode: number, o: { dir?: boolean; chown?: string; want?: 'r' | 'w' } = {}): string {
  const owner = ROOT ? { uid: 0, gid: 0, mode } : { uid: AS.uid, gid: AS.gid, mode: 0 };
  const who = `berth runs as uid ${AS.uid}, gid ${AS.gid}; ${path} is owned by uid ${owner.uid}, gid ${owner.gid}, mode ${owner.mode.toString(8).padStart(4, '0')}`;
  if (ROOT) {
    return `${problem} (${who}); fix: chown ${o.dir || o.chown ? '-R ' : ''}${AS.uid}:${AS.gid} ${o.chown ?? path}, or run berth as uid ${owner.uid} (docker run --user ${owner.uid})`;
  }
  // Ours already: a chmod (the whole tree of a storage root).
  const w = o.want === 'w' ? 'w' : '';
  return o.chown ? `${problem} (${who}); fix: chmod -R u+r${w}X ${o.chown}` : `${problem} (${who}); fix: chmod u+r${w}${o.dir ? 'x' : ''} ${path}`;
}

/** check-config's stdout lines and serve's stderr lines after "berth: cannot start", both exit 1. */
async function both(file: string): Promise<{ check: string[]; serve: string[] }> {
  const c = await runAs(['check-config', file]);
  assert.equal(c.code, 1, c.stdout + c.stderr);
  const s = await runAs(['serve', '--config', file]);
  assert.equal(s.code, 1, s.stdout + s.stderr);
  const lines = s.stderr.trimEnd().split('\n');
  assert.equal(lines[0], 'berth: cannot start', s.stderr);
  return { check: c.stdout.trimEnd().split('\n'), serve: lines.slice(1) };
}

test('a storage root the user cannot write: uid, owner, mode and the fix, in check-config and serve alike', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'data');
  await mkdir(root);
  await deny(root, 0o755);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, `listen: 127.0.0.1:0\nregistry:\n  storage:\n    filesystem: { rootdirectory: ${root} }\n`);
  const r = await both(file);
  const want = `${file}:4:34  registry.storage.filesystem.rootdirectory  ${root}: ${explained(root, 'not writable', 0o755, { dir: true, chown: root, want: 'w' })}`;
  assert.deepEqual(r.check, [want]);
  assert.deepEqual(r.serve, [want]);
});

test('a registry:2 volume: the root is ours, the layout below it is not; read-only mode only needs to read', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'data');
  const v2 = join(root, 'docker/registry/v2');
  await mkdir(join(v2, 'blobs/sha256/ab'), { recursive: true });
  await mkdir(join(v2, 'repositories/library/alpine/_layers'), { recursive: true });
  if (ROOT) await chown(root, NOBODY, NOBODY);     // `docker/…` stays root's, 0755, as registry:2 left it
  else await deny(join(root, 'docker'), 0o755);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, `listen: 127.0.0.1:0\nregistry:\n  storage:\n    filesystem: { rootdirectory: ${root} }\n`);
  const docker = join(root, 'docker');
  const r = await both(file);
  const want = `${file}:4:34  registry.storage.filesystem.rootdirectory  ${root}: ${docker} ${explained(docker, 'not writable', 0o755, { dir: true, chown: root, want: 'w' })}`;
  assert.deepEqual(r.check, [want]);
  assert.deepEqual(r.serve, [want]);
  if (!ROOT) return;   // (ours with mode 0 is not readable either)
  // Read-only: root-owned 0755 directories can be read, so check-config passes.
  await writeFile(file, `listen: 127.0.0.1:0\nregistry:\n  storage:\n    filesystem: { rootdirectory: ${root} }\n    maintenance: { readonly: { enabled: true } }\n`);
  const ro = await runAs(['check-config', file]);
  assert.deepEqual(ro, { code: 0, stdout: `${file}: ok\n`, stderr: '' });
});

test('htpasswd, certificate key and client CA not readable: each named by key, with the fix; all at once', async (t) => {
  const dir = await tempDir(t);
  const f = (n: string) => join(dir, n);
  // Contents do not matter: the files are refused before anything parses them.
  for (const n of ['htpasswd', 'domain.crt', 'domain.key', 'ca.crt']) await writeFile(f(n), 'x\n');
  await deny(f('htpasswd'), 0o600);
  await deny(f('domain.key'), 0o600);
  await deny(f('ca.crt'), 0o600);
  await mkdir(f('data'));
  if (ROOT) await chown(f('data'), NOBODY, NOBODY);
  const file = f('gateway.yml');
  await writeFile(file, [
    'listen: 127.0.0.1:0',
    'tls: { certificate: domain.crt, key: domain.key, clientcas: [ca.crt] }',
    'auth: { htpasswd: { path: htpasswd } }',
    'registry: { storage: { filesystem: { rootdirectory: data } } }', '',
  ].join('\n'));
  const r = await both(file);
  assert.deepEqual(r.check, [
    `${file}:3:27  auth.htpasswd.path  ${f('htpasswd')}: ${explained(f('htpasswd'), 'permission denied', 0o600)}`,
    `${file}:2:38  tls.key  ${f('domain.key')}: ${explained(f('domain.key'), 'permission denied', 0o600)}`,
    `${file}:2:62  tls.clientcas.0  ${f('ca.crt')}: ${explained(f('ca.crt'), 'permission denied', 0o600)}`,
  ]);
  assert.deepEqual(r.serve, r.check);
});

test('a file in a directory the user cannot enter: the directory is named, with its owner', async (t) => {
  const dir = await tempDir(t);
  const secret = join(dir, 'secret');
  await mkdir(secret);
  await writeFile(join(secret, 'htpasswd'), 'alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n');
  await deny(secret, 0o700);
  const file = join(dir, 'gateway.yml');
  await writeFile(file, 'listen: 127.0.0.1:0\nauth: { htpasswd: { path: secret/htpasswd } }\nregistry: { storage: { inmemory: {} } }\n');
  const c = await runAs(['check-config', file]);
  assert.equal(c.code, 1, c.stdout + c.stderr);
  const path = join(secret, 'htpasswd');
  assert.equal(c.stdout, `${file}:2:27  auth.htpasswd.path  ${path}: ${explained(secret, `permission denied: cannot enter ${secret}`, 0o700, { dir: true })}\n`);
});

test('a storage root to be created where the user cannot write: the fix creates it (never a chown of the parent)', async (t) => {
  const dir = await tempDir(t);
  const parent = join(dir, 'lib');
  const root = join(parent, 'registry');
  await mkdir(parent);
  denied.add(parent);
  await chmod(parent, ROOT ? 0o755 : 0o555);   // as root: root's, 0755; otherwise ours without w
  const file = join(dir, 'gateway.yml');
  await writeFile(file, `listen: 127.0.0.1:0\nregistry: { storage: { filesystem: { rootdirectory: ${root} } } }\n`);
  const c = await runAs(['check-config', file]);
  assert.equal(c.code, 1, c.stdout + c.stderr);
  const who = `berth runs as uid ${AS.uid}, gid ${AS.gid}; ${parent} is owned by uid ${ROOT ? 0 : AS.uid}, gid ${ROOT ? 0 : AS.gid}, mode ${ROOT ? '0755' : '0555'}`;
  const fix = ROOT ? `mkdir -p ${root} && chown ${AS.uid}:${AS.gid} ${root} (as root), or run berth as uid 0 (docker run --user 0)` : `chmod u+rwx ${parent}`;
  assert.equal(c.stdout, `${file}:2:53  registry.storage.filesystem.rootdirectory  ${root}: cannot be created: ${parent} not writable (${who}); fix: ${fix}\n`);
});
