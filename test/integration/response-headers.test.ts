// `headers:` (Distribution's http.headers) on every response of the public listener, exactly once and
// with our value: 200, 401 challenge, old-client 404, the gateway's 404, OCI errors, 405, HEAD, a
// parser-level 400, /v1 answers, a sidecar upstream's responses (which send the same header) and its
// 502; never on the debug listener. startServer in-process on real sockets; the upstream is real too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import bcrypt from 'bcryptjs';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { request, type HttpResponse } from '../support/http.js';
import { startRegistry } from '../support/registry-server.js';
import { withDeadline } from '../support/wait.js';

type T = { after(fn: () => unknown): void };
const USER = 'alice';
const PASSWORD = 'headers-test-password';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const HEADERS_YAML = 'headers:\n  X-Content-Type-Options: [nosniff]\n  Strict-Transport-Security: "max-age=63072000"\n  X-Multi: [one, two]\n';

/** GET/HEAD/PUT on the listener at `port` (no body). */
const call = (port: number, method: string, path: string, headers: Record<string, string> = {}) =>
  request(`http://127.0.0.1:${port}${path}`, { method, headers });

/** Every header line of ours exactly once (headerValues: one entry per header line, in order). */
function assertOurs(r: HttpResponse, what: string): void {
  assert.deepEqual(r.headerValues('x-content-type-options'), ['nosniff'], what);
  assert.deepEqual(r.headerValues('strict-transport-security'), ['max-age=63072000'], what);
  assert.deepEqual(r.headerValues('x-multi'), ['one', 'two'], what);
}

async function tempDir(t: T): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'berth-headers-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function gateway(t: T, yaml: string) {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'htpasswd'), `${USER}:${await bcrypt.hash(PASSWORD, 4)}\n`);
  const text = `listen: 127.0.0.1:0\nauth: { htpasswd: { path: htpasswd } }\n${HEADERS_YAML}${yaml}\n`;
  const server = await startServer(loadConfigFromString(text, join(dir, 'gateway.yml')), silentLogger(), { drainMs: 1000 });
  t.after(() => server.close());
  return { server, port: Number(new URL(server.url).port) };
}

test('embedded: the configured headers on every kind of response, once each', async (t) => {
  const { server, port } = await gateway(t, [
    'registry: { storage: { inmemory: {} }, http: { debug: { addr: "127.0.0.1:0" } } }',
  ].join('\n'));
  const cases: [what: string, method: string, path: string, headers: Record<string, string>, status: number][] = [
    ['base 200', 'GET', '/v2/', { Authorization: BASIC }, 200],
    ['401 challenge', 'GET', '/v2/', {}, 401],
    ['401 on HEAD', 'HEAD', '/v2/some/repo/manifests/latest', {}, 401],
    ['old client 404', 'GET', '/v2/', { 'User-Agent': 'docker/1.5.0 go/go1.4.1' }, 404],
    ['gateway 404', 'GET', '/favicon.ico', {}, 404],
    ['/v1 without upstream', 'GET', '/v1/_ping', {}, 404],
    ['OCI error 404', 'GET', '/v2/some/repo/manifests/latest', { Authorization: BASIC }, 404],
    ['OCI error 400', 'GET', '/v2/UPPER/manifests/latest', { Authorization: BASIC }, 400],
    ['405', 'PUT', '/v2/', { Authorization: BASIC }, 405],
    ['catalog 200', 'GET', '/v2/_catalog', { Authorization: BASIC }, 200],
  ];
  for (const [what, method, path, headers, status] of cases) {
    const r = await call(port, method, path, headers);
    assert.equal(r.status, status, what);
    assertOurs(r, what);
  }
  // A request Node's parser refuses never reaches the pipeline: the raw 400 carries them too (a raw socket:
  // no HTTP client sends both Content-Length and Transfer-Encoding).
  const s = net.connect(port, '127.0.0.1');
  s.end('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
  let raw = '';
  s.setEncoding('utf8').on('data', (c: string) => { raw += c; });
  await withDeadline(once(s, 'close'), 10_000, 'the server to answer the malformed request and close', () => raw);
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.match(raw, /\r\nX-Content-Type-Options: nosniff\r\n/);
  assert.match(raw, /\r\nX-Multi: one\r\nX-Multi: two\r\n/);
  // The debug listener is not public: nothing added there.
  const debugPort = Number(new URL(server.debugUrl!).port);
  const d = await call(debugPort, 'GET', '/debug/health');
  assert.equal(d.status, 200);
  assert.deepEqual(d.headerValues('x-content-type-options'), []);
});

test('sidecar: the upstream sends the same header names; ours replace them, once, on 2xx, 4xx and the 502', async (t) => {
  // A real registry (the embedded app on its own socket) behind a tiny real proxy that adds the
  // headers an upstream might set (clashing values, mixed case) to whatever the registry answers.
  const reg = await startRegistry({ driver: 'inmemory' });
  t.after(() => reg.close());
  const regPort = Number(new URL(reg.url).port);
  const upstream = http.createServer((req, res) => {
    const out = http.request({ host: '127.0.0.1', port: regPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, { ...up.headers, 'x-content-type-options': 'upstream', 'X-MULTI': ['u1', 'u2', 'u3'] });
      up.pipe(res);
    });
    req.pipe(out);
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const upPort = (upstream.address() as AddressInfo).port;
  let upstreamClosed = false;
  const closeUpstream = () => new Promise<void>((r) => {
    if (upstreamClosed) { r(); return; }
    upstreamClosed = true; upstream.closeAllConnections(); upstream.close(() => r());
  });
  t.after(closeUpstream);

  const { port } = await gateway(t, `upstreams: { v2: "http://127.0.0.1:${upPort}" }`);
  for (const [what, path, status] of [['base', '/v2/', 200], ['unknown manifest', '/v2/a/manifests/latest', 404], ['tags', '/v2/a/tags/list', 404]] as const) {
    const r = await call(port, 'GET', path, { Authorization: BASIC });
    assert.equal(r.status, status, what);
    assertOurs(r, what);
    assert.deepEqual(r.headerValues('docker-distribution-api-version'), ['registry/2.0'], what);
  }
  await closeUpstream();
  const down = await call(port, 'GET', '/v2/', { Authorization: BASIC });
  assert.equal(down.status, 502);
  assertOurs(down, '502');
});

test('no headers configured: nothing added (and the hook is not installed)', async (t) => {
  const dir = await tempDir(t);
  const server = await startServer(loadConfigFromString('listen: 127.0.0.1:0\nregistry: { storage: { inmemory: {} } }\n', join(dir, 'g.yml')), silentLogger(), { drainMs: 1000 });
  t.after(() => server.close());
  const r = await call(Number(new URL(server.url).port), 'GET', '/v2/');
  assert.equal(r.status, 200);
  assert.deepEqual(r.headerValues('x-content-type-options'), []);
});
