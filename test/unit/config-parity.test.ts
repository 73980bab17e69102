// Issue 15's configuration points (drop-in parity with registry:2): Distribution 2.8's aliases and the
// keys a pasted config.yml carries, checked on loadConfigFromString (no files, no servers).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigFromString } from '../../src/config/load.js';

const GW = '/etc/berth/gateway.yml';
const CY = '/etc/docker/registry/config.yml';
const load = (yaml: string, file = GW, env: Record<string, string> = {}, warnings: string[] = []) =>
  loadConfigFromString(yaml, file, env, warnings);
const problems = (yaml: string, file = GW, env: Record<string, string> = {}) => {
  try { load(yaml, file, env); } catch (err) { return (err as Error).message.split('\n').filter(Boolean); }
  return [];
};

describe('storage.cache.layerinfo (Distribution 2.8 alias of blobdescriptor)', () => {
  it('config.yml: layerinfo: inmemory is the in-memory cache', () => {
    const c = load('version: 0.1\nstorage:\n  filesystem: { rootdirectory: /srv }\n  cache:\n    layerinfo: inmemory\n', CY);
    assert.deepEqual(c.registry.storage.cache, { blobdescriptor: 'inmemory', blobdescriptorsize: 10000 });
  });

  it('gateway.yml: registry.storage.cache.layerinfo works too; blobdescriptor wins when both are given', () => {
    assert.equal(load('registry:\n  storage:\n    cache: { layerinfo: inmemory }\n').registry.storage.cache?.blobdescriptor, 'inmemory');
    const both = load('registry:\n  redis: {}\n  storage:\n    cache: { layerinfo: inmemory, blobdescriptor: redis }\n');
    assert.equal(both.registry.storage.cache?.blobdescriptor, 'redis');
  });

  it('errors name layerinfo at its line:col', () => {
    assert.deepEqual(problems('version: 0.1\nstorage:\n  cache:\n    layerinfo: disk\n', CY), [
      `${CY}:4:16  storage.cache.layerinfo  expected one of inmemory, redis, found string "disk"`,
    ]);
    assert.deepEqual(problems('version: 0.1\nstorage:\n  cache:\n    layerinfo: redis\n', CY), [
      `${CY}:4:16  storage.cache.layerinfo  redis needs a registry.redis section (at least redis.addr)`,
    ]);
    assert.deepEqual(problems('registry:\n  storage:\n    cache: { layerinfo: 5 }\n'), [
      `${GW}:3:25  registry.storage.cache.layerinfo  expected one of inmemory, redis, found number 5`,
    ]);
  });

  it('REGISTRY_STORAGE_CACHE_LAYERINFO in both styles', () => {
    const env = { REGISTRY_STORAGE_CACHE_LAYERINFO: 'inmemory' };
    assert.equal(load('version: 0.1\n', CY, env).registry.storage.cache?.blobdescriptor, 'inmemory');
    assert.equal(load('', GW, env).registry.storage.cache?.blobdescriptor, 'inmemory');
  });
});

describe('REGISTRY_* problems name the variable', () => {
  it('an unknown key below a known section: env NAME, in both styles', () => {
    const env = { REGISTRY_STORAGE_FILESYSTEM_ROOTDIR: '/x' };
    assert.deepEqual(problems('', GW, env), [
      'env REGISTRY_STORAGE_FILESYSTEM_ROOTDIR  registry.storage.filesystem.rootdir  unknown key, expected one of: rootdirectory, maxthreads, directio',
    ]);
    assert.deepEqual(problems('version: 0.1\n', CY, env), [
      'env REGISTRY_STORAGE_FILESYSTEM_ROOTDIR  storage.filesystem.rootdir  unknown key, expected one of: rootdirectory, maxthreads, directio',
    ]);
  });

  it('a variable naming no Distribution key is a warning with its name', () => {
    const warnings: string[] = [];
    load('', GW, { REGISTRY_PORT: '5000' }, warnings);
    assert.deepEqual(warnings, ['ignoring environment variable REGISTRY_PORT: no such Distribution config key']);
  });
});

describe('docs that name other files (issue 15 point 17)', () => {
  const root = new URL('../../', import.meta.url);
  it("gateway.yml's header names the command npm start runs", async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
    const header = (await readFile(new URL('gateway.yml', root), 'utf8')).split('\n').slice(0, 5).join('\n');
    assert.match(header, new RegExp(`npm start +# = ${pkg.scripts.start.replace(/[.]/g, '\\.')}\\n`));
  });
  it('certs/README.md tells how to configure production certificates (TLS has landed)', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('certs/README.md', root), 'utf8');
    assert.doesNotMatch(text, /arrives with/);
    assert.match(text, /tls\.certificate/);
    assert.match(text, /http\.tls\.certificate/);
  });
});

