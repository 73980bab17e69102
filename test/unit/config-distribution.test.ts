// Distribution config.yml support: detection by `version`, the mapping table (honoured keys land on
// berth's, ignored ones are listed in one warning, refused ones are errors at their line:col),
// Distribution's section semantics, and REGISTRY_* overrides in both config styles. Pure: strings in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigFromString } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/config-error.js';
import { DISTRIBUTION_CONFIG, type DType } from '../../src/config/distribution-schema.js';
import { RULES } from '../../src/config/distribution.js';
import { DISTRIBUTION_CONFIG_EXAMPLE } from '../support/distribution-sample.js';

const FILE = '/etc/distribution/config.yml';
type Env = Record<string, string>;

function load(text: string, env: Env = {}) {
  const warnings: string[] = [];
  const config = loadConfigFromString(text, FILE, env, warnings);
  return { config, warnings };
}

function problems(text: string, env: Env = {}): string[] {
  try {
    loadConfigFromString(text, FILE, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

/** The ignored keys of the one warning line, as [path, reason] (origin kept in the path). */
function ignoredOf(warnings: string[]): [string, string][] {
  const line = warnings.find((w) => w.startsWith(`${FILE}: ignoring `));
  if (!line) return [];
  const list = line.slice(line.indexOf('honour: ') + 'honour: '.length);
  return list.split('; ').map((item) => {
    const m = /^(.*?) \((.*)\)$/.exec(item)!;
    return [m[1]!, m[2]!];
  });
}

const EXAMPLE = DISTRIBUTION_CONFIG_EXAMPLE;   // test/support/distribution-sample.ts

test("Distribution's config-example.yml maps onto berth's keys; storage.tag is listed", () => {
  const { config: c, warnings } = load(EXAMPLE);
  assert.equal(c.source, FILE);
  assert.deepEqual(c.listen, { host: '::', port: 5000 });   // ":5000": both families, as Go listens
  assert.equal(c.tls, undefined);
  assert.deepEqual(c.headers, { 'X-Content-Type-Options': ['nosniff'] });
  assert.deepEqual(c.auth, { htpasswd: { realm: 'basic-realm', path: '/etc/registry', cache: true } });
  assert.equal(c.registry.storage.driver, 'filesystem');
  assert.equal(c.registry.storage.parameters.rootdirectory, '/var/lib/registry');
  assert.deepEqual(c.registry.storage.cache, { blobdescriptor: 'inmemory', blobdescriptorsize: 10000 });
  assert.deepEqual(c.registry.health?.storagedriver, { enabled: true, interval: 10_000, threshold: 3 });
  assert.deepEqual(c.upstreams, { v2: 'embedded', v1auth: 'strip' });   // gateway-only keys: berth's defaults
  assert.equal(c.log.level, 'info');
  assert.deepEqual(warnings, [
    `${FILE}: ignoring 1 Distribution setting berth does not honour: storage.tag (the tag lookup concurrency is not configurable)`,
  ]);
});

test('detection: a top-level version key makes a config.yml; without it the file is gateway.yml', () => {
  assert.deepEqual(problems('http: { addr: ":5000" }\n'), [
    `${FILE}:1:1  http  unknown key, expected one of: listen, tls, auth, headers, upstreams, clients, urls, proxy, registry, log`,
  ]);
  assert.deepEqual(problems('version: 0.1\nlisten: 127.0.0.1:5000\n'), [
    `${FILE}:2:1  listen  unknown key, expected one of: version, log, loglevel, storage, auth, middleware, reporting, http, notifications, redis, health, catalog, proxy, berth, compatibility, validation, policy`,
  ]);
  assert.equal(load('version: "0.1"\n').config.listen.port, 5000);
});

test('version: only 0.1, at its position', () => {
  for (const [v, found] of [['0.2', 'number 0.2'], ['"1.0"', 'string "1.0"'], ['', 'nothing'], ['[0.1]', 'a list']]) {
    assert.deepEqual(problems(`version: ${v}\nstorage: { azure: {} }\n`), [
      `${FILE}:1:${v === '' ? 1 : 10}  version  expected 0.1 (the only Distribution config.yml version), found ${found}`,
    ], v);
  }
});

// Distribution key → where berth puts it (one row per honoured key).
const HONOURED: [name: string, yaml: string, check: (c: ReturnType<typeof load>['config']) => unknown, want: unknown][] = [
  ['http.addr', 'http: { addr: "127.0.0.1:5001" }', (c) => c.listen, { host: '127.0.0.1', port: 5001 }],
  ['http.net tcp', 'http: { addr: ":5001", net: tcp }', (c) => c.listen, { host: '::', port: 5001 }],
  ['http.tls', 'http: { tls: { certificate: c.pem, key: k.pem, minimumtls: tls1.3, clientcas: [] } }', (c) => c.tls,
    { certificate: '/etc/distribution/c.pem', key: '/etc/distribution/k.pem', minimumtls: 'tls1.3', ciphersuites: [], clientcas: [], clientauth: 'none' }],
  ['http.headers', 'http: { headers: { X-Frame-Options: [DENY], X-Two: [a, b] } }', (c) => c.headers, { 'X-Frame-Options': ['DENY'], 'X-Two': ['a', 'b'] }],
  ['http.debug (prometheus off unless enabled)', 'http: { debug: { addr: "localhost:5001" } }', (c) => c.registry.http?.debug,
    { addr: { host: 'localhost', port: 5001 }, prometheus: { enabled: false, path: '/metrics' } }],
  ['http.debug.prometheus', 'http: { debug: { addr: ":5001", prometheus: { enabled: true, path: /m } } }', (c) => c.registry.http?.debug?.prometheus, { enabled: true, path: '/m' }],
  ['http.http2.disabled: true', 'http: { http2: { disabled: true } }', (c) => c.listen.port, 5000],
  ['auth.htpasswd', 'auth: { htpasswd: { realm: R, path: /etc/htpasswd } }', (c) => c.auth, { htpasswd: { realm: 'R', path: '/etc/htpasswd', cache: true } }],
  ['auth: {} (none)', 'auth: {}', (c) => c.auth, {}],
  ['log.level (lower-cased, as Distribution)', 'log: { level: DEBUG }', (c) => c.log.level, 'debug'],
  ['loglevel (deprecated)', 'loglevel: warn', (c) => c.log.level, 'warn'],
  ['storage.inmemory without parameters', 'storage:\n  inmemory:\n', (c) => [c.registry.storage.driver, c.registry.storage.parameters], ['inmemory', {}]],
  ['storage as a bare name', 'storage: inmemory', (c) => c.registry.storage.driver, 'inmemory'],
  ['storage.delete, maintenance, redirect', 'storage: { filesystem: { rootdirectory: /d }, delete: { enabled: true }, redirect: { disable: true }, maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: true } } }',
    (c) => [c.registry.storage.delete.enabled, c.registry.storage.redirect.disable, c.registry.storage.maintenance.uploadpurging.enabled, c.registry.storage.maintenance.readonly.enabled], [true, true, false, true]],
  ['redis (v2 keys)', 'redis: { addr: "r:6380", password: p, db: 3, dialtimeout: 2s }', (c) => [c.registry.redis?.addr, c.registry.redis?.password, c.registry.redis?.db, c.registry.redis?.dialtimeout], [{ host: 'r', port: 6380 }, 'p', 3, 2000]],
  ['redis.addrs (v3) with one address', 'redis: { addrs: ["r:6381"] }', (c) => c.registry.redis?.addr, { host: 'r', port: 6381 }],
  ['redis.tls.enabled: false', 'redis: { addr: "r:1", tls: { enabled: false } }', (c) => c.registry.redis?.addr.port, 1],
  ['notifications', 'notifications: { events: { includereferences: true }, endpoints: [ { name: a, url: "http://l/e", headers: { X-A: [b] }, timeout: 2s, ignore: { actions: [pull] } } ] }',
    (c) => [c.registry.notifications?.events.includereferences, c.registry.notifications?.endpoints[0]?.headers, c.registry.notifications?.endpoints[0]?.timeout, c.registry.notifications?.endpoints[0]?.ignore.actions], [true, { 'X-A': ['b'] }, 2000, ['pull']]],
  ['health', 'health: { file: [ { file: /m, interval: 5s } ], tcp: [ { addr: "r:6379" } ] }', (c) => [c.registry.health?.file, c.registry.health?.tcp[0]?.addr], [[{ file: '/m', interval: 5000 }], { host: 'r', port: 6379 }]],
  ['proxy without remoteurl', 'proxy: {}', (c) => c.upstreams.v2, 'embedded'],
];

for (const [name, yaml, check, want] of HONOURED) {
  test(`honoured: ${name}`, () => {
    const { config, warnings } = load(`version: 0.1\n${yaml}\n`);
    assert.deepEqual(check(config), want);
    assert.deepEqual(warnings, []);
  });
}

test('ignored: every key berth does not honour is listed once, in file order, with its reason; nothing else changes', () => {
  const { config, warnings } = load(`version: 0.1
log:
  level: info
  formatter: text
  fields: { service: registry }
  hooks: [ { type: mail } ]
  accesslog: { disabled: true }
  reportcaller: true
loglevel: debug
storage:
  filesystem: { rootdirectory: /d }
  tag: { concurrencylimit: 8 }
middleware: { storage: [ { name: cloudfront } ] }
reporting: { bugsnag: { apikey: k } }
http:
  addr: ":5000"
  net: tcp6
  host: https://registry.example
  prefix: /r/
  secret: s3cret
  relativeurls: true
  draintimeout: 60s
  tls: { certificate: /c, key: /k, minimumtls: tls1.1, ciphersuites: [TLS_AES_128_GCM_SHA256], clientauth: request-client-cert, letsencrypt: { cachefile: /le } }
  http2: { disabled: false }
  h2c: { enabled: true }
redis:
  addr: "r:6379"
  pool: { maxidle: 16 }
  poolsize: 64
health:
  file: [ { file: /m, threshold: 3 } ]
catalog: { maxentries: 100 }
proxy: { username: u, ttl: 1h }
compatibility: { schema1: { enabled: true } }
validation: { manifests: { urls: { allow: ["^https://"] } } }
policy: { repository: { classes: [image] } }
`);
  assert.equal(config.tls?.minimumtls, 'tls1.2');
  assert.deepEqual([config.log.formatter, config.log.fields, config.log.accesslog, config.proxy.draintimeout],
    ['text', { service: 'registry' }, { disabled: true }, 60_000]);
  assert.deepEqual(config.urls, { host: 'https://registry.example', prefix: '/r/', relative: true });
  assert.deepEqual([config.tls?.ciphersuites, config.tls?.clientauth], [['TLS_AES_128_GCM_SHA256'], 'request-client-cert']);
  assert.equal(config.registry.redis?.pool.maxidle, 16);
  assert.deepEqual(config.registry.health?.file, [{ file: '/m', interval: 10_000 }]);
  assert.deepEqual(ignoredOf(warnings), [
    ['loglevel', 'log.level takes precedence (as in Distribution)'],
    ['http.tls.letsencrypt', 'unused: http.tls.certificate is set (as in Distribution)'],
    ['log.hooks', 'log hooks are not supported'],
    ['log.reportcaller', 'not supported'],
    ['storage.tag', 'the tag lookup concurrency is not configurable'],
    ['middleware', 'middleware is not supported'],
    ['reporting', 'error reporting (bugsnag, newrelic) is not supported'],
    ['http.net', 'berth listens on the address family of http.addr'],
    ['http.secret', 'upload state is kept on the server, not signed into client state'],
    ['http.tls.minimumtls', "tls1.1 is below berth's minimum: using tls1.2"],
    ['http.http2', 'berth serves HTTP/1.1 only'],
    ['http.h2c', 'berth serves HTTP/1.1 only'],
    ['redis.pool', 'accepted, but berth uses one pipelined redis connection'],
    ['redis.poolsize', 'berth uses one pipelined redis connection'],
    ['health.file.0.threshold', 'Distribution ignores it too: a file check fails at once'],
    ['catalog', 'berth returns at most 1000 catalog entries per page'],
    ['proxy.username', 'unused without proxy.remoteurl'],
    ['proxy.ttl', 'unused without proxy.remoteurl'],
    ['compatibility', 'schema1 manifests are not supported'],
    ['validation', 'berth does not check layer URLs or index platforms of pushed manifests'],
    ['policy', 'repository classes are not enforced'],
  ]);
  assert.equal(warnings.length, 1, 'one line');
});

test('refused: security-relevant keys berth cannot honour are errors at their line:col, all at once', () => {
  assert.deepEqual(problems(`version: 0.1
storage:
  azure: { bucket: b }
auth:
  silly: { realm: https://auth }
http:
  net: unix
  tls:
    certificate: /c
    key: /k
    clientcas: [/ca.pem]
    clientauth: verify-all
redis:
  addrs: ["a:1", "b:2"]
  tls: { enabled: true }
proxy:
  remoteurl: https://registry-1.docker.io
`), [
    `${FILE}:3:3  storage.azure  storage driver "azure" is not supported yet (berth has filesystem, inmemory and s3)`,
    `${FILE}:5:3  auth.silly  auth type "silly" is not supported: berth implements htpasswd and token only, and refuses to start rather than serve without the access control this config asks for`,
    `${FILE}:7:3  http.net  unix sockets are not supported yet`,
    `${FILE}:12:17  http.tls.clientauth  expected one of none, request-client-cert, require-any-client-cert, verify-client-cert-if-given, require-and-verify-client-cert, found string "verify-all"`,
    `${FILE}:14:3  redis.addrs  several redis addresses (cluster, sentinel) are not supported yet: give one in redis.addr`,
    `${FILE}:15:3  redis.tls  redis over TLS is not supported yet`,
    `${FILE}:17:3  proxy.remoteurl  pull-through cache (proxy.remoteurl) is not supported yet: berth would serve as an ordinary push registry instead`,
  ]);
  for (const [yaml, want] of [
    ['storage: { azure: {} }', `${FILE}:2:12  storage.azure  storage driver "azure" is not supported yet (berth has filesystem, inmemory and s3)`],
    ['storage: { nosuch: {} }', `${FILE}:2:12  storage.nosuch  unknown storage driver "nosuch" (berth has filesystem, inmemory and s3)`],
    ['auth: silly', `${FILE}:2:7  auth.silly  auth type "silly" is not supported: berth implements htpasswd and token only, and refuses to start rather than serve without the access control this config asks for`],
    ['http: { tls: { letsencrypt: { cachefile: /le, email: a@b } } }', `${FILE}:2:16  http.tls.letsencrypt  Let's Encrypt is not supported: give http.tls.certificate and http.tls.key`],
    ['http: { tls: { certificate: /c } }', `${FILE}:2:16  http.tls.key  missing: required with http.tls.certificate`],
    ['http: { net: udp }', `${FILE}:2:9  http.net  unknown network "udp", expected tcp`],
  ] as const) {
    assert.deepEqual(problems(`version: 0.1\n${yaml}\n`), [want], yaml);
  }
});

test("berth's validation runs on the mapped keys: errors name the Distribution key at the file's line:col", () => {
  assert.deepEqual(problems(`version: 0.1
storage:
  filesystem:
    rootdirectory: /d
    maxthreads: 5
  delete: { enabled: yes }
http:
  addr: 5000
  tls: { certificate: /c, key: /k, minimumtls: tls9 }
  headers: { Content-Length: ["1"] }
  debug: { addr: nope }
notifications:
  endpoints:
    - name: a
      url: ftp://x
redis: { addrs: [nope] }
log: { level: loud }
`), [
    `${FILE}:5:17  storage.filesystem.maxthreads  expected an integer ≥ 25, found number 5`,
    `${FILE}:6:22  storage.delete.enabled  expected true or false, found string "yes"`,
    `${FILE}:8:9  http.addr  expected a string "host:port", found number 5000`,
    `${FILE}:9:48  http.tls.minimumtls  expected one of tls1.2, tls1.3, found string "tls9"`,
    `${FILE}:10:14  http.headers.Content-Length  "Content-Length" is set by berth itself and cannot be configured`,
    `${FILE}:11:18  http.debug.addr  expected host:port like 127.0.0.1:5000, [::1]:5000 or :5000, found "nope" (missing :port)`,
    `${FILE}:15:12  notifications.endpoints.0.url  expected an http:// or https:// URL, found string "ftp://x"`,
    `${FILE}:16:18  redis.addrs.0  expected host:port like 127.0.0.1:5000, [::1]:5000 or :5000, found "nope" (missing :port)`,
    `${FILE}:17:15  log.level  expected one of trace, debug, info, warn, error, fatal, silent, found string "loud"`,
  ]);
});

test('section semantics: TLS only with a certificate, the debug listener only with an addr (as Distribution)', () => {
  const plain = load('version: 0.1\nhttp:\n  tls:\n    key: /k\n    minimumtls: tls1.3\n  debug:\n    prometheus: { enabled: true }\n');
  assert.equal(plain.config.tls, undefined);
  assert.equal(plain.config.registry.http?.debug, undefined);
  assert.deepEqual(ignoredOf(plain.warnings), [
    ['http.tls.key', 'unused without http.tls.certificate: plain HTTP, as in Distribution'],
    ['http.tls.minimumtls', 'unused without http.tls.certificate: plain HTTP, as in Distribution'],
    ['http.debug', 'unused without http.debug.addr: no debug listener, as in Distribution'],
  ]);
  for (const yaml of ['http: { tls: }', 'http: { tls: {} }', 'http: { debug: }']) {
    const r = load(`version: 0.1\n${yaml}\n`);
    assert.equal(r.config.tls, undefined, yaml);
    assert.equal(r.config.registry.http?.debug, undefined, yaml);
    assert.deepEqual(r.warnings, [], yaml);
  }
});

test("env, config.yml style: applied to the file as Distribution's parser does, before mapping", () => {
  const { config: c, warnings } = load(`version: 0.1
storage:
  filesystem: { rootdirectory: /var/lib/registry, maxthreads: 50 }
  delete: { enabled: false }
http:
  addr: :5000
  headers: { X-Content-Type-Options: [nosniff] }
notifications:
  endpoints:
    - { name: a, url: "http://a/e" }
`, {
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/srv/registry',
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_HTTP_ADDR: '127.0.0.1:6000',
    REGISTRY_HTTP_TLS_CERTIFICATE: '/certs/domain.crt',
    REGISTRY_HTTP_TLS_KEY: '/certs/domain.key',
    REGISTRY_AUTH: 'htpasswd',
    REGISTRY_AUTH_HTPASSWD_PATH: '/auth/htpasswd',
    REGISTRY_AUTH_HTPASSWD_REALM: 'Registry Realm',
    'REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS': '[DENY]',
    'REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS': '[nosniff, again]',   // an existing key, matched case-insensitively
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '3s',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME: 'b',                          // the next index appends
    REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL: 'http://b/e',
    REGISTRY_NOTIFICATIONS_EVENTCONFIG_INCLUDEREFERENCES: 'true',          // Distribution's Go field name
    REGISTRY_LOG_LEVEL: 'warn',
    REGISTRY_HTTP_SECRET: 'x',
    REGISTRY_PORT: 'tcp://10.0.0.1:5000',
  });
  assert.deepEqual(c.registry.storage.parameters, { rootdirectory: '/srv/registry', maxthreads: 50, directio: true });
  assert.equal(c.registry.storage.delete.enabled, true);
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 6000 });
  assert.deepEqual(c.tls, { certificate: '/certs/domain.crt', key: '/certs/domain.key', minimumtls: 'tls1.2', ciphersuites: [], clientcas: [], clientauth: 'none' });
  assert.deepEqual(c.auth, { htpasswd: { path: '/auth/htpasswd', realm: 'Registry Realm', cache: true } });
  assert.deepEqual(c.headers, { 'X-Content-Type-Options': ['nosniff', 'again'], 'x-frame-options': ['DENY'] });
  assert.deepEqual(c.registry.notifications?.endpoints.map((e) => [e.name, e.url, e.timeout]), [['a', 'http://a/e', 3000], ['b', 'http://b/e', 1000]]);
  assert.equal(c.registry.notifications?.events.includereferences, true);
  assert.equal(c.log.level, 'warn');
  assert.deepEqual(warnings, [
    `${FILE}: ignoring 1 Distribution setting berth does not honour: http.secret [env REGISTRY_HTTP_SECRET] (upload state is kept on the server, not signed into client state)`,
    'ignoring environment variable REGISTRY_PORT: no such Distribution config key',
  ]);
});

test('env, config.yml style: a section variable replaces the section; longer names apply after it', () => {
  const text = 'version: 0.1\nstorage:\n  inmemory:\n  delete: { enabled: true }\n';
  const c = load(text, { REGISTRY_STORAGE: 'filesystem', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/srv' }).config;
  assert.deepEqual([c.registry.storage.driver, c.registry.storage.parameters.rootdirectory, c.registry.storage.delete.enabled], ['filesystem', '/srv', false]);
  // `storage: filesystem` (a bare name) in the file, then a parameter from the environment.
  const d = load('version: 0.1\nstorage: filesystem\n', { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/x' }).config;
  assert.equal(d.registry.storage.parameters.rootdirectory, '/x');
  // BERTH_LOG_LEVEL wins over both.
  assert.equal(load('version: 0.1\nlog: { level: info }\n', { REGISTRY_LOG_LEVEL: 'warn', BERTH_LOG_LEVEL: 'error' }).config.log.level, 'error');
});

test('env, config.yml style: refused and invalid values name the variable', () => {
  assert.deepEqual(problems('version: 0.1\nnotifications: { endpoints: [] }\n', {
    REGISTRY_AUTH_SILLY_REALM: 'https://auth',
    REGISTRY_HTTP_ADDR: 'nope',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME: 'x',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_X_NAME: 'x',
    REGISTRY_STORAGE_AZURE_BUCKET: 'b',
  }), [
    'env REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME  notifications.endpoints.1  undefined index 1: the list has 0 items (append at 0)',
    'env REGISTRY_NOTIFICATIONS_ENDPOINTS_X_NAME  notifications.endpoints.X  non-numeric list index "X"',
    // refusals come from the mapping, in document order (variables append keys in name order)
    'env REGISTRY_AUTH_SILLY_REALM  auth.silly  auth type "silly" is not supported: berth implements htpasswd and token only, and refuses to start rather than serve without the access control this config asks for',
    'env REGISTRY_STORAGE_AZURE_BUCKET  storage.azure  storage driver "azure" is not supported yet (berth has filesystem, inmemory and s3)',
    'env REGISTRY_HTTP_ADDR  http.addr  expected host:port like 127.0.0.1:5000, [::1]:5000 or :5000, found "nope" (missing :port)',
  ]);
  assert.deepEqual(load('version: 0.1\n', { REGISTRY_VERSION: '0.2' }).warnings, ['ignoring environment variable REGISTRY_VERSION: the version cannot be overridden']);
});

test('env, gateway.yml style: gateway-level Distribution keys land on berth keys; the rest under registry:', () => {
  const gw = '/srv/berth/gateway.yml';
  const warnings: string[] = [];
  const c = loadConfigFromString('listen: 127.0.0.1:5000\ntls: { minimumtls: tls1.3 }\nheaders: { X-Frame-Options: SAMEORIGIN }\nregistry: { storage: { inmemory: {} } }\n', gw, {
    REGISTRY_HTTP_ADDR: '127.0.0.1:6000',
    REGISTRY_HTTP_TLS_CERTIFICATE: '/certs/domain.crt',
    REGISTRY_HTTP_TLS_KEY: '/certs/domain.key',
    REGISTRY_AUTH: 'htpasswd',
    REGISTRY_AUTH_HTPASSWD_PATH: '/auth/htpasswd',
    REGISTRY_AUTH_HTPASSWD_REALM: 'Env Realm',
    'REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS': '[nosniff]',
    'REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS': 'DENY',
    REGISTRY_HTTP_DEBUG_ADDR: '127.0.0.1:0',
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'n',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://n/e',
    REGISTRY_NOTIFICATIONS_JOURNALDIRECTORY: 'journal',
    REGISTRY_LOG_LEVEL: 'debug',
    REGISTRY_HTTP_SECRET: 'x',
    REGISTRY_STORAGE_TAG_CONCURRENCYLIMIT: '4',
  }, warnings);
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 6000 });
  assert.deepEqual(c.tls, { certificate: '/certs/domain.crt', key: '/certs/domain.key', minimumtls: 'tls1.3', ciphersuites: [], clientcas: [], clientauth: 'none' });
  assert.deepEqual(c.auth, { htpasswd: { path: '/auth/htpasswd', realm: 'Env Realm', cache: true } });
  assert.deepEqual(c.headers, { 'X-Frame-Options': ['DENY'], 'x-content-type-options': ['nosniff'] });
  assert.deepEqual(c.registry.http?.debug?.addr, { host: '127.0.0.1', port: 0 });
  assert.equal(c.registry.storage.delete.enabled, true);
  assert.deepEqual(c.registry.notifications?.endpoints.map((e) => [e.name, e.url]), [['n', 'http://n/e']]);
  assert.equal(c.registry.notifications?.journaldirectory, '/srv/berth/journal');
  assert.equal(c.log.level, 'debug');
  assert.deepEqual(warnings, [
    `${gw}: ignoring 2 Distribution settings berth does not honour: http.secret [env REGISTRY_HTTP_SECRET] (upload state is kept on the server, not signed into client state); storage.tag [env REGISTRY_STORAGE_TAG_CONCURRENCYLIMIT] (the tag lookup concurrency is not configurable)`,
  ]);
});

test('env, gateway.yml style: a section variable replaces what it covers; refused keys are errors; TLS floor', () => {
  const gw = '/srv/berth/gateway.yml';
  const base = 'registry: { storage: { filesystem: { rootdirectory: /d }, delete: { enabled: true } } }\nauth: { htpasswd: { realm: File } }\n';
  const c = loadConfigFromString(base, gw, { REGISTRY_STORAGE: 'inmemory', REGISTRY_AUTH: 'htpasswd' });
  assert.deepEqual([c.registry.storage.driver, c.registry.storage.delete.enabled], ['inmemory', false]);
  assert.deepEqual(c.auth, { htpasswd: { realm: 'Registry Realm', path: '/srv/berth/auth/htpasswd', cache: true } });
  const warnings: string[] = [];
  assert.equal(loadConfigFromString('tls: {}\n', gw, { REGISTRY_HTTP_TLS_MINIMUMTLS: 'tls1.0' }, warnings).tls?.minimumtls, 'tls1.2');
  assert.deepEqual(warnings, [`${gw}: ignoring 1 Distribution setting berth does not honour: http.tls.minimumtls [env REGISTRY_HTTP_TLS_MINIMUMTLS] (tls1.0 is below berth's minimum: using tls1.2)`]);
  try {
    loadConfigFromString('', gw, { REGISTRY_AUTH: 'silly', REGISTRY_HTTP_NET: 'unix', REGISTRY_PROXY_REMOTEURL: 'https://r', REGISTRY_STORAGE: 'azure' });
    assert.fail('no error');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.message.split('\n'), [
      'env REGISTRY_AUTH  auth.silly  auth type "silly" is not supported: berth implements htpasswd and token only, and refuses to start rather than serve without the access control this config asks for',
      'env REGISTRY_HTTP_NET  http.net  unix sockets are not supported yet',
      'env REGISTRY_PROXY_REMOTEURL  proxy.remoteurl  pull-through cache (proxy.remoteurl) is not supported yet: berth would serve as an ordinary push registry instead',
      'env REGISTRY_STORAGE  storage.azure  storage driver "azure" is not supported yet (berth has filesystem, inmemory and s3)',
    ]);
  }
});

test('headers: names and values Node would refuse, and headers berth sets itself, are errors', () => {
  const gw = '/srv/berth/gateway.yml';
  try {
    loadConfigFromString('headers:\n  "Bad Name": [x]\n  X-Ok: ["a\\nb"]\n  docker-content-digest: [x]\n  X-Num: [1]\n', gw);
    assert.fail('no error');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.message.split('\n'), [
      `${gw}:2:3  headers.Bad Name  invalid header name "Bad Name"`,
      `${gw}:3:3  headers.X-Ok  invalid header value "a\\nb" (control characters)`,
      `${gw}:4:3  headers.docker-content-digest  "docker-content-digest" is set by berth itself and cannot be configured`,
      `${gw}:5:3  headers.X-Num  expected a string or a list of strings`,
    ]);
  }
});

test('the rules cover every key of Distribution\'s config sections, and name only keys it has', () => {
  const paths: string[] = [];
  const walk = (t: DType, p: string[]) => {
    if (t.t === 'struct') for (const [k, f] of Object.entries(t.fields)) { paths.push([...p, k].join('.')); walk(f.type, [...p, k]); }
    if (t.t === 'list') walk(t.item, [...p, '*']);
  };
  walk(DISTRIBUTION_CONFIG, []);
  const known = new Set(paths);
  for (const pattern of Object.keys(RULES)) {
    if (pattern === '' || pattern.startsWith('storage.') || pattern.startsWith('auth.')) continue;   // map keys
    if (pattern === 'berth' || pattern.startsWith('berth.')) continue;   // berth's extension section (registry:2 ignores it)
    assert.ok(known.has(pattern), `rule for ${pattern}, which Distribution does not have`);
  }
  // Children of sections (mappings berth does not move wholesale) each need a rule of their own.
  for (const section of ['', 'log', 'http']) {
    const t = section === '' ? DISTRIBUTION_CONFIG
      : section.split('.').reduce((x: DType, k) => (x as DType & { t: 'struct' }).fields[k]!.type, DISTRIBUTION_CONFIG);
    for (const k of Object.keys((t as DType & { t: 'struct' }).fields)) {
      const p = section ? `${section}.${k}` : k;
      assert.ok(RULES[p], `no rule for ${p}`);
    }
  }
});
