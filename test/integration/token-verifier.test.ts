// berth fronting an external token server, configured by a Distribution config.yml's auth.token unchanged
// (realm, service, issuer, rootcertbundle; then jwks and autoredirect): tokens minted by an independent party
// (a test key, jose) work for a push and pull on a real listener; an expired one and one for another repository
// get Distribution's challenges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT, type JWTPayload } from 'jose';
import { generate } from 'selfsigned';
import { libtrustKeyId } from '../../src/auth/token/keys.js';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { captureLog } from '../support/tls-certs.js';
import { request } from '../support/http.js';

type T = { after(fn: () => unknown): void };
const SERVICE = 'container_registry';
const ISSUER = 'gitlab-issuer';
const REALM = 'https://gitlab.example.com/jwt/auth';

async function setup(t: T, authYaml: (files: { bundle: string; jwks: string }) => string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-token-verify-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pair = await generate([{ name: 'commonName', value: 'external token server' }], { keyType: 'ec', algorithm: 'sha256' });
  const bundle = join(dir, 'root.crt');
  const jwks = join(dir, 'jwks.json');
  const key = createPrivateKey(pair.private);
  const pub = new X509Certificate(pair.cert).publicKey;
  await writeFile(bundle, pair.cert);
  await writeFile(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(pub)), kid: 'ext-1' }] }));
  const config = loadConfigFromString([
    'version: 0.1', 'storage: { inmemory: {} }', 'http: { addr: 127.0.0.1:0, relativeurls: true }', 'auth:', '  token:',
    ...authYaml({ bundle, jwks }).map((l) => `    ${l}`), '',
  ].join('\n'), join(dir, 'config.yml'));
  const server = await startServer(config, captureLog('warn').log, { drainMs: 1000 });
  t.after(() => server.close());
  const mint = (claims: JWTPayload, header: Record<string, unknown> = { kid: libtrustKeyId(pub) }) => new SignJWT({
    iss: ISSUER, aud: SERVICE, sub: 'root', exp: Math.floor(Date.now() / 1000) + 300, ...claims,
  }).setProtectedHeader({ alg: 'ES256', ...header }).sign(key);
  return { url: server.url, mint };
}

test('config.yml auth.token with a rootcertbundle: an external token server\'s tokens push and pull; expired and out-of-scope ones are challenged', async (t) => {
  const { url, mint } = await setup(t, ({ bundle }) => [`realm: ${REALM}`, `service: ${SERVICE}`, `issuer: ${ISSUER}`, `rootcertbundle: ${bundle}`]);
  const none = await request(`${url}/v2/group/project/blobs/uploads/`, { method: 'POST' });
  assert.equal(none.status, 401);
  assert.equal(none.headers['www-authenticate'], `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:group/project:pull,push"`);
  const token = await mint({ access: [{ type: 'repository', name: 'group/project', actions: ['push', 'pull'] }] });
  const auth = { Authorization: `Bearer ${token}` };
  const blob = randomBytes(2048);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const put = await request(`${url}/v2/group/project/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: blob });
  assert.equal(put.status, 201, put.text());
  const get = await request(`${url}/v2/group/project/blobs/${digest}`, { headers: auth });
  assert.ok(get.body.equals(blob));
  const expired = await mint({ exp: Math.floor(Date.now() / 1000) - 3600, access: [{ type: 'repository', name: 'group/project', actions: ['pull'] }] });
  const e = await request(`${url}/v2/group/project/blobs/${digest}`, { headers: { Authorization: `Bearer ${expired}` } });
  assert.equal(e.status, 401);
  assert.equal(e.headers['www-authenticate'], `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:group/project:pull",error="invalid_token"`);
  const other = await request(`${url}/v2/group/other/blobs/${digest}`, { headers: auth });
  assert.equal(other.status, 401);
  assert.match(other.headers['www-authenticate']!, /scope="repository:group\/other:pull",error="insufficient_scope"$/);
});

test('config.yml auth.token with jwks and autoredirect: the kid names the jwks key; the realm is this request\'s host', async (t) => {
  const { url, mint } = await setup(t, ({ jwks }) => [`realm: ${REALM}`, `service: ${SERVICE}`, `issuer: ${ISSUER}`, `jwks: ${jwks}`, 'autoredirect: true']);
  const ch = await request(`${url}/v2/`);
  assert.equal(ch.headers['www-authenticate'], `Bearer realm="${url}/auth/token",service="${SERVICE}"`);
  const token = await mint({ access: [] }, { kid: 'ext-1' });
  assert.equal((await request(`${url}/v2/`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
  const unknownKid = await mint({ access: [] }, { kid: 'ext-2' });
  assert.equal((await request(`${url}/v2/`, { headers: { Authorization: `Bearer ${unknownKid}` } })).status, 401);
});