describe('rate-limited log lines (TLS handshake failures, issue 15 point 16)', () => {
  it('one line per interval per key; the next one counts the lines left out', async () => {
    const { rateLimitedLog } = await import('../../src/log/rate-limit.js');
    const out: Record<string, unknown>[] = [];
    const log = { warn: (f: Record<string, unknown>, msg: string) => out.push({ ...f, msg }) } as never;
    let now = 0;
    const rl = rateLimitedLog(log, 10_000, () => now);
    for (let i = 0; i < 4; i++) rl('warn', 'A', { i }, 'tls handshake failed');
    rl('warn', 'B', {}, 'other kind');
    now = 10_000;
    rl('warn', 'A', { i: 9 }, 'tls handshake failed');
    assert.deepEqual(out, [
      { i: 0, msg: 'tls handshake failed' }, { msg: 'other kind' }, { i: 9, suppressed: 3, msg: 'tls handshake failed' },
    ]);
  });
});

describe('access line route fields (issue 15 point 16)', () => {
  it('repo, digest, tag and uploadId where the /v2 route names them', async () => {
    const { routeFields } = await import('../../src/gateway/request-log.js');
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(routeFields(`/v2/a/b/blobs/${d}`), { repo: 'a/b', digest: d });
    assert.deepEqual(routeFields(`/v2/a/b/manifests/${d}`), { repo: 'a/b', digest: d });
    assert.deepEqual(routeFields('/v2/a/b/manifests/latest'), { repo: 'a/b', tag: 'latest' });
    assert.deepEqual(routeFields('/v2/a/b/blobs/uploads/123'), { repo: 'a/b', uploadId: '123' });
    assert.deepEqual(routeFields('/v2/a/tags/list'), { repo: 'a' });
    assert.deepEqual(routeFields('/v2/_catalog'), {});
    assert.deepEqual(routeFields('/v1/_ping'), {});
  });
});

describe('one file for both (issue 15 point 11)', () => {
  it('config.yml: the top-level berth section sets the gateway-only keys', () => {
    const c = load([
      'version: 0.1', 'http: { addr: "127.0.0.1:5000" }', 'storage: { inmemory: {} }',
      'berth:',
      '  upstreams: { v1: "http://127.0.0.1:5001", v1auth: forward }',
      '  clients: { rejectuseragents: "" }',
      '  proxy: { readtimeout: 60s, trustedproxies: [10.0.0.0/8] }', '',
    ].join('\n'), CY);
    assert.equal(c.upstreams.v1, 'http://127.0.0.1:5001');
    assert.equal(c.upstreams.v1auth, 'forward');
    assert.equal(c.clients.rejectuseragents, '');
    assert.equal(c.proxy.readtimeout, 60_000);
    assert.deepEqual(c.proxy.trustedproxies, ['10.0.0.0/8']);
  });

  it('config.yml: errors in the berth section name it at line:col', () => {
    assert.deepEqual(problems('version: 0.1\nberth:\n  proxy: { readtimeout: 60 }\n  listen: ":5000"\n', CY), [
      `${CY}:3:25  berth.proxy.readtimeout  expected a duration like 168h, 90m, 1h30m, 10s or 500ms, found number 60 (a bare number has no unit: write 60s or 60h)`,
      `${CY}:4:3  berth.listen  unknown key, expected one of: upstreams, clients, proxy`,
    ]);
  });

  it('gateway.yml: a whole config.yml pasted under registry: maps its log, http and auth to the gateway', () => {
    const warnings: string[] = [];
    const c = load([
      'registry:',
      '  version: 0.1',
      '  log: { level: debug, fields: { service: registry } }',
      '  storage: { inmemory: {}, delete: { enabled: true } }',
      '  http:',
      '    addr: "127.0.0.1:5555"',
      '    headers: { X-Content-Type-Options: [nosniff] }',
      '    debug: { addr: "127.0.0.1:5556" }',
      '  auth: { htpasswd: { realm: r, path: /etc/registry/htpasswd } }', '',
    ].join('\n'), GW, {}, warnings);
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 5555 });
    assert.equal(c.log.level, 'debug');
    assert.deepEqual(c.headers, { 'X-Content-Type-Options': ['nosniff'] });
    assert.deepEqual(c.registry.http?.debug?.addr, { host: '127.0.0.1', port: 5556 });
    assert.equal(c.auth?.htpasswd?.path, '/etc/registry/htpasswd');
    assert.equal(c.registry.storage.driver, 'inmemory');
    assert.equal(c.registry.storage.delete.enabled, true);
  });

  it('gateway.yml: pasted keys are named registry.<key>; a key set twice is refused', () => {
    assert.deepEqual(problems('listen: ":5000"\nregistry:\n  version: 0.1\n  http: { addr: 5000 }\n  storage: { azure: {} }\n'), [
      `${GW}:4:11  registry.http.addr  also set as listen at line 1: give it once`,
      `${GW}:5:14  registry.storage.azure  storage driver "azure" is not supported yet (berth has filesystem, inmemory and s3)`,
    ]);
    assert.deepEqual(problems('registry:\n  version: 0.1\n  log: { level: loud }\n'), [
      `${GW}:3:17  registry.log.level  expected one of trace, debug, info, warn, error, fatal, silent, found string "loud"`,
    ]);
  });
});

