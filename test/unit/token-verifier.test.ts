// The token verifier (src/auth/token/verifier.ts) against tokens minted by an independent party: a test key and
// jose's SignJWT, never berth's issuer. Trust comes from Distribution's files (a jwks file, a rootcertbundle) written
// to a temp dir. Accepted: kid from the jwks, the libtrust and RFC 7638 kids of a rootcertbundle key, an x5c
// chain to the bundle. Refused: expired, not yet valid, wrong audience, wrong issuer, bad signature, alg none,
// HS256 keyed with the public key, unknown kid, no key hint, an x5c of an untrusted certificate, a disallowed
// algorithm, no exp, and scope escalation (with the challenge Distribution sends: error="insufficient_scope").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { exportJWK, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { generate } from 'selfsigned';
import { ChallengeError, DeniedError, type Access } from '../../src/auth/access.js';
import { allowAll, type AccessPolicy } from '../../src/auth/policy.js';
import { DEFAULT_VERIFY_ALGORITHMS, jwkThumbprint, libtrustKeyId, loadTrust, TokenKeyError } from '../../src/auth/token/keys.js';
import { TokenAccessController } from '../../src/auth/token/verifier.js';
import { parseScope } from '../../src/auth/token/scope.js';
import { captureLog } from '../support/tls-certs.js';
import { makeTempDir } from '../support/tmp.js';

const SERVICE = 'registry.test';
const ISSUER = 'independent-token-server';
const REALM = 'https://auth.test/token';
const now = () => Math.floor(Date.now() / 1000);

interface Party { privateKey: KeyObject; publicKey: KeyObject; cert: string; x5c: string[] }

/** An independent token server's key: EC P-256 with a self-signed certificate (its rootcertbundle). */
async function party(cn: string): Promise<Party> {
  const p = await generate([{ name: 'commonName', value: cn }], { keyType: 'ec', algorithm: 'sha256',
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', digitalSignature: true, keyCertSign: true }] });
  const { createPrivateKey, createPublicKey } = await import('node:crypto');
  const privateKey = createPrivateKey(p.private);
  const der = new X509Certificate(p.cert).raw.toString('base64');
  return { privateKey, publicKey: createPublicKey(privateKey), cert: p.cert, x5c: [der] };
}

function req(authorization?: string): IncomingMessage {
  return { headers: authorization ? { authorization } : {}, socket: {} } as unknown as IncomingMessage;
}

const pullA: Access[] = [{ type: 'repository', name: 'team/a', actions: ['pull'] }];
const pushA: Access[] = [{ type: 'repository', name: 'team/a', actions: ['pull', 'push'] }];

function claims(extra: JWTPayload = {}): JWTPayload {
  return { iss: ISSUER, sub: 'alice', aud: SERVICE, exp: now() + 300, nbf: now() - 5, iat: now(),
    access: [{ type: 'repository', name: 'team/a', actions: ['pull'] }], ...extra };
}

async function mint(key: KeyObject, header: Record<string, unknown>, payload: JWTPayload = claims()): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', ...header }).sign(key);
}

async function setup(t: { after(fn: () => unknown): void }, policy?: AccessPolicy, logLevel = 'silent') {
  const dir = await makeTempDir('berth-token-verifier');
  t.after(() => dir.cleanup());
  const server = await party('token-server');
  const jwksParty = await party('jwks-server');
  const bundle = join(dir.path, 'root.crt');
  await writeFile(bundle, server.cert);
  const jwks = join(dir.path, 'jwks.json');
  await writeFile(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(jwksParty.publicKey)), kid: 'jwks-key-1', use: 'sig' }] }));
  const trust = await loadTrust({ rootcertbundle: bundle, jwks });
  const { log, lines } = captureLog(logLevel);
  const ac = new TokenAccessController({ realm: REALM, service: SERVICE, issuer: ISSUER, trust, algorithms: DEFAULT_VERIFY_ALGORITHMS, log, policy });
  return { ac, server, jwksParty, lines };
}

