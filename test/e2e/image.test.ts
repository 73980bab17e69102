// The container image builds and runs (#16): the repo's Dockerfile built with `buildah bud` on a stand-in for
// the official Node 24 base made offline (test/support/image-base.ts, cached by recipe hash), then run as
// registry:2 users run theirs: config.yml at /etc/docker/registry/config.yml (TLS + htpasswd) mounted read-only
// with the certificates and the htpasswd file, REGISTRY_* env on top, the data volume bind-mounted at
// /var/lib/registry. The image's own ENTRYPOINT/CMD serve, its own HEALTHCHECK probes, skopeo pushes and pulls
// over verified TLS, SIGTERM stops it cleanly. `podman run` cannot run containers on these machines (cgroups),
// so containers run with `buildah run --isolation chroot --network host` (test/support/image-container.ts).
//
// The tests in this file share one build (building is most of their time) and run in order; each later test
// fails naming the earlier step when it is missing. Needs root (rootful buildah, mmdebstrap), buildah,
// mmdebstrap, skopeo and htpasswd; under CI=true nothing skips.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDevCert } from '../../src/cli/cert-command.js';
import { createSandbox, run, type ToolError } from '../support/clients.js';
import { writeOciLayout } from '../support/images.js';
import { ensureTestBase, imageId, openImageStore, systemCaBundle, type ImageStore } from '../support/image-base.js';
import { TestContainer, type Mount, type Started } from '../support/image-container.js';
import { REPO_ROOT } from '../support/processes.js';
import { waitUntil } from '../support/wait.js';

type T = { after(fn: () => unknown): void };
type Defer = (fn: () => unknown) => void;

/** Cleanups that run last-registered first (node:test runs t.after hooks in registration order), so a
 *  container stops before the directories it mounts are removed. */
function lifo(t: T): Defer {
  const fns: (() => unknown)[] = [];
  t.after(async () => { for (const fn of fns.reverse()) await fn(); });
  return (fn) => { fns.push(fn); };
}
const TOOLS = ['buildah', 'mmdebstrap', 'skopeo', 'htpasswd'];
const USER = 'alice';
const PASSWORD = 'image-pass-' + randomBytes(4).toString('hex');
const RUN_ID = randomBytes(4).toString('hex');
const IMAGE = `localhost/berth-image-test:${RUN_ID}`;

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => { try { accessSync(join(d, tool), constants.X_OK); return true; } catch { return false; } });
}
/** Outside CI: skip without root or a tool (named). Under CI=true: run, and fail at the first missing tool. */
function skipReason(): string | false {
  if (process.env.CI === 'true') return false;
  if (process.getuid?.() !== 0) return 'needs root (rootful buildah, mmdebstrap)';
  const missing = TOOLS.filter((t) => !onPath(t));
  return missing.length ? `not installed: ${missing.join(', ')} (apt-get install ${missing.join(' ').replace('htpasswd', 'apache2-utils')})` : false;
}
const skip = skipReason();