describe('http.prefix, http.host, http.relativeurls (issue 15 point 12)', () => {
  it('config.yml: mapped to urls; without relativeurls URLs are absolute, as in Distribution (its default is false)', () => {
    assert.deepEqual(load('version: 0.1\nhttp: { prefix: /registry/, host: "https://reg.example:5000" }\n', CY).urls,
      { prefix: '/registry/', host: 'https://reg.example:5000', relative: false });
    assert.deepEqual(load('version: 0.1\nhttp: { addr: ":5000" }\n', CY).urls, { prefix: '', host: '', relative: false },
      'no host: absolute from the request');
    assert.deepEqual(load('version: 0.1\nhttp: { addr: ":5000", relativeurls: true }\n', CY).urls, { prefix: '', host: '', relative: true });
    assert.deepEqual(load('version: 0.1\nhttp: { host: "https://reg.example", relativeurls: true }\n', CY).urls,
      { prefix: '', host: 'https://reg.example', relative: true });
    assert.deepEqual(problems('version: 0.1\nhttp: { prefix: "r?x", host: "ftp://x" }\n', CY), [
      `${CY}:2:17  http.prefix  expected a path like /registry, found string "r?x"`,
      `${CY}:2:30  http.host  expected an http:// or https:// URL with host and optional port, no path, found string "ftp://x" (scheme must be http or https)`,
    ]);
  });

  it('the prefix is stripped before routing and put back on Location; a host makes it absolute', async () => {
    const { mapLocation, normalizePrefix, stripPrefix } = await import('../../src/gateway/url-mapping.js');
    assert.equal(normalizePrefix('/registry/'), '/registry');
    assert.equal(normalizePrefix('/'), '');
    assert.equal(stripPrefix('/registry/v2/a/manifests/x?y=1', '/registry'), '/v2/a/manifests/x?y=1');
    assert.equal(stripPrefix('/registryx/v2/', '/registry'), undefined);
    assert.equal(stripPrefix('/v2/', '/registry'), undefined);
    const m = { prefix: '/registry', host: 'https://reg.example', relative: false };
    assert.equal(mapLocation('/v2/a/blobs/uploads/1', m), 'https://reg.example/registry/v2/a/blobs/uploads/1');
    assert.equal(mapLocation('/v2/a/blobs/uploads/1', { ...m, relative: true }), '/registry/v2/a/blobs/uploads/1');
    assert.equal(mapLocation('https://s3.example/blob', m), 'https://s3.example/blob', 'storage redirects stay');
    // relative URLs off and no host: the request's scheme and Host (Distribution's urls.Builder from the request)
    const r = { prefix: '', host: '', relative: false };
    assert.equal(mapLocation('/v2/a/blobs/uploads/1', r, 'https://reg.example:5000'), 'https://reg.example:5000/v2/a/blobs/uploads/1');
    assert.equal(mapLocation('/v2/a/blobs/uploads/1', r, undefined), '/v2/a/blobs/uploads/1', 'no Host: stays a path');
  });

  it('requestBase: X-Forwarded-Proto (the gateway sets it) and Host; else the socket\'s scheme', async () => {
    const { requestBase } = await import('../../src/gateway/url-mapping.js');
    const req = (headers: Record<string, string>, encrypted = false) =>
      ({ headers, socket: encrypted ? { encrypted: true } : {} }) as unknown as import('node:http').IncomingMessage;
    assert.equal(requestBase(req({ host: 'reg.example:5000', 'x-forwarded-proto': 'https' })), 'https://reg.example:5000');
    assert.equal(requestBase(req({ host: 'reg.example' })), 'http://reg.example');
    assert.equal(requestBase(req({ host: 'reg.example' }, true)), 'https://reg.example');
    assert.equal(requestBase(req({})), undefined);
  });
});

describe('REGISTRY_BERTH_* (the berth: section from the environment)', () => {
  it('sets berth-only gateway keys in both styles', () => {
    const env = { REGISTRY_BERTH_PROXY_READTIMEOUT: '30s', REGISTRY_BERTH_PROXY_TRUSTEDPROXIES_0: '10.0.0.0/8', REGISTRY_BERTH_UPSTREAMS_V1: 'http://127.0.0.1:5001' };
    for (const [text, file] of [['version: 0.1\n', CY], ['', GW]] as const) {
      const c = load(text, file, env);
      assert.equal(c.proxy.readtimeout, 30_000);
      assert.deepEqual(c.proxy.trustedproxies, ['10.0.0.0/8']);
      assert.equal(c.upstreams.v1, 'http://127.0.0.1:5001');
    }
    assert.deepEqual(problems('version: 0.1\n', CY, { REGISTRY_BERTH_PROXY_READTIMEOUT: '30' }), [
      'env REGISTRY_BERTH_PROXY_READTIMEOUT  berth.proxy.readtimeout  expected a duration like 168h, 90m, 1h30m, 10s or 500ms, found number 30 (a bare number has no unit: write 30s or 30h)',
    ]);
  });
});