/** Asserts a 401 challenge and returns its header. */
async function challenged(p: Promise<unknown>, reason: string): Promise<string> {
  let header = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ChallengeError, `a ChallengeError, got ${String(e)}`);
    assert.equal(e.reason, reason);
    header = e.wwwAuthenticate;
    return true;
  });
  return header;
}

test('accepted: a kid from the jwks, libtrust and RFC 7638 kids of the rootcertbundle key, an x5c chain to the bundle', async (t) => {
  const { ac, server, jwksParty } = await setup(t);
  const tokens = [
    await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }),
    await mint(server.privateKey, { kid: libtrustKeyId(server.publicKey) }),
    await mint(server.privateKey, { kid: await jwkThumbprint(server.publicKey) }),
    await mint(server.privateKey, { x5c: server.x5c }),
    await mint(server.privateKey, { jwk: { ...(await exportJWK(server.publicKey)), x5c: server.x5c } }),
  ];
  for (const tok of tokens) assert.deepEqual(await ac.authorize(req(`Bearer ${tok}`), pullA), { user: 'alice' });
  // an empty access list (GET /v2/) only needs a valid token; a wildcard action covers any action
  assert.deepEqual(await ac.authorize(req(`Bearer ${tokens[0]}`), []), { user: 'alice' });
  const star = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, claims({ access: [{ type: 'repository', name: 'team/a', actions: ['*'] }] }));
  assert.deepEqual(await ac.authorize(req(`Bearer ${star}`), pushA), { user: 'alice' });
});

test('libtrust kid format: 12 groups of 4 base32 characters', async () => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.match(libtrustKeyId(publicKey), /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
});

test('no token: a Bearer challenge naming realm, service and the needed scope (Distribution\'s shape)', async (t) => {
  const { ac } = await setup(t);
  const h = await challenged(ac.authorize(req(), [...pushA, { type: 'repository', name: 'team/b', actions: ['pull'] }]), 'missing');
  assert.equal(h, `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:team/a:pull,push repository:team/b:pull"`);
  const basic = await challenged(ac.authorize(req('Basic YWxpY2U6cHc='), pullA), 'malformed');
  assert.equal(basic, `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:team/a:pull"`);
  assert.equal(await challenged(ac.authorize(req(), []), 'missing'), `Bearer realm="${REALM}",service="${SERVICE}"`);
});

test('refused with error="invalid_token": expired, not yet valid, wrong audience, wrong issuer, no exp', async (t) => {
  const { ac, jwksParty } = await setup(t);
  const bad = [
    claims({ exp: now() - 3600 }),                 // expired (well past the 60 s leeway)
    claims({ nbf: now() + 3600 }),                 // not yet valid
    claims({ aud: 'another-registry' }),
    claims({ aud: ['x', 'y'] }),
    claims({ iss: 'someone-else' }),
    claims({ exp: undefined }),
  ];
  for (const [i, c] of bad.entries()) {
    const tok = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, c);
    const h = await challenged(ac.authorize(req(`Bearer ${tok}`), pullA), 'invalid');
    assert.match(h, /,error="invalid_token"$/, `case ${i}`);
  }
  // within the leeway: accepted (Distribution: 60 s)
  const recent = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, claims({ exp: now() - 10 }));
  assert.deepEqual(await ac.authorize(req(`Bearer ${recent}`), pullA), { user: 'alice' });
  // aud as a list holding the service: accepted (Distribution 3's AudienceList)
  const listed = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, claims({ aud: ['other', SERVICE] }));
  assert.deepEqual(await ac.authorize(req(`Bearer ${listed}`), pullA), { user: 'alice' });
});

