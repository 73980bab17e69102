// Token auth with real clients against the built CLI: the README's recipe (a P-256 key and certificate made by
// `openssl`, auth.issuer next to auth.htpasswd, TLS with a test CA). `docker login` goes through the token flow
// (Bearer challenge on /v2/, GET on the realm with Basic and offline_token=true) and stores an identity token,
// never the password; skopeo then pushes and pulls with that identity token (the OAuth2 refresh_token grant) and
// with --creds (GET with Basic), and the identity token stops working once the user is removed. Interop: CNCF
// Distribution 2.8 (registry:2) configured with auth.token pointing at berth's issuer, berth's certificate as its
// rootcertbundle, takes berth's tokens for a skopeo push and pull.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDevCert } from '../../src/cli/cert-command.js';
import { createSandbox, run, skipUnless, ToolError, type Sandbox } from '../support/clients.js';
import { writeOciLayout, type LayerSpec } from '../support/images.js';
import { startBerth, startDistribution, type ServerProcess } from '../support/processes.js';

type T = { after(fn: () => unknown): void };
const USER = 'alice';
const PASSWORD = 'e2e-token-' + randomBytes(4).toString('hex');
const SERVICE = 'berth.e2e';
const ISSUER = 'berth-e2e-issuer';
const LAYERS: LayerSpec[] = [{ size: 64 * 1024, kind: 'random' }, { size: 128 * 1024, kind: 'text' }];