async function workDir(defer: Defer, prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o755 });
  defer(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

let store: ImageStore | undefined;
let baseRef: string | undefined;
let built: string | undefined;
after(async () => {
  if (store && built === IMAGE) await store.buildah(['rmi', '--force', IMAGE]).catch(() => undefined);
});

/** The store and the built image, or a failure naming the step that did not happen. */
function image(): { store: ImageStore; ref: string } {
  if (!store || !built) throw new Error('the image was not built (see the failure of "the Dockerfile builds" above)');
  return { store, ref: built };
}

// The runner's default per-test limit is 5 min; a cold base (mmdebstrap over a slow mirror) and a build (npm ci)
// can each take longer on a loaded machine, so these two set their own.
test('base: Debian bookworm + Node 24 + npm + user node (1000), like node:24-bookworm-slim, cached by recipe', { skip, timeout: 900_000 }, async () => {
  if (process.getuid?.() !== 0) assert.fail('the image test needs root: rootful buildah and mmdebstrap (CI runs as root)');
  for (const tool of TOOLS) assert.ok(onPath(tool), `${tool} is not installed (Debian package ${tool === 'htpasswd' ? 'apache2-utils' : tool})`);
  store = await openImageStore();
  const base = await ensureTestBase(store);
  assert.ok(await imageId(store, base.ref), `${base.ref} is in the store`);
  if (base.built) assert.match(base.log, /v24\.[\s\S]*uid=1000\(node\)/, 'node 24 and npm run in the base; node is uid 1000');
  baseRef = base.ref;
});

test('the Dockerfile builds with buildah bud (BASE_IMAGE build arg, npm through the machine\'s CA trust)', { skip, timeout: 900_000 }, async () => {
  if (!store || !baseRef) assert.fail('no base image (see the base test above)');
  const reuse = process.env.BERTH_IMAGE_TEST_IMAGE;   // development only: an image built before, kept afterwards
  if (reuse) {
    built = reuse;
  } else {
    const ca = await systemCaBundle();
    const caArgs = ca ? ['-v', '/etc/ssl/certs:/etc/ssl/certs:ro', '--build-arg', `NODE_EXTRA_CA_CERTS=${ca}`] : [];
    await store.buildah(['bud', '--isolation', 'chroot', '--format', 'docker', '--pull=never', '--force-rm', '--layers=false',
      '--build-arg', `BASE_IMAGE=${baseRef}`, ...caArgs, '-t', IMAGE, '-f', join(REPO_ROOT, 'Dockerfile'), REPO_ROOT],
    { timeoutMs: 840_000 });
    built = IMAGE;
  }
  const c = await TestContainer.create(store, built, `berth-image-test-inspect-${RUN_ID}`);
  try {
    const cfg = c.image;
    assert.equal(cfg.User, '1000:1000', 'runs as uid 1000 (the base\'s node user), numerically');
    assert.deepEqual(Object.keys(cfg.Volumes ?? {}), ['/var/lib/registry']);
    assert.deepEqual(Object.keys(cfg.ExposedPorts ?? {}), ['5000/tcp']);
    assert.deepEqual(cfg.Entrypoint, ['node', '--max-semi-space-size=16', '/app/dist/bundle/main.js']);
    assert.deepEqual(cfg.Cmd, ['serve']);
    assert.equal(cfg.Healthcheck?.Test[0], 'CMD');
    assert.ok(cfg.Healthcheck?.Test.includes('healthcheck'), `HEALTHCHECK runs berth healthcheck: ${JSON.stringify(cfg.Healthcheck)}`);
    assert.ok(!cfg.Env.some((e) => e.startsWith('NODE_EXTRA_CA_CERTS=')), 'the build-time CA argument stays out of the image');
    assert.ok(cfg.Env.includes('NODE_ENV=production'));
    // What `docker run berth check-config …` and `docker exec … berth --version` do; the shipped default is valid.
    const checked = await c.exec(c.command(['check-config', '/etc/docker/registry/config.yml']));
    assert.equal(checked.code, 0, checked.stdout);
    assert.match(checked.stdout, /\/etc\/docker\/registry\/config\.yml: ok/);
    const version = await c.exec(['berth', '--version']);
    assert.equal(version.code, 0, version.stdout);
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.ok(version.stdout.includes(pkg.version), version.stdout);
    // Production dependencies only: no compiler, no test tooling in the runtime image.
    const dev = await c.exec(['sh', '-c', 'ls /app/node_modules/typescript /app/node_modules/esbuild /app/src 2>&1; id -u; node --version']);
    assert.match(dev.stdout, /typescript'?: No such file[\s\S]*esbuild'?: No such file[\s\S]*src'?: No such file/, dev.stdout);
    assert.match(dev.stdout, /^1000$/m, 'uid 1000 in the container');
    assert.match(dev.stdout, /^v24\./m, 'Node 24');
  } finally {
    await c.remove();
  }
});

interface Serving { c: TestContainer; run: Started; port: number; url: string }

/**
 * Starts the image's ENTRYPOINT + CMD with REGISTRY_HTTP_ADDR on a random loopback port (host network: the
 * port is the machine's); a port someone else holds is seen in berth's one-line start failure and another
 * is tried. Resolves once berth logs its listening line.
 */
async function serve(defer: Defer, name: string, o: { env?: Record<string, string>; mounts: Mount[] }): Promise<Serving> {
  const { store: s, ref } = image();
  for (let attempt = 1; ; attempt++) {
    const port = randomInt(20_000, 60_000);
    const c = await TestContainer.create(s, ref, `${name}-${RUN_ID}-${attempt}`, { env: { ...o.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}` }, mounts: o.mounts });
    defer(() => c.remove());   // stops what runs in it first
    const started = c.start();
    let gone = false;
    void started.exited.then(() => { gone = true; });
    const ready = await waitUntil('berth in the container to listen or exit',
      () => /listening on (https?:\/\/[^\s"',]+)/.exec(started.output()) ?? (gone ? 'exit' as const : undefined),
      { timeoutMs: 60_000, detail: started.output });
    if (ready !== 'exit') return { c, run: started, port, url: ready[1]! };
    if (attempt < 5 && /address already in use/.test(started.output())) continue;
    assert.fail(`berth in the container exited before listening:\n${started.output()}`);
  }
}

test('registry:2 style: TLS + htpasswd config.yml, REGISTRY_* env, /var/lib/registry volume; HEALTHCHECK; skopeo push and pull; SIGTERM', { skip }, async (t) => {
  image();
  const defer = lifo(t);
  const dir = await workDir(defer, 'berth-image-run');
  const certs = await writeDevCert(join(dir, 'certs'), []);
  // The key is read by uid 1000 (the image's user): registry:2 ran as root, so a root-only key needs this.
  await chown(certs.key, 1000, 1000);
  await mkdir(join(dir, 'auth'), { mode: 0o755 });
  await run('htpasswd', ['-Bbc', join(dir, 'auth', 'htpasswd'), USER, PASSWORD]);
  const data = join(dir, 'data');
  await mkdir(data, { mode: 0o755 });
  await chown(data, 1000, 1000);
  const config = join(dir, 'config.yml');
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  fields: { service: registry }',
    'storage:',
    '  filesystem: { rootdirectory: /var/lib/registry }',
    '  delete: { enabled: false }',
    'http:',
    '  addr: :5000',
    '  tls: { certificate: /certs/domain.crt, key: /certs/domain.key }',
    'auth:',
    '  htpasswd: { realm: basic-realm, path: /auth/htpasswd }',
    '',
  ].join('\n'));
  const mounts: Mount[] = [
    { host: config, container: '/etc/docker/registry/config.yml', ro: true },
    { host: certs.dir, container: '/certs', ro: true },
    { host: join(dir, 'auth'), container: '/auth', ro: true },
    { host: data, container: '/var/lib/registry' },
  ];
  const srv = await serve(defer, 'berth-image-tls', { mounts, env: { REGISTRY_STORAGE_DELETE_ENABLED: 'true' } });
  assert.equal(srv.url, `https://127.0.0.1:${srv.port}`, 'TLS from the mounted config.yml, the address from REGISTRY_HTTP_ADDR');
  assert.match(srv.run.output(), /"config":"\/etc\/docker\/registry\/config\.yml"/, 'the mounted config.yml was read');

  // The image's own HEALTHCHECK, run inside the container as the engine runs it.
  const healthy = await srv.c.healthcheck();
  assert.equal(healthy.code, 0, healthy.stdout);
  assert.match(healthy.stdout, new RegExp(`healthy: https://127\\.0\\.0\\.1:${srv.port}/v2/ answered 401`));

  const sb = await createSandbox([]);
  defer(() => sb.cleanup());
  const img = await writeOciLayout(join(dir, 'src'), { layers: [{ size: 64 * 1024, kind: 'random' }, { size: 128 * 1024, kind: 'text' }] });
  const ref = `docker://127.0.0.1:${srv.port}/e2e/image:v1`;
  await assert.rejects(sb.skopeo(['copy', '--dest-tls-verify=true', '--dest-cert-dir', certs.trustDir, '--dest-creds', `${USER}:wrong`, img.ref, ref]),
    (err: ToolError) => /unauthorized|authentication required/i.test(err.stderr));
  const df = join(dir, 'digest');
  await sb.skopeo(['copy', '--dest-tls-verify=true', '--dest-cert-dir', certs.trustDir, '--dest-creds', `${USER}:${PASSWORD}`, '--digestfile', df, img.ref, ref]);
  assert.equal((await readFile(df, 'utf8')).trim(), img.manifestDigest);
  const out = join(dir, 'out');
  await sb.skopeo(['copy', '--src-tls-verify=true', '--src-cert-dir', certs.trustDir, '--src-creds', `${USER}:${PASSWORD}`, ref, `dir:${out}`]);
  assert.ok((await readFile(join(out, 'manifest.json'))).equals(img.manifestBytes), 'the manifest comes back byte for byte');
  for (const l of img.layers) assert.ok((await readFile(join(out, l.digest.slice(7)))).equals(await readFile(img.blobs.get(l.digest)!)), l.digest);
  // The data is in the volume, written by uid 1000.
  const repo = await stat(join(data, 'docker', 'registry', 'v2', 'repositories', 'e2e', 'image'))
    .catch((err: unknown) => assert.fail(`${String(err)}\n${srv.run.output()}`));
  assert.equal(repo.uid, 1000);

  // SIGTERM to the image's process (PID 1 in a real container): drains and exits 0.
  const exit = await srv.run.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, srv.run.output());
  assert.match(srv.run.output(), /"msg":"closed"/);
  // Stopped: unhealthy, saying why.
  const down = await srv.c.healthcheck();
  assert.notEqual(down.code, 0, down.stdout);
  assert.match(down.stdout, /unhealthy: .*connection refused/);
  // Misconfigured (a config path that does not exist): unhealthy too.
  const broken = await srv.c.healthcheck({ env: { REGISTRY_CONFIGURATION_PATH: '/etc/docker/registry/missing.yml' } });
  assert.notEqual(broken.code, 0, broken.stdout);
  assert.match(broken.stdout, /unhealthy: invalid configuration/);
});

test('docker run berth: the shipped /etc/docker/registry/config.yml serves plain HTTP; healthy', { skip }, async (t) => {
  image();
  const defer = lifo(t);
  const dir = await workDir(defer, 'berth-image-default');
  const data = join(dir, 'data');
  await mkdir(data, { mode: 0o755 });
  await chown(data, 1000, 1000);
  const srv = await serve(defer, 'berth-image-default', { mounts: [{ host: data, container: '/var/lib/registry' }] });
  assert.equal(srv.url, `http://127.0.0.1:${srv.port}`);
  assert.match(srv.run.output(), /"config":"\/etc\/docker\/registry\/config\.yml"/);
  const healthy = await srv.c.healthcheck();
  assert.equal(healthy.code, 0, healthy.stdout);
  assert.match(healthy.stdout, /answered 200/);
  assert.deepEqual(await srv.run.stop(), { code: 0, signal: null }, srv.run.output());
});

test('a root-owned volume (made by registry:2): refused at start in one line; --user 0 serves it', { skip }, async (t) => {
  const { store: s, ref } = image();
  const defer = lifo(t);
  const dir = await workDir(defer, 'berth-image-rootvol');
  const data = join(dir, 'data');
  await mkdir(join(data, 'docker', 'registry', 'v2'), { recursive: true, mode: 0o755 });   // root:root, as registry:2 leaves it
  const c = await TestContainer.create(s, ref, `berth-image-rootvol-${RUN_ID}`, { env: { REGISTRY_HTTP_ADDR: '127.0.0.1:0' }, mounts: [{ host: data, container: '/var/lib/registry' }] });
  defer(() => c.remove());
  const refused = await c.exec(c.command(), { timeoutMs: 60_000 });
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stdout, /\/var\/lib\/registry.*not writable/, refused.stdout);
  assert.equal(refused.stdout.trim().split('\n').filter((l) => /not writable/.test(l)).length, 1, 'one line says why');
  // Either keep running as root, as registry:2 did…
  const asRoot = c.start(c.command(), { user: '0:0' });
  await waitUntil('berth as root to listen', () => /listening on https?:\/\//.test(asRoot.output()), { timeoutMs: 60_000, detail: asRoot.output });
  assert.deepEqual(await asRoot.stop(), { code: 0, signal: null }, asRoot.output());
  // …or hand the volume to uid 1000 once, with the image's own chown (the README's command), and serve as 1000.
  const chowned = await c.exec(['chown', '-R', '1000:1000', '/var/lib/registry'], { user: '0:0' });
  assert.equal(chowned.code, 0, chowned.stdout);
  const asNode = c.start();
  await waitUntil('berth as uid 1000 to listen', () => /listening on https?:\/\//.test(asNode.output()), { timeoutMs: 60_000, detail: asNode.output });
  assert.deepEqual(await asNode.stop(), { code: 0, signal: null }, asNode.output());
  assert.equal((await stat(join(data, 'docker', 'registry', 'v2'))).uid, 1000);
});