test('a client resending a refused token gets one log line per reason per 10 s (each request is still refused)', async (t) => {
  const { ac, jwksParty, lines } = await setup(t, undefined, 'info');
  const expired = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, claims({ exp: now() - 3600 }));
  const otherAudience = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, claims({ aud: 'another-registry' }));
  for (let i = 0; i < 20; i++) await challenged(ac.authorize(req(`Bearer ${expired}`), pullA), 'invalid');
  await challenged(ac.authorize(req(`Bearer ${otherAudience}`), pullA), 'invalid');
  const refused = lines.filter((l) => l.msg === 'bearer token refused');
  assert.equal(refused.length, 2, JSON.stringify(refused));
  assert.notEqual(refused[0]!.reason, refused[1]!.reason);
});

test('refused: bad signature, alg none, HS256 with the public key as secret, unknown kid, no key hint, untrusted x5c, disallowed alg', async (t) => {
  const { ac, server, jwksParty } = await setup(t);
  const stranger = await party('stranger');
  const good = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' });
  const [h, p] = good.split('.');
  const tampered = `${h}.${Buffer.from(JSON.stringify(claims({ access: [{ type: 'repository', name: '*', actions: ['*'] }] }))).toString('base64url')}.${good.split('.')[2]}`;
  const none = new UnsecuredJWT(claims()).encode();
  const hsSecret = createSecretKey(Buffer.from(server.publicKey.export({ type: 'spki', format: 'pem' })));
  const hs = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: libtrustKeyId(server.publicKey) }).sign(hsSecret);
  const cases: [string, string][] = [
    ['signed by a stranger under a trusted kid', await mint(stranger.privateKey, { kid: 'jwks-key-1' })],
    ['claims changed after signing', tampered],
    ['signature cut off', `${h}.${p}.`],
    ['alg none', none],
    ['alg none with a trusted kid', `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'jwks-key-1' })).toString('base64url')}.${p}.`],
    ['HS256 keyed with the public key', hs],
    ['unknown kid', await mint(jwksParty.privateKey, { kid: 'no-such-key' })],
    ['no kid, x5c or jwk', await mint(jwksParty.privateKey, {})],
    ['x5c of an untrusted self-signed certificate', await mint(stranger.privateKey, { x5c: stranger.x5c })],
    ['jwk without x5c and an untrusted kid', await mint(stranger.privateKey, { jwk: { ...(await exportJWK(stranger.publicKey)), kid: 'x' } })],
    ['jwk of a stranger under a trusted kid: the trusted key is used', await mint(stranger.privateKey, { jwk: { ...(await exportJWK(stranger.publicKey)), kid: 'jwks-key-1' } })],
    ['x5c of the trusted certificate, signed by a stranger', await mint(stranger.privateKey, { x5c: server.x5c })],
  ];
  for (const [what, tok] of cases) {
    const r = ac.authorize(req(`Bearer ${tok}`), pullA);
    await assert.rejects(r, (e: unknown) => e instanceof ChallengeError && ['invalid', 'malformed'].includes(e.reason), what);
  }
  // signingalgorithms: an allow-list of ES384 refuses a valid ES256 token
  const dir = await makeTempDir('berth-token-algs');
  t.after(() => dir.cleanup());
  await writeFile(join(dir.path, 'root.crt'), server.cert);
  const strict = new TokenAccessController({ realm: REALM, service: SERVICE, issuer: ISSUER, algorithms: ['ES384'],
    trust: await loadTrust({ rootcertbundle: join(dir.path, 'root.crt') }), log: captureLog('silent').log });
  await challenged(strict.authorize(req(`Bearer ${await mint(server.privateKey, { x5c: server.x5c })}`), pullA), 'invalid');
});

