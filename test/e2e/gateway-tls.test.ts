// The built CLI (`node dist/bundle/main.js serve`) as the nginx recipe's gateway: HTTPS with a test
// CA, htpasswd files made by Apache's own `htpasswd`, and real clients (docker login, skopeo, podman,
// buildah) against the embedded registry and, in sidecar mode, Distribution 2.8.2 behind berth.
// Also: bcrypt/apr1/SHA entries, removing a user, SIGHUP certificate reload, `serve --dev-cert`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { randomBytes, X509Certificate } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDevCert } from '../../src/cli/cert-command.js';
import { createSandbox, run, skipUnless, ToolError, type Sandbox } from '../support/clients.js';
import { writeOciLayout, type LayerSpec } from '../support/images.js';
import { request } from '../support/http.js';
import { BERTH_MAIN, startBerth, startDistribution, type ServerProcess } from '../support/processes.js';
import { waitUntil, withDeadline } from '../support/wait.js';

type T = { after(fn: () => unknown): void };
const USER = 'alice';
const PASSWORD = 'e2e-pass-' + randomBytes(4).toString('hex');
const LAYERS: LayerSpec[] = [{ size: 64 * 1024, kind: 'random' }, { size: 256 * 1024, kind: 'text' }];

/** A lowercase temp dir (podman/buildah name images pulled from oci:PATH after PATH). */
async function workDir(t: T, prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

interface Gw { berth: ServerProcess; host: string; url: string; dir: string; trust: string; ca: string; htpasswd: string }

/** berth over TLS with htpasswd auth, in front of the embedded registry or a Distribution sidecar. */
async function startGateway(t: T, mode: 'embedded' | 'sidecar', extraYaml = ''): Promise<Gw> {
  const dir = await workDir(t, 'berth-gw-e2e');
  const certs = await writeDevCert(join(dir, 'certs'), []);
  const htpasswd = join(dir, 'htpasswd');
  await run('htpasswd', ['-Bbc', htpasswd, USER, PASSWORD]);
  let upstream = 'embedded';
  if (mode === 'sidecar') {
    const dist = await startDistribution();
    t.after(() => dist.close());
    upstream = dist.url;
  }
  const berth = await startBerth({
    configYaml: [
      'listen: 127.0.0.1:0',
      `tls: { certificate: ${JSON.stringify(certs.certificate)}, key: ${JSON.stringify(certs.key)} }`,
      `auth: { htpasswd: { realm: Registry Realm, path: ${JSON.stringify(htpasswd)} } }`,
      `upstreams: { v2: ${JSON.stringify(upstream)} }`,
      'registry: { storage: { filesystem: { rootdirectory: ROOT }, delete: { enabled: true } } }',
      extraYaml, '',
    ].join('\n'),
  });
  t.after(() => berth.close());
  assert.match(berth.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  return { berth, host: berth.host, url: berth.url, dir, trust: certs.trustDir, ca: certs.ca, htpasswd };
}

const basic = (user: string, password?: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

/** GET /v2/ over TLS (trusting only the test CA) with optional Basic credentials → status. */
async function ping(g: Pick<Gw, 'url'>, ca: string, user?: string, password?: string): Promise<number> {
  return (await request(`${g.url}/v2/`, { ca, headers: user ? basic(user, password) : {} })).status;
}

/** The same GET through node:https `agent` (or a fresh connection): the SIGHUP test asserts on the TLS
 *  socket itself (reused or not, the certificate it was accepted under), which request() does not show. */
function pingSocket(g: Gw, ca: string, user: string, password: string, agent?: https.Agent): Promise<{ status: number; fingerprint: string; reused: boolean }> {
  return withDeadline(new Promise((resolve, reject) => {
    const req = https.get(`${g.url}/v2/`, { ca, headers: basic(user, password), agent: agent ?? false }, (res) => {
      const fingerprint = (res.socket as tls.TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? '';
      res.resume().on('end', () => resolve({ status: res.statusCode!, fingerprint, reused: req.reusedSocket }));
    });
    req.on('error', reject);
  }), 15_000, `GET ${g.url}/v2/`);
}

async function sandbox(t: T): Promise<Sandbox> {
  const sb = await createSandbox([]);   // nothing marked insecure: every client verifies TLS against the test CA
  t.after(() => sb.cleanup());
  return sb;
}

for (const mode of ['embedded', 'sidecar'] as const) {
  const needs = mode === 'sidecar' ? ['docker-registry'] as const : [] as const;

  const notRoot = process.getuid?.() !== 0 && process.env.CI !== 'true' ? 'needs root to write /etc/docker/certs.d' : false;
  test(`${mode}: docker login succeeds with the right password and fails with a wrong one`, { skip: skipUnless('docker', 'htpasswd', ...needs) || notRoot }, async (t) => {
    const g = await startGateway(t, mode);
    // The docker CLI verifies the registry with /etc/docker/certs.d/HOST:PORT/ca.crt (no daemon involved).
    const certsD = join('/etc/docker/certs.d', g.host);
    await mkdir(certsD, { recursive: true });
    t.after(() => rm(certsD, { recursive: true, force: true }));
    await copyFile(g.ca, join(certsD, 'ca.crt'));
    const config = await workDir(t, 'docker-config');
    const env = { ...process.env, DOCKER_CONFIG: config, HOME: config };
    const login = (password: string) => run('docker', ['--config', config, 'login', '-u', USER, '--password-stdin', g.host],
      { input: `${password}\n`, env, timeoutMs: 60_000 });
    const ok = await login(PASSWORD);
    assert.match(ok.stdout, /Login Succeeded/);
    const saved = JSON.parse(await readFile(join(config, 'config.json'), 'utf8'));
    assert.equal(Buffer.from(saved.auths[g.host].auth, 'base64').toString(), `${USER}:${PASSWORD}`);
    await assert.rejects(login('wrong-password'), (err: ToolError) => {
      assert.match(err.stderr, /401 Unauthorized/);
      return true;
    });
    assert.ok(!g.berth.output().stdout.includes(PASSWORD), 'the password never appears in the log');
  });

  test(`${mode}: skopeo login, copy in and back out over TLS; wrong credentials refused`, { skip: skipUnless('skopeo', 'htpasswd', ...needs) }, async (t) => {
    const g = await startGateway(t, mode);
    const sb = await sandbox(t);
    const work = await workDir(t, 'skopeo-tls');
    const img = await writeOciLayout(join(work, 'src'), { layers: LAYERS });
    const ref = `docker://${g.host}/e2e/tls/skopeo:v1`;
    await assert.rejects(sb.skopeo(['copy', '--dest-tls-verify=true', '--dest-cert-dir', g.trust, '--dest-creds', `${USER}:wrong`, img.ref, ref]),
      (err: ToolError) => /unauthorized|authentication required/i.test(err.stderr));
    await sb.skopeo(['login', '--tls-verify=true', '--cert-dir', g.trust, '-u', USER, '--password-stdin', g.host], { input: PASSWORD });
    const df = join(work, 'digest');
    await sb.skopeo(['copy', '--dest-tls-verify=true', '--dest-cert-dir', g.trust, '--digestfile', df, img.ref, ref]);
    assert.equal((await readFile(df, 'utf8')).trim(), img.manifestDigest);
    const out = join(work, 'out');
    await sb.skopeo(['copy', '--src-tls-verify=true', '--src-cert-dir', g.trust, ref, `dir:${out}`]);
    const manifest = await readFile(join(out, 'manifest.json'));
    assert.ok(manifest.equals(img.manifestBytes), 'the manifest comes back byte for byte');
    for (const l of img.layers) {
      assert.ok((await readFile(join(out, l.digest.slice(7)))).equals(await readFile(img.blobs.get(l.digest)!)), l.digest);
    }
    // Without trusting the CA the client refuses the server.
    await assert.rejects(sb.skopeo(['inspect', '--tls-verify=true', ref]), (err: ToolError) => /certificate|x509/i.test(err.stderr));
  });

  test(`${mode}: podman login, push and pull over TLS`, { skip: skipUnless('podman', 'htpasswd', ...needs) }, async (t) => {
    const g = await startGateway(t, mode);
    const sb = await sandbox(t);
    const work = await workDir(t, 'podman-tls');
    const img = await writeOciLayout(join(work, 'src'), { layers: LAYERS });
    await sb.podman(['login', '--cert-dir', g.trust, '-u', USER, '--password-stdin', g.host], { input: PASSWORD });
    const id = (await sb.podman(['pull', '--quiet', img.ref])).stdout.trim().split('\n').pop()!;
    const dest = `${g.host}/e2e/tls/podman:v1`;
    const df = join(work, 'digest');
    await sb.podman(['push', '--cert-dir', g.trust, '--digestfile', df, id, `docker://${dest}`]);
    const pushed = (await readFile(df, 'utf8')).trim();
    await sb.podman(['rmi', '--all', '--force']);
    await sb.podman(['pull', '--quiet', '--cert-dir', g.trust, dest]);
    const [info] = JSON.parse((await sb.podman(['image', 'inspect', dest])).stdout);
    assert.equal(info.Digest, pushed);
    assert.deepEqual(info.RootFS.Layers, img.layers.map((l) => l.diffId));
  });

  test(`${mode}: buildah push over TLS with --creds`, { skip: skipUnless('buildah', 'skopeo', 'htpasswd', ...needs) }, async (t) => {
    const g = await startGateway(t, mode);
    const sb = await sandbox(t);
    const work = await workDir(t, 'buildah-tls');
    const ctr = (await sb.buildah(['from', 'scratch'])).stdout.trim();
    const image = `localhost/berth-tls-${randomBytes(3).toString('hex')}`;
    await sb.buildah(['config', '--label', 'berth.e2e=tls', ctr]);
    await sb.buildah(['commit', '--quiet', ctr, image]);
    await sb.buildah(['rm', ctr]);
    const dest = `docker://${g.host}/e2e/tls/buildah:v1`;
    await assert.rejects(sb.buildah(['push', '--cert-dir', g.trust, '--creds', `${USER}:wrong`, image, dest]));
    const df = join(work, 'digest');
    await sb.buildah(['push', '--cert-dir', g.trust, '--creds', `${USER}:${PASSWORD}`, '--digestfile', df, image, dest]);
    const inspected = JSON.parse((await sb.skopeo(['inspect', '--tls-verify=true', '--cert-dir', g.trust, '--creds', `${USER}:${PASSWORD}`, dest])).stdout);
    assert.equal(inspected.Digest, (await readFile(df, 'utf8')).trim());
  });
}

test('htpasswd files from Apache htpasswd: bcrypt, apr1 and SHA entries work; a removed user is refused on the next request', { skip: skipUnless('htpasswd') }, async (t) => {
  const g = await startGateway(t, 'embedded');
  const ca = await readFile(g.ca, 'utf8');
  const users: [string, string, string][] = [['bcrypt-user', '-B', 'pw-b'], ['apr1-user', '-m', 'pw-m'], ['sha-user', '-s', 'pw-s']];
  for (const [user, flag, pw] of users) await run('htpasswd', ['-b', flag, g.htpasswd, user, pw]);
  const file = await readFile(g.htpasswd, 'utf8');
  assert.match(file, /^bcrypt-user:\$2y\$/m);
  assert.match(file, /^apr1-user:\$apr1\$/m);
  assert.match(file, /^sha-user:\{SHA\}/m);
  for (const [user, , pw] of users) {
    assert.equal(await ping(g, ca, user, pw), 200, user);
    assert.equal(await ping(g, ca, user, `${pw}x`), 401, user);
  }
  assert.equal(await ping(g, ca, USER, PASSWORD), 200);
  await run('htpasswd', ['-D', g.htpasswd, 'apr1-user']);
  assert.equal(await ping(g, ca, 'apr1-user', 'pw-m'), 401, 'removed user refused at once');
  assert.equal(await ping(g, ca, 'bcrypt-user', 'pw-b'), 200, 'the others still work');
  assert.equal(await ping(g, ca), 401);
});

test('SIGHUP reloads the certificate for new connections without dropping open ones', { skip: skipUnless('htpasswd') }, async (t) => {
  const g = await startGateway(t, 'embedded');
  const caA = await readFile(g.ca, 'utf8');
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const first = await pingSocket(g, caA, USER, PASSWORD, agent);
  assert.deepEqual([first.status, first.reused], [200, false]);

  const b = await writeDevCert(join(g.dir, 'certs'), [], { force: true });
  const fpB = new X509Certificate(b.pem.cert).fingerprint256;
  process.kill(g.berth.pid, 'SIGHUP');
  await waitUntil('the tls certificate loaded line for the new certificate', () => g.berth.output().stdout.includes(fpB), { timeoutMs: 15_000, intervalMs: 25 });
  const again = await pingSocket(g, caA, USER, PASSWORD, agent);   // the same TLS connection, accepted under the old certificate
  assert.deepEqual([again.status, again.reused], [200, true]);
  const fresh = await pingSocket(g, b.pem.caCert, USER, PASSWORD);
  assert.deepEqual([fresh.status, fresh.fingerprint], [200, fpB]);
  assert.equal(g.berth.output().stdout.includes('"signal":"SIGHUP"'), true);
});

test('serve --dev-cert generates a certificate only when asked; without it missing files fail the start', async (t) => {
  const dir = await workDir(t, 'berth-devcert');
  const certs = join(dir, 'certs');
  const yaml = [
    'listen: 127.0.0.1:0',
    `tls: { certificate: ${JSON.stringify(join(certs, 'domain.crt'))}, key: ${JSON.stringify(join(certs, 'domain.key'))} }`,
    'registry: { storage: { inmemory: {} } }', '',
  ].join('\n');
  await writeFile(join(dir, 'gateway.yml'), yaml);
  await assert.rejects(run(process.execPath, [BERTH_MAIN, 'serve', '--config', join(dir, 'gateway.yml')], { timeoutMs: 20_000 }),
    (err: ToolError) => err.code === 1 && err.stderr.includes(`file not found: ${join(certs, 'domain.crt')}`));
  await assert.rejects(readFile(join(certs, 'domain.crt')), 'nothing generated without --dev-cert');

  const berth = await startBerth({ configYaml: yaml, args: ['--dev-cert'] });
  t.after(() => berth.close());
  assert.match(berth.output().stdout, /generated a self-signed development certificate/);
  assert.equal(await ping(berth, await readFile(join(certs, 'ca.crt'), 'utf8')), 200);
});