async function workDir(t: T, prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

/** The README's key recipe: an EC P-256 key and a self-signed certificate for it (openssl). */
async function tokenKey(dir: string): Promise<{ key: string; cert: string }> {
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await run('openssl', ['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '30', '-subj', '/CN=berth token signer']);
  return { key, cert };
}

interface Gw { berth: ServerProcess; host: string; dir: string; htpasswd: string; trust?: string; ca?: string; cert: string }

async function startIssuer(t: T, tls: boolean, extraAuth: string[] = []): Promise<Gw> {
  const dir = await workDir(t, 'berth-token-e2e');
  const htpasswd = join(dir, 'htpasswd');
  await run('htpasswd', ['-Bbc', htpasswd, USER, PASSWORD]);
  const { key, cert } = await tokenKey(dir);
  const certs = tls ? await writeDevCert(join(dir, 'certs'), []) : undefined;
  const berth = await startBerth({
    configYaml: [
      'listen: 127.0.0.1:0',
      ...(certs ? [`tls: { certificate: ${JSON.stringify(certs.certificate)}, key: ${JSON.stringify(certs.key)} }`] : []),
      'auth:',
      `  htpasswd: { realm: Registry Realm, path: ${JSON.stringify(htpasswd)} }`,
      `  issuer: { service: ${SERVICE}, issuer: ${ISSUER}, key: ${JSON.stringify(key)}, certificate: ${JSON.stringify(cert)} }`,
      ...extraAuth,
      'registry: { storage: { filesystem: { rootdirectory: ROOT } } }', '',
    ].join('\n'),
  });
  t.after(() => berth.close());
  return { berth, host: berth.host, dir, htpasswd, trust: certs?.trustDir, ca: certs?.ca, cert };
}

async function sandbox(t: T, insecure: string[] = []): Promise<Sandbox> {
  const sb = await createSandbox(insecure);
  t.after(() => sb.cleanup());
  return sb;
}

const notRoot = process.getuid?.() !== 0 && process.env.CI !== 'true' ? 'needs root to write /etc/docker/certs.d' : false;

test('docker login through the token flow stores an identity token; skopeo pushes and pulls with it and with --creds', { skip: skipUnless('docker', 'skopeo', 'htpasswd') || notRoot }, async (t) => {
  const g = await startIssuer(t, true);
  // The docker CLI verifies the registry with /etc/docker/certs.d/HOST:PORT/ca.crt (no daemon involved).
  const certsD = join('/etc/docker/certs.d', g.host);
  await mkdir(certsD, { recursive: true });
  t.after(() => rm(certsD, { recursive: true, force: true }));
  await copyFile(g.ca!, join(certsD, 'ca.crt'));
  const config = await workDir(t, 'docker-config');
  const env = { ...process.env, DOCKER_CONFIG: config, HOME: config };
  const login = (password: string) => run('docker', ['--config', config, 'login', '-u', USER, '--password-stdin', g.host],
    { input: `${password}\n`, env, timeoutMs: 60_000 });

  await assert.rejects(login('wrong-password'), (err: ToolError) => {
    assert.match(err.stderr, /401 Unauthorized|unauthorized/i);
    return true;
  });
  const ok = await login(PASSWORD);
  assert.match(ok.stdout, /Login Succeeded/);
  const saved = JSON.parse(await readFile(join(config, 'config.json'), 'utf8'));
  const entry = saved.auths[g.host];
  assert.ok(entry.identitytoken, 'docker stored the refresh token as its identity token');
  assert.equal(Buffer.from(entry.auth, 'base64').toString(), `${USER}:`, 'and not the password');
  const out = g.berth.output().stdout;
  assert.ok(!out.includes(PASSWORD), 'the password never appears in the log');
  assert.ok(!out.includes(entry.identitytoken), 'nor the refresh token');

  // skopeo with docker's config.json: the identity token is used with the refresh_token grant (POST)
  const sb = await sandbox(t);
  const work = await workDir(t, 'token-skopeo');
  const img = await writeOciLayout(join(work, 'src'), { layers: LAYERS });
  const ref = `docker://${g.host}/e2e/token/app:v1`;
  const authfile = join(config, 'config.json');
  const df = join(work, 'digest');
  await sb.skopeo(['copy', '--authfile', authfile, '--dest-cert-dir', g.trust!, '--digestfile', df, img.ref, ref]);
  assert.equal((await readFile(df, 'utf8')).trim(), img.manifestDigest);
  // and with --creds (GET on the realm with Basic)
  const back = join(work, 'back');
  await sb.skopeo(['copy', '--src-creds', `${USER}:${PASSWORD}`, '--src-cert-dir', g.trust!, ref, `dir:${back}`]);
  assert.ok((await readFile(join(back, 'manifest.json'))).equals(img.manifestBytes), 'the manifest comes back byte for byte');
  const lines = g.berth.output().stdout.split('\n').filter((l) => l.includes('/auth/token'));
  assert.ok(lines.some((l) => l.includes('"grant":"refresh_token"')), 'skopeo used the identity token');
  assert.ok(lines.some((l) => l.includes('"grant":"password"') && l.includes('"method":"GET"')), 'docker login and --creds used GET with Basic');
  // wrong credentials: refused at the token endpoint
  await assert.rejects(sb.skopeo(['inspect', '--creds', `${USER}:nope`, '--cert-dir', g.trust!, ref]),
    (err: ToolError) => /unauthorized|authentication required|401/i.test(err.stderr));

  // the user removed from htpasswd: the stored identity token no longer yields tokens
  await writeFile(g.htpasswd, '');
  await assert.rejects(sb.skopeo(['inspect', '--authfile', authfile, '--cert-dir', g.trust!, ref]),
    (err: ToolError) => /invalid_grant|revoked|400|unauthorized/i.test(err.stderr));
});

test('Distribution 2.8 with auth.token pointing at berth\'s issuer (berth\'s certificate as rootcertbundle) accepts berth\'s tokens', { skip: skipUnless('docker-registry', 'skopeo', 'htpasswd') }, async (t) => {
  const g = await startIssuer(t, false);
  const dist = await startDistribution({
    extraYaml: [
      'auth:',
      '  token:',
      `    realm: ${g.berth.url}/auth/token`,
      `    service: ${SERVICE}`,
      `    issuer: ${ISSUER}`,
      `    rootcertbundle: ${JSON.stringify(g.cert)}`,
    ].join('\n'),
  });
  t.after(() => dist.close());
  const sb = await sandbox(t, [dist.host]);
  const work = await workDir(t, 'token-interop');
  const img = await writeOciLayout(join(work, 'src'), { layers: LAYERS });
  const ref = `docker://${dist.host}/e2e/interop/app:v1`;
  // without credentials registry:2 sends clients to berth, which grants an anonymous client nothing
  await assert.rejects(sb.skopeo(['copy', '--dest-tls-verify=false', img.ref, ref]), (err: ToolError) => /unauthorized|authentication required|denied/i.test(err.stderr));
  const df = join(work, 'digest');
  await sb.skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, '--digestfile', df, img.ref, ref]);
  assert.equal((await readFile(df, 'utf8')).trim(), img.manifestDigest);
  const back = join(work, 'back');
  await sb.skopeo(['copy', '--src-tls-verify=false', '--src-creds', `${USER}:${PASSWORD}`, ref, `dir:${back}`]);
  assert.ok((await readFile(join(back, 'manifest.json'))).equals(img.manifestBytes));
  assert.ok(g.berth.output().stdout.includes('"grant":"password"'), 'the tokens came from berth');
});

test('podman through the token flow with access rules: login, push where the rules allow, "denied" (403) where they refuse', { skip: skipUnless('podman', 'htpasswd') }, async (t) => {
  const g = await startIssuer(t, true, [
    '  access:',
    '    rules:',
    `      - { repositories: ["team/**"], push: [${USER}] }`,
    '      - { repositories: ["other/**"], pull: ["*"] }',
  ]);
  const sb = await sandbox(t);
  const work = await workDir(t, 'token-podman');
  const img = await writeOciLayout(join(work, 'src'), { layers: [{ size: 32 * 1024, kind: 'random' }], tag: 'v1' });
  await assert.rejects(sb.podman(['login', '--cert-dir', g.trust!, '-u', USER, '--password-stdin', g.host], { input: 'wrong' }),
    (err: ToolError) => /invalid username\/password|unauthorized|401/i.test(err.stderr));
  await sb.podman(['login', '--cert-dir', g.trust!, '-u', USER, '--password-stdin', g.host], { input: PASSWORD });
  const id = (await sb.podman(['pull', '--quiet', img.ref])).stdout.trim().split('\n').pop()!;
  await sb.podman(['push', '--cert-dir', g.trust!, id, `docker://${g.host}/team/app:v1`]);
  const refused = await sb.podman(['push', '--cert-dir', g.trust!, id, `docker://${g.host}/other/app:v1`]).then(() => undefined, (e: unknown) => e);
  assert.ok(refused instanceof ToolError, 'the push to other/app is refused');
  assert.match(refused.stderr, /denied/i, refused.stderr);
  const lines = g.berth.output().stdout.split('\n');
  assert.ok(lines.some((l) => l.includes('/v2/other/app/') && l.includes('"status":403')), 'a 403 DENIED, not another challenge');
});
