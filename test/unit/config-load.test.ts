// Config loading: every error message with its position, all problems at once, defaults, paths,
// durations, environment overrides and the frozen result. Pure: strings in, Config or ConfigError out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadConfigFromString } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/config-error.js';
import { parseDuration, parseHostPort } from '../../src/config/values.js';

const FILE = '/srv/berth/gateway.yml';

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    loadConfigFromString(text, FILE, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'BERTH_CONFIG_INVALID');
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

test('defaults: an empty file is a complete config', () => {
  const c = loadConfigFromString('', FILE);
  assert.deepEqual(c, {
    source: FILE,
    listen: { host: '0.0.0.0', port: 5000 },
    headers: {},
    upstreams: { v2: 'embedded', v1auth: 'strip' },
    clients: { rejectuseragents: '^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$' },
    urls: { prefix: '', host: '', relative: true },
    proxy: {
      readtimeout: 900_000, headertimeout: 20_000, maxheadersize: 16384, trustedproxies: [],
      maxconnections: 2048, maxconnectionsperaddress: 256, bodytimeout: 20_000, bodyminrate: 500, draintimeout: 10_000,
    },
    registry: {
      storage: {
        driver: 'filesystem',
        // registry.storage.filesystem, for createDriver(driver, parameters)
        parameters: { rootdirectory: '/srv/berth/data', maxthreads: 100, directio: true },
        delete: { enabled: false },
        maintenance: {
          uploadpurging: { enabled: true, age: 168 * 3_600_000, interval: 24 * 3_600_000, dryrun: false },
          uploadlimits: { peruser: 1000, peraddress: 1000 },
          readonly: { enabled: false },
        },
        redirect: { disable: false },
      },
      health: { storagedriver: { enabled: false, interval: 10_000, threshold: 3 }, file: [], http: [], tcp: [] },
      http: {},
    },
    log: { level: 'info', formatter: 'json', fields: {}, accesslog: { disabled: false } },
  });
});

test('the issue example loads, with relative paths resolved against the config file', () => {
  const c = loadConfigFromString(`
listen: 127.0.0.1:5000
upstreams: { v2: embedded }
registry:
  storage:
    filesystem: { rootdirectory: ./data }
    delete: { enabled: true }
    maintenance: { uploadpurging: { enabled: true, age: 168h, interval: 24h, dryrun: false }, readonly: { enabled: false } }
    redirect: { disable: false }
log: { level: info }
`, 'conf/gateway.yml');
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 5000 });
  assert.equal(c.registry.storage.parameters.rootdirectory, join(process.cwd(), 'conf', 'data'));
  assert.equal(c.registry.storage.delete.enabled, true);
  assert.equal(c.source, join(process.cwd(), 'conf', 'gateway.yml'));
});

test('absolute rootdirectory stays; inmemory selects the inmemory driver', () => {
  assert.equal(loadConfigFromString('registry: { storage: { filesystem: { rootdirectory: /var/lib/registry } } }', FILE)
    .registry.storage.parameters.rootdirectory, '/var/lib/registry');
  for (const text of ['registry: { storage: { inmemory: {} } }', 'registry:\n  storage:\n    inmemory:\n']) {
    const s = loadConfigFromString(text, FILE).registry.storage;
    assert.equal(s.driver, 'inmemory');
    assert.deepEqual(s.parameters, {});
    assert.equal('inmemory' in s || 'filesystem' in s, false, 'the section is `parameters`, not under its own key');
  }
});

test('no driver key → filesystem at ./data next to the config file', () => {
  const s = loadConfigFromString('registry:\n  storage:\n    delete: { enabled: true }\n', FILE).registry.storage;
  assert.equal(s.driver, 'filesystem');
  assert.deepEqual(s.parameters, { rootdirectory: '/srv/berth/data', maxthreads: 100, directio: true });
});