test('scope escalation: a token for pull on team/a does not push there, nor pull team/b, nor list the catalog', async (t) => {
  const { ac, jwksParty } = await setup(t);
  const tok = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' });
  const cases: Access[][] = [
    pushA,
    [{ type: 'repository', name: 'team/b', actions: ['pull'] }],
    [{ type: 'repository', name: 'team/ab', actions: ['pull'] }],
    [{ type: 'repository', name: 'team', actions: ['pull'] }],
    [{ type: 'repository', name: 'team/a', actions: ['delete'] }],
    [{ type: 'registry', name: 'catalog', actions: ['*'] }],
    [...pullA, { type: 'repository', name: 'other/src', actions: ['pull'] }],   // a mount's second item
  ];
  for (const access of cases) {
    const h = await challenged(ac.authorize(req(`Bearer ${tok}`), access), 'insufficient_scope');
    assert.match(h, /^Bearer realm="[^"]+",service="registry\.test",scope="[^"]+",error="insufficient_scope"$/);
  }
  // a token listing an access for another type or a class with the same name does not count as a repository grant
  const odd = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, claims({ access: [{ type: 'registry', name: 'team/a', actions: ['*'] }] }));
  await challenged(ac.authorize(req(`Bearer ${odd}`), pullA), 'insufficient_scope');
});

test('with berth\'s rules behind the tokens: an action the policy refuses is 403 DENIED, one it allows a new challenge', async (t) => {
  const readOnly: AccessPolicy = {
    ...allowAll,
    unrestricted: false,
    decide: (user, _repo, action) => ({ allowed: user !== null && action === 'pull', rule: 'rules[0] read-only' }),
  };
  const { ac, jwksParty } = await setup(t, readOnly);
  const tok = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' });
  await assert.rejects(ac.authorize(req(`Bearer ${tok}`), pushA), (e: unknown) => e instanceof DeniedError
    && e.repository === 'team/a' && e.action === 'push' && e.user === 'alice');
  await challenged(ac.authorize(req(`Bearer ${tok}`), [{ type: 'repository', name: 'team/b', actions: ['pull'] }]), 'insufficient_scope');
  const anon = await mint(jwksParty.privateKey, { kid: 'jwks-key-1' }, claims({ sub: '' }));
  await challenged(ac.authorize(req(`Bearer ${anon}`), pushA), 'insufficient_scope');
});

test('trust files: missing, not PEM, a jwks key without kid or with a private part, neither file', async (t) => {
  const dir = await makeTempDir('berth-token-trust');
  t.after(() => dir.cleanup());
  const f = (name: string) => join(dir.path, name);
  await writeFile(f('junk.crt'), 'not a certificate');
  await writeFile(f('nokid.json'), JSON.stringify({ keys: [await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)] }));
  await writeFile(f('private.json'), JSON.stringify({ keys: [{ ...(await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)), kid: 'k' }] }));
  const cases: [Parameters<typeof loadTrust>[0], RegExp][] = [
    [{ rootcertbundle: f('missing.crt') }, /missing\.crt: file not found/],
    [{ rootcertbundle: f('junk.crt') }, /at least one token signing key/],
    [{ jwks: f('nokid.json') }, /keys\[0\] has no "kid"/],
    [{ jwks: f('private.json') }, /keys\[0\] is not a public key/],
    [{}, /at least one token signing key/],
  ];
  for (const [o, re] of cases) await assert.rejects(loadTrust(o), (e: unknown) => e instanceof TokenKeyError && re.test(e.message));
});

test('scope grammar: type(class):name:actions, names with colons (host:port), malformed ones', () => {
  assert.deepEqual(parseScope('repository:team/app:pull,push'), { type: 'repository', name: 'team/app', actions: ['pull', 'push'] });
  assert.deepEqual(parseScope('repository(plugin):vieux/sshfs:pull'), { type: 'repository', class: 'plugin', name: 'vieux/sshfs', actions: ['pull'] });
  assert.deepEqual(parseScope('repository:localhost:5000/app:pull'), { type: 'repository', name: 'localhost:5000/app', actions: ['pull'] });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  for (const bad of ['repository', 'repository:app', 'repository::pull', ':app:pull', 'repository:app:', 'Repo:x:pull']) {
    assert.equal(parseScope(bad), undefined, bad);
  }
});
