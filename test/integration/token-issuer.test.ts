// berth's token issuer (auth.issuer) end to end on a real listener (startServer in-process, real sockets): /v2's
// Bearer challenge, the token endpoint's GET (Basic, anonymous) and OAuth2 POST (password and refresh_token
// grants), what the tokens hold (kid, x5c, claims; verified by jose with the certificate alone, as a Distribution
// rootcertbundle would), a push and pull with them, insufficient_scope for another repository, refresh tokens
// ending when the user is removed from htpasswd or their password changes, 403 DENIED under access rules, and a
// client certificate as the user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import * as https from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { decodeJwt, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { generate } from 'selfsigned';
import { libtrustKeyId } from '../../src/auth/token/keys.js';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { captureLog } from '../support/tls-certs.js';
import { request } from '../support/http.js';
import { withDeadline } from '../support/wait.js';

const run = promisify(execFile);

type T = { after(fn: () => unknown): void };
const USER = 'alice';
const PASSWORD = 'correct horse battery staple';
const SERVICE = 'berth.test';
const ISSUER = 'berth-token-issuer';
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const form = (o: Record<string, string | string[]>) => {
  const f = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) for (const x of [v].flat()) f.append(k, x);
  return f.toString();
};

interface Gw { server: RunningServer; url: string; dir: string; htpasswd: string; cert: string; logs: () => string }

async function gateway(t: T, extra = ''): Promise<Gw> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-token-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, `${USER}:${await bcrypt.hash(PASSWORD, 4)}\n`);
  const pair = await generate([{ name: 'commonName', value: 'berth token signer' }], { keyType: 'ec', algorithm: 'sha256' });
  await writeFile(join(dir, 'token.key'), pair.private);
  await writeFile(join(dir, 'token.crt'), pair.cert);
  const text = [
    'listen: 127.0.0.1:0',
    'registry: { storage: { inmemory: {} } }',
    'auth:',
    '  htpasswd: { realm: Test Realm, path: htpasswd, cache: false }',
    `  issuer: { service: ${SERVICE}, issuer: ${ISSUER}, key: token.key, certificate: token.crt, expiration: 60s }`,
    extra, '',
  ].join('\n');
  const config = loadConfigFromString(text, join(dir, 'gateway.yml'));
  const cap = captureLog('info');
  const server = await startServer(config, cap.log, { drainMs: 1000 });
  t.after(() => server.close());
  return { server, url: server.url, dir, htpasswd, cert: pair.cert, logs: () => JSON.stringify(cap.lines) };
}

async function getToken(g: Gw, scope: string[], auth?: string, extra = ''): Promise<{ status: number; body: any; headers: Record<string, string> }> {
  const q = [`service=${SERVICE}`, ...scope.map((s) => `scope=${encodeURIComponent(s)}`)].join('&');
  const r = await request(`${g.url}/auth/token?${q}${extra}`, { headers: auth ? { Authorization: auth } : {} });
  return { status: r.status, body: r.body.length ? r.json() : undefined, headers: r.headers };
}