test('listen forms', () => {
  const cases: [string, { host: string; port: number }][] = [
    ['127.0.0.1:5000', { host: '127.0.0.1', port: 5000 }],
    ['"[::1]:5000"', { host: '::1', port: 5000 }],
    ['"[::]:0"', { host: '::', port: 0 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
    ['":5000"', { host: '::', port: 5000 }],   // both families, as Go's ":5000"
  ];
  for (const [yaml, want] of cases) assert.deepEqual(loadConfigFromString(`listen: ${yaml}`, FILE).listen, want, yaml);
});

test('durations use Go syntax', () => {
  const cases: [string, number | null][] = [
    ['168h', 604_800_000], ['90m', 5_400_000], ['1h30m', 5_400_000], ['500ms', 500], ['10s', 10_000],
    ['1.5s', 1500], ['2h45m30.5s', 9_930_500], ['1500us', 1.5], ['0', 0],
    ['1500\u00b5s', 1.5], ['1500\u03bcs', 1.5], ['2m1500\u00b5s', 120_001.5],   // micro sign and Greek mu, as Go accepts
    ['10', null], ['1d', null], ['-5s', null], ['', null], ['5 s', null], ['h', null],
  ];
  for (const [text, ms] of cases) {
    const r = parseDuration(text);
    if (ms === null) assert.ok('error' in r, text);
    else assert.deepEqual(r, { ms }, text);
  }
  const c = loadConfigFromString('registry: { storage: { maintenance: { uploadpurging: { age: 1h30m, interval: 500ms } } } }', FILE);
  assert.equal(c.registry.storage.maintenance.uploadpurging.age, 5_400_000);
  assert.equal(c.registry.storage.maintenance.uploadpurging.interval, 500);
});

test('host:port parser rejects what it should', () => {
  for (const bad of ['5000', '::1:5000', '[::1]', '[nope]:5000', 'a b:5000', 'host:70000', 'host:', '-x:1']) {
    assert.ok('error' in parseHostPort(bad), bad);
  }
});

// One row per message: YAML → the exact lines of the error (file:line:col  path  message).
const ERRORS: [name: string, yaml: string, want: string[]][] = [
  ['unknown top-level key', 'listen: 127.0.0.1:5000\nlisen: 1\n', [
    `${FILE}:2:1  lisen  unknown key, expected one of: listen, tls, auth, headers, upstreams, clients, urls, proxy, registry, log`,
  ]],
  ['unknown nested key', 'registry:\n  storage:\n    nosuchdriver: { bucket: x }\n', [
    `${FILE}:3:5  registry.storage.nosuchdriver  unknown key, expected one of: filesystem, inmemory, s3, delete, maintenance, redirect, cache`,
  ]],
  ['key under inmemory', 'registry: { storage: { inmemory: { size: 1 } } }', [
    `${FILE}:1:36  registry.storage.inmemory.size  unknown key, expected an empty mapping`,
  ]],
  ['boolean as string', 'registry:\n  storage:\n    delete: { enabled: yes }\n', [
    `${FILE}:3:24  registry.storage.delete.enabled  expected true or false, found string "yes"`,
  ]],
  ['mapping wanted', 'registry:\n  storage:\n    delete: true\n', [
    `${FILE}:3:13  registry.storage.delete  expected a mapping, found boolean true`,
  ]],
  ['list where a mapping belongs', 'log: [info]\n', [
    `${FILE}:1:6  log  expected a mapping, found a list`,
  ]],
  ['enum', 'log:\n  level: loud\n', [
    `${FILE}:2:10  log.level  expected one of trace, debug, info, warn, error, fatal, silent, found string "loud"`,
  ]],
  ['empty value for a scalar', 'log:\n  level:\n', [
    `${FILE}:2:3  log.level  expected one of trace, debug, info, warn, error, fatal, silent, found nothing`,
  ]],
  ['upstream neither embedded nor a URL', 'upstreams: { v2: "ftp://registry:5000" }', [
    `${FILE}:1:18  upstreams.v2  expected embedded or an http:// or https:// URL with host and optional port, no path, found string "ftp://registry:5000"`,
  ]],
  ['v1 upstream with a path', 'upstreams: { v1: "http://legacy:5000/v1" }', [
    `${FILE}:1:18  upstreams.v1  expected an http:// or https:// URL with host and optional port, no path, found string "http://legacy:5000/v1" (no path or query)`,
  ]],
  ['bad user-agent pattern', 'clients: { rejectuseragents: "(" }', [
    `${FILE}:1:30  clients.rejectuseragents  expected a regular expression (or "" to disable), found string "(" (Invalid regular expression: /(/: Unterminated group)`,
  ]],
  ['zero timeout', 'proxy: { readtimeout: 0s }', [
    `${FILE}:1:23  proxy.readtimeout  expected a duration above zero, found string "0s"`,
  ]],
  ['bad trusted proxy entries, each at its position', 'proxy:\n  trustedproxies: [10.0.0.0/8, 10.0.0.0/33, nope]\n', [
    `${FILE}:2:32  proxy.trustedproxies.1  expected an IP address or CIDR like 10.0.0.0/8 or fd00::/8, found string "10.0.0.0/33"`,
    `${FILE}:2:45  proxy.trustedproxies.2  expected an IP address or CIDR like 10.0.0.0/8 or fd00::/8, found string "nope"`,
  ]],
  ['trusted proxies not a list', 'proxy: { trustedproxies: 10.0.0.0/8 }', [
    `${FILE}:1:26  proxy.trustedproxies  expected a list of strings, found string "10.0.0.0/8"`,
  ]],
  ['tls minimum version', 'tls: { minimumtls: tls1.1 }', [
    `${FILE}:1:20  tls.minimumtls  expected one of tls1.2, tls1.3, found string "tls1.1"`,
  ]],
  ['unknown auth backend', 'auth: { silly: {} }', [
    `${FILE}:1:9  auth.silly  unknown key, expected one of: htpasswd, access, token, issuer`,
  ]],
  ['integer range', 'registry: { storage: { filesystem: { maxthreads: 5 } } }', [
    `${FILE}:1:50  registry.storage.filesystem.maxthreads  expected an integer ≥ 25, found number 5`,
  ]],
  ['integer type', 'registry: { storage: { filesystem: { maxthreads: 2.5 } } }', [
    `${FILE}:1:50  registry.storage.filesystem.maxthreads  expected an integer, found number 2.5`,
  ]],
  ['boolean type', 'registry: { storage: { filesystem: { directio: "yes" } } }', [
    `${FILE}:1:48  registry.storage.filesystem.directio  expected true or false, found string "yes"`,
  ]],
  ['empty path', 'registry: { storage: { filesystem: { rootdirectory: "" } } }', [
    `${FILE}:1:53  registry.storage.filesystem.rootdirectory  expected a non-empty path, found string ""`,
  ]],
  ['bare number duration', 'registry:\n  storage:\n    maintenance:\n      uploadpurging: { age: 3600 }\n', [
    `${FILE}:4:29  registry.storage.maintenance.uploadpurging.age  expected a duration like 168h, 90m, 1h30m, 10s or 500ms, found number 3600 (a bare number has no unit: write 3600s or 3600h)`,
  ]],
  ['bad duration text', 'registry: { storage: { maintenance: { uploadpurging: { interval: 1d } } } }', [
    `${FILE}:1:66  registry.storage.maintenance.uploadpurging.interval  expected a duration like 168h, 90m, 1h30m, 10s or 500ms, found "1d"`,
  ]],
  ['listen as number', 'listen: 5000', [
    `${FILE}:1:9  listen  expected a string "host:port", found number 5000`,
  ]],
  ['IPv6 without brackets', 'listen: ::1:5000', [
    `${FILE}:1:9  listen  expected host:port like 127.0.0.1:5000, [::1]:5000 or :5000, found "::1:5000" (IPv6 hosts go in brackets)`,
  ]],
  ['two drivers', 'registry:\n  storage:\n    filesystem: { rootdirectory: /x }\n    inmemory: {}\n', [
    `${FILE}:4:5  registry.storage  expected exactly one driver, found: filesystem, inmemory`,
  ]],
  ['duplicate keys, at the second occurrence', 'log: { level: info }\nregistry:\n  storage:\n    delete: { enabled: true }\n    delete: { enabled: false }\n', [
    `${FILE}:5:5  registry.storage.delete  duplicate key "delete"`,
  ]],
  ['duplicate top-level key', 'listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n', [
    `${FILE}:2:1  listen  duplicate key "listen"`,
  ]],
  ['YAML syntax error', 'log: { level: info\n', [
    `${FILE}:2:1  YAML: Flow map in block collection must be sufficiently indented and end with a }`,
  ]],
  ['top level not a mapping', '- a\n- b\n', [
    `${FILE}:1:1  expected a mapping, found a list`,
  ]],
  ['all problems at once, in file order', [
    'listen: nope',
    'upstreams: { v2: embedded, v3: x }',
    'registry:',
    '  storage:',
    '    filesystem: { rootdirectory: ./d }',
    '    inmemory:',
    '    delete: { enabled: 1 }',
    '    redirect: { disable: false, extra: 1 }',
    'log: { level: INFO }',
  ].join('\n'), [
    `${FILE}:1:9  listen  expected host:port like 127.0.0.1:5000, [::1]:5000 or :5000, found "nope" (missing :port)`,
    `${FILE}:2:28  upstreams.v3  unknown key, expected one of: v2, v1, v1auth`,
    `${FILE}:6:5  registry.storage  expected exactly one driver, found: filesystem, inmemory`,
    `${FILE}:7:24  registry.storage.delete.enabled  expected true or false, found number 1`,
    `${FILE}:8:33  registry.storage.redirect.extra  unknown key, expected one of: disable`,
    `${FILE}:9:15  log.level  expected one of trace, debug, info, warn, error, fatal, silent, found string "INFO"`,
  ]],
];

for (const [name, yaml, want] of ERRORS) {
  test(`error: ${name}`, () => assert.deepEqual(problems(yaml), want));
}

test('ConfigError carries structured problems', () => {
  try {
    loadConfigFromString('log: { level: loud }', 'g.yml');
    assert.fail('no error');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.problems, [{ line: 1, col: 15, path: 'log.level', message: 'expected one of trace, debug, info, warn, error, fatal, silent, found string "loud"' }]);
  }
});

test('env: REGISTRY_<PATH> maps onto registry:, values parsed as YAML', () => {
  const warnings: string[] = [];
  const c = loadConfigFromString('registry:\n  storage:\n    delete:\n', FILE, {
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: 'store',
    REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: '2h',
    REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: 'true',
    REGISTRY_PORT: 'tcp://10.0.0.1:5000',   // Kubernetes service link: ignored with a warning
    PATH: '/usr/bin',
  }, warnings);
  assert.equal(c.registry.storage.delete.enabled, true);
  assert.equal(c.registry.storage.parameters.rootdirectory, '/srv/berth/store');
  assert.equal(c.registry.storage.maintenance.uploadpurging.age, 7_200_000);
  assert.equal(c.registry.storage.maintenance.readonly.enabled, true);
  assert.deepEqual(warnings, ['ignoring environment variable REGISTRY_PORT: no such Distribution config key']);
});

test('env overrides win over the file; log level aliases (BERTH_LOG_LEVEL wins over REGISTRY_LOG_LEVEL)', () => {
  const text = 'log: { level: info }\nregistry: { storage: { delete: { enabled: false } } }\n';
  const c = loadConfigFromString(text, FILE, { REGISTRY_STORAGE_DELETE_ENABLED: 'true', REGISTRY_LOG_LEVEL: 'warn' });
  assert.equal(c.registry.storage.delete.enabled, true);
  assert.equal(c.log.level, 'warn');
  assert.equal(loadConfigFromString(text, FILE, { REGISTRY_LOG_LEVEL: 'warn', BERTH_LOG_LEVEL: 'debug' }).log.level, 'debug');
});

test('env: bad values are reported with the variable name, together with file problems', () => {
  assert.deepEqual(problems('log: { level: loud }\nregistry: { storage: { redirect: true } }', {
    REGISTRY_STORAGE_DELETE_ENABLED: 'maybe',
    REGISTRY_STORAGE_REDIRECT_DISABLE: 'true',
  }), [
    `${FILE}:1:15  log.level  expected one of trace, debug, info, warn, error, fatal, silent, found string "loud"`,
    `${FILE}:2:34  registry.storage.redirect  expected a mapping, found boolean true`,
    'env REGISTRY_STORAGE_REDIRECT_DISABLE  registry.storage.redirect.disable  cannot apply: a parent key in the file is not a mapping',
    'env REGISTRY_STORAGE_DELETE_ENABLED  registry.storage.delete.enabled  expected true or false, found string "maybe"',
  ]);
  assert.equal(loadConfigFromString('', FILE, { REGISTRY_STORAGE_INMEMORY: '{}' }).registry.storage.driver, 'inmemory');
});

test('the result is deeply frozen', () => {
  const c = loadConfigFromString('', FILE);
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.registry.storage.maintenance.uploadpurging));
  assert.throws(() => { (c.registry.storage.delete as { enabled: boolean }).enabled = true; }, TypeError);
});

