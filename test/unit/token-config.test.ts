// Token auth's config: auth.token (Distribution's verifier keys) and auth.issuer (berth's token endpoint) in
// gateway.yml, defaults and absolute paths, every refusal with its key and line:col, and a Distribution config.yml's
// auth.token mapped unchanged (also from REGISTRY_AUTH_TOKEN_* variables). Pure: strings in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfigFromString } from '../../src/config/load.js';

const GW = '/srv/berth/gateway.yml';
const YML = '/etc/docker/registry/config.yml';

function problems(text: string, file = GW, env: Record<string, string> = {}): string[] {
  try {
    loadConfigFromString(text, file, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

test('auth.token: Distribution\'s keys, defaults, paths resolved against the file', () => {
  const c = loadConfigFromString([
    'auth:',
    '  token:',
    '    realm: https://auth.example.com/token',
    '    service: registry.example.com',
    '    issuer: docker_auth',
    '    rootcertbundle: certs/auth.crt',
    '    jwks: /etc/auth/jwks.json',
    '    signingalgorithms: [ES256, RS256]',
  ].join('\n'), GW);
  assert.deepEqual({ ...c.auth!.token }, {
    realm: 'https://auth.example.com/token', service: 'registry.example.com', issuer: 'docker_auth',
    rootcertbundle: '/srv/berth/certs/auth.crt', jwks: '/etc/auth/jwks.json', signingalgorithms: ['ES256', 'RS256'],
    autoredirect: false, autoredirectpath: '/auth/token',
  });
  assert.equal(c.auth!.issuer, undefined);
});

test('auth.issuer: defaults (path /auth/token, 5m tokens, 720h refresh tokens), key and certificate resolved', () => {
  const c = loadConfigFromString([
    'auth:',
    '  htpasswd: { path: htpasswd }',
    '  issuer: { service: registry.example.com, issuer: berth, certificate: token.crt }',
  ].join('\n'), GW);
  assert.deepEqual({ ...c.auth!.issuer }, {
    path: '/auth/token', realm: '', service: 'registry.example.com', issuer: 'berth',
    key: '/srv/berth/auth/token.key', certificate: '/srv/berth/token.crt', expiration: 300_000, refreshexpiration: 720 * 3600_000,
  });
});

test('refused: missing required keys, no signing key, bad algorithm or realm, incoherent issuer and verifier', () => {
  assert.deepEqual(problems('auth:\n  token: { rootcertbundle: a.crt }\n'), [
    `${GW}:2:10  auth.token.realm  missing: required with auth.token`,
    `${GW}:2:10  auth.token.service  missing: required with auth.token`,
    `${GW}:2:10  auth.token.issuer  missing: required with auth.token`,
  ]);
  assert.deepEqual(problems('auth:\n  token: { realm: "https://a/t", service: s, issuer: i }\n'), [
    `${GW}:2:10  auth.token.rootcertbundle  token auth requires at least one token signing key: rootcertbundle or jwks`,
  ]);
  const alg = problems('auth:\n  token: { realm: "https://a/t", service: s, issuer: i, jwks: j.json, signingalgorithms: [ES256, none] }\n');
  assert.equal(alg.length, 1);
  assert.match(alg[0]!, /:2:\d+  auth\.token\.signingalgorithms\.1  expected one of EdDSA, HS256, .*found string "none"/);
  assert.match(problems('auth:\n  token: { realm: /token, service: s, issuer: i, jwks: j.json }\n')[0]!,
    /auth\.token\.realm  expected an http:\/\/ or https:\/\/ URL/);
  assert.deepEqual(problems('auth:\n  issuer: { service: s, issuer: i }\n'), [
    `${GW}:2:11  auth.issuer  needs auth.htpasswd (or tls.clientcas) to know who asks for a token`,
  ]);
  assert.deepEqual(problems('auth:\n  htpasswd: {}\n  issuer: { issuer: i, path: /v2/token }\n'), [
    `${GW}:3:11  auth.issuer.service  missing: required with auth.issuer`,
    `${GW}:3:30  auth.issuer.path  expected a path outside /, /v1 and /v2, like /auth/token`,
  ]);
  assert.deepEqual(problems([
    'auth:', '  htpasswd: {}', '  issuer: { service: s, issuer: berth }',
    '  token: { realm: "https://a/t", service: other, issuer: berth, jwks: j.json }',
  ].join('\n')), [
    `${GW}:4:43  auth.token.service  must equal auth.issuer.service ("s") when both are set: /v2 takes the tokens of both`,
  ]);
  assert.match(problems('auth:\n  htpasswd: {}\n  issuer: { service: s, issuer: i, expiration: 0s }\n')[0]!, /auth\.issuer\.expiration  expected a duration above zero/);
  assert.deepEqual(problems('auth:\n  token: { realm: "https://a/t", service: s, issuer: i, jwks: "https://a/jwks.json" }\n'), [
    `${GW}:2:63  auth.token.jwks  a JWKS URL is not supported yet: give the path of a JSON Web Key Set file`,
  ]);
});

test('config.yml: auth.token is mapped as it is (keys, env overrides); jwksrefreshinterval listed; other types still refused', () => {
  const warnings: string[] = [];
  const c = loadConfigFromString([
    'version: 0.1',
    'storage: { inmemory: {} }',
    'auth:',
    '  token:',
    '    realm: https://gitlab.example.com/jwt/auth',
    '    service: container_registry',
    '    issuer: gitlab-issuer',
    '    rootcertbundle: /certs/gitlab.crt',
    '    autoredirect: false',
    '    jwksrefreshinterval: 1h',
  ].join('\n'), YML, { REGISTRY_AUTH_TOKEN_ISSUER: 'omnibus-gitlab-issuer' }, warnings);
  assert.equal(c.auth!.token!.issuer, 'omnibus-gitlab-issuer');
  assert.equal(c.auth!.token!.service, 'container_registry');
  assert.equal(c.auth!.token!.rootcertbundle, '/certs/gitlab.crt');
  assert.ok(warnings.some((w) => w.includes('auth.token.jwksrefreshinterval (the jwks file is read at start)')), warnings.join('\n'));
  // the whole section from the environment, as a registry:2 container is often configured
  const e = loadConfigFromString('version: 0.1\nstorage: { inmemory: {} }\n', YML, {
    REGISTRY_AUTH: 'token', REGISTRY_AUTH_TOKEN_REALM: 'https://auth.example.com/token', REGISTRY_AUTH_TOKEN_SERVICE: 'reg',
    REGISTRY_AUTH_TOKEN_ISSUER: 'auth', REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: '/certs/root.crt',
  });
  assert.equal(e.auth!.token!.realm, 'https://auth.example.com/token');
  assert.equal(e.auth!.token!.rootcertbundle, '/certs/root.crt');
  assert.match(problems('version: 0.1\nstorage: { inmemory: {} }\nauth:\n  silly: { realm: r, service: s }\n', YML).join('\n'),
    /auth\.silly  auth type "silly" is not supported: berth implements htpasswd and token only/);
  // Distribution's required keys, named as config.yml names them
  assert.match(problems('version: 0.1\nstorage: { inmemory: {} }\nauth:\n  token: { realm: "https://a/t", issuer: i, jwks: /j.json }\n', YML).join('\n'),
    /auth\.token\.service  missing: required with auth\.token/);
});