test('/v2 answers a Bearer challenge naming the issuer on this listener; the token endpoint issues a JWT with kid and x5c', async (t) => {
  const g = await gateway(t);
  const base = await request(`${g.url}/v2/`);
  assert.equal(base.status, 401);
  assert.equal(base.headers['www-authenticate'], `Bearer realm="${g.url}/auth/token",service="${SERVICE}"`);
  assert.equal(base.headers['docker-distribution-api-version'], 'registry/2.0');
  const pull = await request(`${g.url}/v2/team/app/manifests/latest`);
  assert.equal(pull.headers['www-authenticate'], `Bearer realm="${g.url}/auth/token",service="${SERVICE}",scope="repository:team/app:pull"`);
  // Basic credentials are not taken on /v2 in token mode (as Distribution)
  assert.equal((await request(`${g.url}/v2/`, { headers: { Authorization: basic(USER, PASSWORD) } })).status, 401);

  const r = await getToken(g, ['repository:team/app:pull,push', 'registry:catalog:*'], basic(USER, PASSWORD));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(r.body.token, r.body.access_token);
  assert.equal(r.body.expires_in, 60);
  assert.ok(!Number.isNaN(Date.parse(r.body.issued_at)));
  assert.equal(r.body.refresh_token, undefined, 'no refresh token unless offline_token=true');
  const header = decodeProtectedHeader(r.body.token);
  assert.equal(header.alg, 'ES256');
  assert.equal(header.typ, 'JWT');
  const { X509Certificate } = await import('node:crypto');
  const cert = new X509Certificate(g.cert);
  assert.equal(header.kid, libtrustKeyId(cert.publicKey), 'kid: the libtrust fingerprint (Distribution 2.x)');
  assert.deepEqual(header.x5c, [cert.raw.toString('base64')], 'x5c: the certificate (a rootcertbundle verifier needs it)');
  // an independent verifier holding only the certificate accepts it
  const { payload } = await jwtVerify(r.body.token, await importX509(g.cert, 'ES256'), { issuer: ISSUER, audience: SERVICE });
  assert.equal(payload.sub, USER);
  assert.deepEqual(payload.access, [
    { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ]);
  assert.equal(payload.exp! - payload.iat!, 60);

  // with the token: /v2/, a monolithic blob push, the blob back, the catalog
  const auth = { Authorization: `Bearer ${r.body.token}` };
  assert.equal((await request(`${g.url}/v2/`, { headers: auth })).status, 200);
  const blob = randomBytes(1000);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const put = await request(`${g.url}/v2/team/app/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: blob });
  assert.equal(put.status, 201, put.text());
  const back = await request(`${g.url}/v2/team/app/blobs/${digest}`, { headers: auth });
  assert.equal(back.status, 200);
  assert.ok(back.body.equals(blob));
  assert.equal((await request(`${g.url}/v2/_catalog`, { headers: auth })).status, 200);
  // another repository: the Distribution answer, 401 with the scope needed and error="insufficient_scope"
  const other = await request(`${g.url}/v2/team/other/blobs/${digest}`, { headers: auth });
  assert.equal(other.status, 401);
  assert.equal(other.headers['www-authenticate'],
    `Bearer realm="${g.url}/auth/token",service="${SERVICE}",scope="repository:team/other:pull",error="insufficient_scope"`);
  // a tampered token is invalid_token
  const [h, p, s] = (r.body.token as string).split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...decodeJwt(r.body.token), access: [{ type: 'repository', name: 'team/other', actions: ['*'] }] })).toString('base64url')}.${s}`;
  const bad = await request(`${g.url}/v2/team/other/blobs/${digest}`, { headers: { Authorization: `Bearer ${forged}` } });
  assert.equal(bad.status, 401);
  assert.match(bad.headers['www-authenticate']!, /error="invalid_token"$/);
  assert.ok(p);
  assert.ok(!g.logs().includes(r.body.token), 'tokens never appear in the log');
  assert.ok(!g.logs().includes(PASSWORD), 'passwords never appear in the log');
});

test('token endpoint refusals: wrong password 401 with the Basic challenge, unknown service, malformed scope, method', async (t) => {
  const g = await gateway(t);
  const wrong = await getToken(g, ['repository:team/app:pull'], basic(USER, 'wrong'));
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers['www-authenticate'], 'Basic realm="Test Realm"');
  assert.equal(wrong.body.errors[0].code, 'UNAUTHORIZED');
  const unknown = await getToken(g, ['repository:team/app:pull'], basic('mallory', PASSWORD));
  assert.equal(unknown.status, 401);
  const svc = await request(`${g.url}/auth/token?service=elsewhere&scope=repository:a:pull`, { headers: { Authorization: basic(USER, PASSWORD) } });
  assert.equal(svc.status, 400);
  assert.equal(svc.json().errors[0].detail.error, 'invalid_request');
  const noService = await request(`${g.url}/auth/token?scope=repository:a:pull`, { headers: { Authorization: basic(USER, PASSWORD) } });
  assert.equal(noService.status, 400);
  const scope = await getToken(g, ['repository:team/app'], basic(USER, PASSWORD));
  assert.equal(scope.status, 400);
  assert.equal(scope.body.errors[0].detail.error, 'invalid_scope');
  assert.equal((await request(`${g.url}/auth/token`, { method: 'PUT', body: 'x' })).status, 405);
  // anonymous: a token, but with nothing in it (no rules: only authenticated users may do anything)
  const anon = await getToken(g, ['repository:team/app:pull']);
  assert.equal(anon.status, 200);
  assert.deepEqual(decodeJwt(anon.body.token).access, []);
  const denied = await request(`${g.url}/v2/team/app/manifests/latest`, { headers: { Authorization: `Bearer ${anon.body.token}` } });
  assert.equal(denied.status, 401);
  assert.match(denied.headers['www-authenticate']!, /error="insufficient_scope"/);
});

test('OAuth2 POST: password grant with access_type=offline gives a refresh token; refresh_token grant; both checked', async (t) => {
  const g = await gateway(t);
  const post = (body: Record<string, string | string[]>) => request(`${g.url}/auth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form(body),
  });
  const first = await post({ grant_type: 'password', username: USER, password: PASSWORD, client_id: 'containerd', service: SERVICE,
    scope: ['repository:team/app:pull', 'repository:team/lib:pull,push registry:catalog:*'], access_type: 'offline' });
  assert.equal(first.status, 200, first.text());
  const b = first.json();
  assert.ok(b.refresh_token, 'refresh token issued for access_type=offline');
  assert.deepEqual(decodeJwt(b.access_token).access, [
    { type: 'repository', name: 'team/app', actions: ['pull'] },
    { type: 'repository', name: 'team/lib', actions: ['pull', 'push'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ]);
  assert.equal(b.scope, 'repository:team/app:pull repository:team/lib:pull,push registry:catalog:*');
  // the refresh token is not an access token
  assert.equal((await request(`${g.url}/v2/`, { headers: { Authorization: `Bearer ${b.refresh_token}` } })).status, 401);
  const again = await post({ grant_type: 'refresh_token', refresh_token: b.refresh_token, client_id: 'docker', service: SERVICE, scope: 'repository:team/x:push' });
  assert.equal(again.status, 200, again.text());
  assert.equal(decodeJwt(again.json().access_token).sub, USER);
  assert.deepEqual(decodeJwt(again.json().access_token).access, [{ type: 'repository', name: 'team/x', actions: ['push'] }]);
  // GET with offline_token=true (docker login) gives one as well
  const viaGet = await getToken(g, ['repository:team/app:pull'], basic(USER, PASSWORD), '&offline_token=true&client_id=docker');
  assert.ok(viaGet.body.refresh_token);

  // refusals
  assert.equal((await post({ grant_type: 'password', username: USER, password: 'nope', client_id: 'c', service: SERVICE })).status, 401);
  const noClient = await post({ grant_type: 'password', username: USER, password: PASSWORD, service: SERVICE });
  assert.equal(noClient.status, 400);
  assert.equal((await post({ grant_type: 'client_credentials', client_id: 'c', service: SERVICE })).json().errors[0].detail.error, 'unsupported_grant_type');
  const garbage = await post({ grant_type: 'refresh_token', refresh_token: 'abc.def.ghi', client_id: 'c', service: SERVICE });
  assert.equal(garbage.status, 400);
  assert.equal(garbage.json().errors[0].detail.error, 'invalid_grant');
  // an access token is not a refresh token
  assert.equal((await post({ grant_type: 'refresh_token', refresh_token: b.access_token, client_id: 'c', service: SERVICE })).status, 400);
  const json = await request(`${g.url}/auth/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  assert.equal(json.status, 400);

  // a changed password ends the refresh token; so does removing the user
  await writeFile(g.htpasswd, `${USER}:${await bcrypt.hash('a new password', 4)}\n`);
  const changed = await post({ grant_type: 'refresh_token', refresh_token: b.refresh_token, client_id: 'docker', service: SERVICE });
  assert.equal(changed.status, 400);
  assert.match(changed.json().errors[0].message, /revoked/);
  const fresh = await post({ grant_type: 'password', username: USER, password: 'a new password', client_id: 'c', service: SERVICE, access_type: 'offline' });
  const rt = fresh.json().refresh_token;
  assert.equal((await post({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'c', service: SERVICE })).status, 200);
  await writeFile(g.htpasswd, `bob:${await bcrypt.hash('x', 4)}\n`);
  assert.equal((await post({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'c', service: SERVICE })).status, 400);
});

test('an issuer key that is RSA signs RS256; urls.prefix and an explicit realm are honoured', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-token-rsa-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await writeFile(join(dir, 'rsa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }));
  await writeFile(join(dir, 'htpasswd'), `${USER}:${await bcrypt.hash(PASSWORD, 4)}\n`);
  const config = loadConfigFromString([
    'listen: 127.0.0.1:0', 'registry: { storage: { inmemory: {} } }', 'urls: { prefix: /registry }',
    'auth:', '  htpasswd: { path: htpasswd }',
    `  issuer: { service: ${SERVICE}, issuer: ${ISSUER}, key: rsa.key, path: /token }`, '',
  ].join('\n'), join(dir, 'gateway.yml'));
  const server = await startServer(config, captureLog('warn').log, { drainMs: 1000 });
  t.after(() => server.close());
  const ch = await request(`${server.url}/registry/v2/`);
  assert.equal(ch.headers['www-authenticate'], `Bearer realm="${server.url}/registry/token",service="${SERVICE}"`);
  const r = await request(`${server.url}/registry/token?service=${SERVICE}&scope=repository:a:pull`, { headers: { Authorization: basic(USER, PASSWORD) } });
  assert.equal(r.status, 200, r.text());
  assert.equal(decodeProtectedHeader(r.json().token).alg, 'RS256');
  assert.equal(decodeProtectedHeader(r.json().token).x5c, undefined, 'no certificate configured: no x5c');
  assert.equal((await request(`${server.url}/registry/v2/`, { headers: { Authorization: `Bearer ${r.json().token}` } })).status, 200);
  assert.equal((await request(`${server.url}/token?service=${SERVICE}`)).status, 404, 'outside the prefix');
});

test('with auth.access rules: the issuer grants only what they allow; /v2 answers 403 DENIED for what they refuse', async (t) => {
  const g = await gateway(t, [
    '  access:',
    '    rules:',
    '      - { repositories: ["team/**"], pull: ["*"] }',
    `      - { repositories: ["${USER}/**"], push: [${USER}] }`,
  ].join('\n'));
  const r = await getToken(g, ['repository:team/app:pull,push', 'repository:secret/x:pull', `repository:${USER}/box:push,pull,delete`], basic(USER, PASSWORD));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(decodeJwt(r.body.token).access, [
    { type: 'repository', name: 'team/app', actions: ['pull'] },
    { type: 'repository', name: `${USER}/box`, actions: ['push', 'pull'] },
  ]);
  const auth = { Authorization: `Bearer ${r.body.token}` };
  assert.equal((await request(`${g.url}/v2/team/app/tags/list`, { headers: auth })).status, 404, 'pull allowed (nothing there yet)');
  // push on team/app: the rules refuse it, so a new token cannot help: 403 DENIED, not another challenge
  const push = await request(`${g.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: auth });
  assert.equal(push.status, 403);
  assert.equal(push.json().errors[0].code, 'DENIED');
  assert.equal(push.headers['www-authenticate'], undefined);
  const secret = await request(`${g.url}/v2/secret/x/tags/list`, { headers: auth });
  assert.equal(secret.status, 403);
  // allowed by the rules but not in this token: the challenge, so the client asks for a token that has it
  const other = await request(`${g.url}/v2/team/lib/tags/list`, { headers: auth });
  assert.equal(other.status, 401);
  assert.match(other.headers['www-authenticate']!, /scope="repository:team\/lib:pull",error="insufficient_scope"$/);
  const own = await request(`${g.url}/v2/${USER}/box/blobs/uploads/`, { method: 'POST', headers: auth });
  assert.equal(own.status, 202);
});

test('a client certificate verified against tls.clientcas is the user at the token endpoint (no htpasswd needed; no refresh token)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-token-mtls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const f = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => run('openssl', args, { timeout: 30_000 });
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.crt'),
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-days', '2', '-subj', '/CN=berth token test client CA');
  await ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('alice.key'), '-out', f('alice.csr'), '-subj', '/CN=alice');
  await ossl('x509', '-req', '-in', f('alice.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('alice.crt'), '-days', '2');
  await ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('token.key'));
  const config = loadConfigFromString([
    'listen: 127.0.0.1:0', 'registry: { storage: { inmemory: {} } }',
    'tls: { certificate: server.crt, key: server.key, clientcas: [ca.crt], clientauth: verify-client-cert-if-given }',
    `auth: { issuer: { service: ${SERVICE}, issuer: ${ISSUER}, key: token.key } }`, '',
  ].join('\n'), f('gateway.yml'));
  const server = await startServer(config, captureLog('warn').log, { drainMs: 1000 });
  t.after(() => server.close());
  const ca = await readFile(f('server.crt'), 'utf8');
  const client = { cert: await readFile(f('alice.crt'), 'utf8'), key: await readFile(f('alice.key'), 'utf8') };
  const get = (path: string, cert?: { cert: string; key: string }, headers: Record<string, string> = {}) =>
    withDeadline(new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.get(`${server.url}${path}`, { ca, servername: 'localhost', agent: false, headers, ...(cert ?? {}) }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
    }), 15_000, `GET ${path}`);
  const withCert = await get(`/auth/token?service=${SERVICE}&scope=repository:team/app:pull&offline_token=true`, client);
  assert.equal(withCert.status, 200, withCert.body);
  const body = JSON.parse(withCert.body);
  assert.equal(decodeJwt(body.token).sub, 'alice');
  assert.deepEqual(decodeJwt(body.token).access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  assert.equal(body.refresh_token, undefined, 'certificate users present the certificate each time');
  const anon = JSON.parse((await get(`/auth/token?service=${SERVICE}&scope=repository:team/app:pull`)).body);
  assert.equal(decodeJwt(anon.token).sub, '');
  assert.deepEqual(decodeJwt(anon.token).access, []);
  assert.equal((await get('/v2/team/app/tags/list', undefined, { Authorization: `Bearer ${body.token}` })).status, 404);
  assert.equal((await get('/v2/team/app/tags/list', undefined, { Authorization: `Bearer ${anon.token}` })).status, 401);
});

test('key rotation by reload (SIGHUP): new tokens use the new key; the previous key\'s tokens stay valid until the next reload; a bad file changes nothing', async (t) => {
  const g = await gateway(t);
  const keyFile = join(g.dir, 'token.key');
  const certFile = join(g.dir, 'token.crt');
  const post = (body: Record<string, string>) => request(`${g.url}/auth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form({ client_id: 'test', service: SERVICE, ...body }),
  });
  const login = async () => (await post({ grant_type: 'password', username: USER, password: PASSWORD, access_type: 'offline', scope: 'repository:a:pull' })).json();
  const ok = async (token: string) => (await request(`${g.url}/v2/`, { headers: { Authorization: `Bearer ${token}` } })).status === 200;
  const rotate = async (cn: string) => {
    const pair = await generate([{ name: 'commonName', value: cn }], { keyType: 'ec', algorithm: 'sha256' });
    await writeFile(keyFile, pair.private);
    await writeFile(certFile, pair.cert);
    await g.server.reload();
  };
  const first = await login();
  await rotate('second signer');
  const second = await login();
  assert.notEqual(decodeProtectedHeader(second.token).kid, decodeProtectedHeader(first.token).kid, 'signed with the new key');
  assert.ok(await ok(second.token));
  assert.ok(await ok(first.token), 'the previous key\'s access token is still valid');
  assert.equal((await post({ grant_type: 'refresh_token', refresh_token: first.refresh_token })).status, 200, 'and its refresh token');
  // a key file that cannot be loaded: logged, nothing changes
  await writeFile(keyFile, 'not a key');
  await g.server.reload();
  assert.ok(g.logs().includes('token keys not reloaded'));
  assert.ok(await ok(second.token));
  assert.equal(decodeProtectedHeader((await login()).token).kid, decodeProtectedHeader(second.token).kid);
  await rotate('third signer');
  assert.equal(await ok(first.token), false, 'two rotations later the first key is gone');
  assert.equal((await post({ grant_type: 'refresh_token', refresh_token: first.refresh_token })).status, 400);
  assert.ok(await ok(second.token));
});

test('check-config (preflight): an unreadable or unusable issuer key, a certificate of another key, a bad rootcertbundle are named by key', async (t) => {
  const { preflight } = await import('../../src/cli/preflight.js');
  const { formatProblems } = await import('../../src/config/config-error.js');
  const dir = await mkdtemp(join(tmpdir(), 'berth-token-preflight-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'htpasswd'), `${USER}:${await bcrypt.hash(PASSWORD, 4)}\n`);
  const a = await generate([{ name: 'commonName', value: 'a' }], { keyType: 'ec', algorithm: 'sha256' });
  const b = await generate([{ name: 'commonName', value: 'b' }], { keyType: 'ec', algorithm: 'sha256' });
  await writeFile(join(dir, 'a.key'), a.private);
  await writeFile(join(dir, 'b.crt'), b.cert);
  await writeFile(join(dir, 'junk.pem'), 'junk');
  const { privateKey: small } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  await writeFile(join(dir, 'small.key'), small.export({ type: 'pkcs8', format: 'pem' }));
  const check = async (issuerYaml: string, tokenYaml = '') => {
    const file = join(dir, 'gateway.yml');
    const config = loadConfigFromString(['auth:', '  htpasswd: { path: htpasswd }', `  issuer: { service: s, issuer: i, ${issuerYaml} }`, tokenYaml, ''].join('\n'), file);
    return formatProblems(file, (await preflight(config)).problems).replaceAll(`${dir}/`, '');
  };
  assert.equal(await check('key: missing.key'), 'gateway.yml:3:41  auth.issuer.key  missing.key: file not found');
  assert.equal(await check('key: junk.pem'), 'gateway.yml:3:41  auth.issuer.key  junk.pem: not a PEM private key');
  assert.equal(await check('key: small.key'), 'gateway.yml:3:41  auth.issuer.key  small.key: RSA key of 1024 bits: at least 2048 are needed');
  assert.equal(await check('key: a.key, certificate: b.crt'), 'gateway.yml:3:61  auth.issuer.certificate  b.crt: the first certificate does not hold the public half of a.key');
  assert.equal(await check('key: a.key', '  token: { realm: "https://x/t", service: s, issuer: i, rootcertbundle: junk.pem, signingalgorithms: [RS256] }'),
    ['gateway.yml:3:41  auth.issuer.key  a.key: signs ES256, which auth.token.signingalgorithms does not allow',
      'gateway.yml:4:73  auth.token.rootcertbundle  token auth requires at least one token signing key (rootcertbundle or jwks)'].join('\n'));
  assert.equal(await check('key: a.key'), '');
});