test('loadConfig reads a file; a missing file is a ConfigError', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'gateway.yml');
  await writeFile(file, 'listen: 127.0.0.1:0\n');
  const c = await loadConfig(file, { env: {} });
  assert.equal(c.source, file);
  assert.equal(c.registry.storage.parameters.rootdirectory, join(dir, 'data'));
  await assert.rejects(loadConfig(join(dir, 'nope.yml'), { env: {} }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, `${join(dir, 'nope.yml')}  cannot read config: file not found`);
    return true;
  });
});

test('gateway sections: tls/auth absent stay absent; empty ones get the recipe paths', () => {
  const none = loadConfigFromString('', FILE);
  assert.equal(none.tls, undefined);
  assert.equal(none.auth, undefined);
  assert.equal('v1' in none.upstreams, false);
  const c = loadConfigFromString([
    'tls:',
    'auth: { htpasswd: { realm: "My Realm" } }',
    'upstreams: { v2: "https://registry:5000", v1: "http://legacy:5000", v1auth: forward }',
    'clients: { rejectuseragents: "" }',
    'proxy: { readtimeout: 30s, headertimeout: 5s, maxheadersize: 8192, trustedproxies: [10.0.0.0/8, "::1", "fd00::/8"],',
    '  maxconnections: 100, maxconnectionsperaddress: 10, bodytimeout: 5s, bodyminrate: 0 }',
  ].join('\n'), FILE);
  assert.deepEqual(c.tls, { certificate: '/srv/berth/certs/domain.crt', key: '/srv/berth/certs/domain.key', minimumtls: 'tls1.2', ciphersuites: [], clientcas: [], clientauth: 'none' });
  assert.deepEqual(c.auth, { htpasswd: { realm: 'My Realm', path: '/srv/berth/auth/htpasswd', cache: true } });
  assert.deepEqual(c.upstreams, { v2: 'https://registry:5000', v1: 'http://legacy:5000', v1auth: 'forward' });
  assert.equal(c.clients.rejectuseragents, '');
  assert.deepEqual(c.proxy, { readtimeout: 30_000, headertimeout: 5_000, maxheadersize: 8192, trustedproxies: ['10.0.0.0/8', '::1', 'fd00::/8'],
    maxconnections: 100, maxconnectionsperaddress: 10, bodytimeout: 5_000, bodyminrate: 0, draintimeout: 10_000 });
});

test('the default user-agent pattern is the gateway constant (nginx recipe)', async () => {
  const { DEFAULT_REJECT_UA } = await import('../../src/gateway/user-agent.js');
  assert.equal(loadConfigFromString('', FILE).clients.rejectuseragents, DEFAULT_REJECT_UA);
});
