// The gateway issue's behaviours, one test (or table) per bullet, against startServer in-process on
// real sockets: old-client rejection, the 401 shape, the API-version header never duplicated (real
// Distribution 2.8.2 and a plain upstream), request smuggling, slow and oversized headers, idle
// timeouts, chunked bodies, X-Forwarded-* and trusted proxies, request ids, v1 routing, 502 + recovery, TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import bcrypt from 'bcryptjs';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { NOT_FOUND_BODY } from '../../src/gateway/pipeline.js';
import { requestIdMixin } from '../../src/util/request-context.js';
import { createLogger } from '../../src/log/logger.js';
import { captureLog, makeTestCert, type CapturedLog } from '../support/tls-certs.js';
import { distributionAvailable, startDistribution } from '../support/distribution.js';
import { request } from '../support/http.js';
import { withDeadline } from '../support/wait.js';

type T = { after(fn: () => unknown): void };
const USER = 'alice';
const PASSWORD = 'correct horse battery staple';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const UNAUTHORIZED = { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] };
const API = 'docker-distribution-api-version';
const skipDistribution = !distributionAvailable() && process.env.CI !== 'true' ? 'docker-registry (Distribution 2.8) not installed' : false;

async function tempDir(t: T): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'berth-gw-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

interface Gw { server: RunningServer; port: number; url: string; cap: CapturedLog; dir: string }

/** startServer with `yaml` (listen and in-memory storage added), htpasswd alice:PASSWORD when auth: true. */
async function gateway(t: T, yaml = '', o: { auth?: boolean; level?: string } = {}): Promise<Gw> {
  const dir = await tempDir(t);
  let text = `listen: 127.0.0.1:0\nregistry: { storage: { inmemory: {} } }\n${yaml}\n`;
  if (o.auth) {
    await writeFile(join(dir, 'htpasswd'), `${USER}:${await bcrypt.hash(PASSWORD, 4)}\n`);
    text += 'auth: { htpasswd: { realm: Test Realm, path: htpasswd } }\n';
  }
  const config = loadConfigFromString(text, join(dir, 'gateway.yml'));
  const cap = captureLog(o.level ?? 'info');
  const server = await startServer(config, cap.log, { drainMs: 1000 });
  t.after(() => server.close());
  return { server, port: Number(new URL(server.url).port), url: server.url, cap, dir };
}

async function listen(t: T, server: http.Server, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}

/** A plain node upstream that records request headers and answers 200 `hello` WITHOUT the API-version header. */
async function plainUpstream(t: T, port = 0) {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    req.resume().on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('hello'));
  });
  return { seen, server, port: await listen(t, server, port) };
}

/** Sends raw bytes (what no HTTP client sends: malformed, partial or trickled requests); resolves with
 *  everything the server sent until it closed the connection, which must happen within 15 s. */
function rawExchange(port: number, write: (s: net.Socket) => void): Promise<{ text: string; ms: number }> {
  let text = '';
  return withDeadline(new Promise((resolve, reject) => {
    const started = Date.now();
    const s = net.connect(port, '127.0.0.1', () => write(s));
    s.setEncoding('utf8').on('data', (c: string) => { text += c; });
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    s.on('close', () => resolve({ text, ms: Date.now() - started }));
  }), 15_000, 'the server to close the raw connection', () => `received: ${JSON.stringify(text)}`);
}

// ------------------------------------------------------------------ old clients

const UA_TABLE: [ua: string | undefined, rejected: boolean][] = [
  ['docker/1.3.0 go/go1.3.3 git-commit/c78088f kernel/3.16.0 os/linux arch/amd64', true],
  ['docker/1.4.1 go/go1.3.3', true],
  ['docker/1.5.0 go/go1.4.1', true],
  ['docker/1.5.0-dev go/go1.4.1', false],            // the recipe's lookahead lets 1.5 dev builds through
  ['docker/1.6.0 go/go1.4.2 git-commit/4749651', false],
  ['docker/1.13.1 go/go1.7.5', false],
  ['docker/20.10.7 go/go1.13.15 git-commit/b0f5bc3 kernel/5.10 os/linux arch/amd64 UpstreamClient(Docker-Client/20.10.7 \\(linux\\))', false],
  ['containerd/1.7.2', false],
  ['Go-http-client/1.1', false],
  ['Go 1.1 package http', true],
  ['skopeo/1.9.2', false],
  ['curl/7.88.1', false],
  [undefined, false],
];

test('old clients: a rejected User-Agent gets the gateway\'s OCI 404 on /v2 before any challenge; others are challenged', async (t) => {
  const { port } = await gateway(t, '', { auth: true });
  for (const [ua, rejected] of UA_TABLE) {
    const r = await request(`http://127.0.0.1:${port}/v2/`, { headers: ua === undefined ? {} : { 'User-Agent': ua } });
    assert.equal(r.status, rejected ? 404 : 401, String(ua));
    assert.equal(r.headers['www-authenticate'], rejected ? undefined : 'Basic realm="Test Realm"', String(ua));
    assert.equal(r.headerValues(API).length, 1, String(ua));
    if (rejected) assert.deepEqual([r.headers['content-type'], r.text()], ['application/json; charset=utf-8', NOT_FOUND_BODY]);
  }
  // Only /v2 is subject to the rule: the same agent elsewhere gets the ordinary 404 JSON.
  const other = await request(`http://127.0.0.1:${port}/v1/_ping`, { headers: { 'User-Agent': 'docker/1.5.0' } });
  assert.deepEqual([other.status, other.text()], [404, NOT_FOUND_BODY]);
});

test('old clients: clients.rejectuseragents "" turns the rule off; a custom pattern replaces it', async (t) => {
  const off = await gateway(t, 'clients: { rejectuseragents: "" }');
  assert.equal((await request(`http://127.0.0.1:${off.port}/v2/`, { headers: { 'User-Agent': 'docker/1.5.0' } })).status, 200);
  const custom = await gateway(t, 'clients: { rejectuseragents: "^evil/" }');
  assert.equal((await request(`http://127.0.0.1:${custom.port}/v2/`, { headers: { 'User-Agent': 'evil/1' } })).status, 404);
  assert.equal((await request(`http://127.0.0.1:${custom.port}/v2/`, { headers: { 'User-Agent': 'docker/1.5.0' } })).status, 200);
});

// ------------------------------------------------------------------ auth

test('auth: 401 shape without, with wrong and with malformed credentials; the right ones pass and name the user in the log', async (t) => {
  const { port, cap } = await gateway(t, '', { auth: true });
  const wrong = `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}`;
  const unknown = `Basic ${Buffer.from(`mallory:${PASSWORD}`).toString('base64')}`;
  for (const [what, headers] of [
    ['none', {}], ['wrong password', { Authorization: wrong }], ['unknown user', { Authorization: unknown }],
    ['malformed', { Authorization: 'Basic !!!' }], ['bearer', { Authorization: 'Bearer abc' }],
  ] as const) {
    for (const path of ['/v2/', '/v2/some/repo/tags/list']) {
      const r = await request(`http://127.0.0.1:${port}${path}`, { headers });
      assert.equal(r.status, 401, `${what} ${path}`);
      assert.equal(r.headers['www-authenticate'], 'Basic realm="Test Realm"');
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.deepEqual(r.json(), UNAUTHORIZED);
      assert.equal(r.headerValues(API).length, 1);
      assert.equal(r.headers[API], 'registry/2.0');
    }
  }
  const head = await request(`http://127.0.0.1:${port}/v2/`, { method: 'HEAD' });
  assert.deepEqual([head.status, head.text()], [401, '']);
  const ok = await request(`http://127.0.0.1:${port}/v2/`, { headers: { Authorization: BASIC, 'X-Request-Id': 'auth-ok' } });
  assert.equal(ok.status, 200);
  const line = await cap.waitFor((l) => l.msg === 'request completed' && l.reqId === 'auth-ok');
  assert.equal(line.user, USER);
  // Paths the gateway does not serve are not challenged.
  assert.equal((await request(`http://127.0.0.1:${port}/favicon.ico`)).status, 404);
  // Credentials never reach the log, in any form.
  const all = JSON.stringify(cap.lines);
  for (const secret of [PASSWORD, BASIC.slice(6), 'nope', wrong.slice(6)]) assert.ok(!all.includes(secret), secret);
});

test('auth: a refused upload with a body is answered 401 and the connection closed, not drained', async (t) => {
  const { port } = await gateway(t, '', { auth: true });
  const { text } = await rawExchange(port, (s) => s.write(
    'PATCH /v2/x/blobs/uploads/abc HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n' + 'x'.repeat(1000)));
  assert.match(text, /^HTTP\/1\.1 401 /);
  assert.match(text, /\r\nConnection: close\r\n/i);
});

// ------------------------------------------------------------------ API version header

test('API version header: exactly once on embedded 200/401/404/405 and the gateway 404 has none', async (t) => {
  const { port } = await gateway(t);
  for (const [method, path, status] of [
    ['GET', '/v2', 200], ['GET', '/v2/', 200], ['GET', '/v2/a/manifests/latest', 404], ['PUT', '/v2/', 405],
    ['GET', '/v2/a/b/../../nope', 404],
  ] as const) {
    const r = await request(`http://127.0.0.1:${port}${path}`, { method });
    assert.equal(r.status, status, `${method} ${path}`);
    assert.equal(r.headerValues(API).length, 1, `${method} ${path}`);
  }
  const other = await request(`http://127.0.0.1:${port}/`);
  assert.equal(other.headerValues(API).length, 0);
});

test('API version header: a plain upstream without it gets it added once; a sidecar to Distribution 2.8.2 keeps its own, once', { skip: skipDistribution }, async (t) => {
  const plain = await plainUpstream(t);
  const gw1 = await gateway(t, `upstreams: { v2: "http://127.0.0.1:${plain.port}" }`);
  const r1 = await request(`http://127.0.0.1:${gw1.port}/v2/`);
  assert.deepEqual([r1.status, r1.text(), r1.headerValues(API).length, r1.headers[API]], [200, 'hello', 1, 'registry/2.0']);

  const dist = await startDistribution(t);
  const gw2 = await gateway(t, `upstreams: { v2: "${dist.url}" }`);
  for (const [path, status] of [['/v2/', 200], ['/v2/nope/manifests/latest', 404], ['/v2/_catalog', 200]] as const) {
    const r = await request(`http://127.0.0.1:${gw2.port}${path}`);
    assert.equal(r.status, status, path);
    assert.equal(r.headerValues(API).length, 1, path);
  }
});

// ------------------------------------------------------------------ bodies and parser limits

async function pushBlob(port: number, data: Buffer, body: () => Readable, host: string): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const start = await request(`http://127.0.0.1:${port}/v2/big/blob/blobs/uploads/`, { method: 'POST', headers: { Host: host } });
  assert.equal(start.status, 202, start.text());
  const loc = new URL(start.headers.location!, `http://${host}`);
  const patch = await request(`http://127.0.0.1:${port}${loc.pathname + loc.search}`, { method: 'PATCH', headers: { Host: host, 'Content-Type': 'application/octet-stream' }, body: body() });
  assert.equal(patch.status, 202, patch.text());
  const loc2 = new URL(patch.headers.location!, `http://${host}`);
  loc2.searchParams.set('digest', digest);
  const put = await request(`http://127.0.0.1:${port}${loc2.pathname + loc2.search}`, { method: 'PUT', headers: { Host: host, 'Content-Length': 0 } });
  assert.equal(put.status, 201, put.text());
  const got = await request(`http://127.0.0.1:${port}/v2/big/blob/blobs/${digest}`, { headers: { Host: host } });
  assert.equal(got.status, 200);
  assert.equal(createHash('sha256').update(got.body).digest('hex'), digest.slice(7));
  return digest;
}

/** A chunked body: 8 MiB in 64 KiB pieces (Node sends Transfer-Encoding: chunked for a stream without a length). */
const chunked = (data: Buffer) => () => Readable.from((function* () { for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536); })());

test('bodies: chunked uploads stream through, embedded and in sidecar mode (Distribution 2.8.2)', { skip: skipDistribution }, async (t) => {
  const data = randomBytes(8 * 1024 * 1024);
  const emb = await gateway(t);
  await pushBlob(emb.port, data, chunked(data), `127.0.0.1:${emb.port}`);
  const dist = await startDistribution(t);
  const side = await gateway(t, `upstreams: { v2: "${dist.url}" }`);
  await pushBlob(side.port, data, chunked(data), `127.0.0.1:${side.port}`);
});

test('bodies: the read timeout is idle time between bytes, not a total limit', async (t) => {
  const { port } = await gateway(t, 'proxy: { readtimeout: 400ms }');
  // 12 pieces 100 ms apart: 1.2 s in total, never 400 ms idle.
  const data = randomBytes(12 * 1000);
  const trickle = () => new Readable({
    read() {
      const i = (this as any).i ?? 0;
      (this as any).i = i + 1;
      if (i === 12) { this.push(null); return; }
      setTimeout(() => this.push(data.subarray(i * 1000, (i + 1) * 1000)), 100);
    },
  });
  await pushBlob(port, data, trickle, `127.0.0.1:${port}`);
  // A client that stops sending mid-body is cut off once it has been idle that long.
  const start = await request(`http://127.0.0.1:${port}/v2/x/blobs/uploads/`, { method: 'POST' });
  const { text, ms } = await rawExchange(port, (s) => s.write(
    `PATCH ${start.headers.location} HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789`));
  assert.equal(text, '');
  assert.ok(ms >= 350 && ms < 5000, `closed after ${ms} ms`);
});

test('bodies: the read timeout also applies to a silent upstream (sidecar)', async (t) => {
  const stall = http.createServer(() => { /* never answers */ });
  const sport = await listen(t, stall);
  const { port } = await gateway(t, `upstreams: { v2: "http://127.0.0.1:${sport}" }\nproxy: { readtimeout: 300ms }`);
  const r = await request(`http://127.0.0.1:${port}/v2/`);
  assert.equal(r.status, 502);
  assert.deepEqual(r.json(), { errors: [{ code: 'UNKNOWN', message: 'upstream unavailable' }] });
});

test('smuggling: Content-Length together with Transfer-Encoding is rejected with 400 before the pipeline', async (t) => {
  const { port, cap } = await gateway(t);
  const { text } = await rawExchange(port, (s) => s.write(
    'POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nX-Request-Id: smuggle\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n'));
  assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.equal(text.match(/HTTP\/1\.1/g)!.length, 1, 'the smuggled second request must not be answered');
  assert.ok(!cap.lines.some((l) => l.reqId === 'smuggle'), 'the request never reached the pipeline');
  assert.ok(cap.lines.some((l) => l.msg === 'rejected a malformed or slow request' && l.status === 400));
});

test('slow headers: a client trickling its request head is cut off after proxy.headertimeout', async (t) => {
  const { port } = await gateway(t, 'proxy: { headertimeout: 500ms }');
  let timer: NodeJS.Timeout | undefined;
  const { text, ms } = await rawExchange(port, (s) => {
    s.write('GET /v2/ HTTP/1.1\r\nHost: a\r\n');
    let n = 0;
    timer = setInterval(() => { if (s.writable) s.write(`X-Slow-${n++}: x\r\n`); }, 50);
  });
  clearInterval(timer);
  assert.match(text, /^HTTP\/1\.1 408 /);
  assert.ok(ms >= 450 && ms < 5000, `closed after ${ms} ms`);
});

test('oversized headers: above proxy.maxheadersize → 431; below it works', async (t) => {
  const { port } = await gateway(t, 'proxy: { maxheadersize: 4096 }');
  assert.equal((await request(`http://127.0.0.1:${port}/v2/`, { headers: { 'X-Big': 'a'.repeat(3000) } })).status, 200);
  assert.equal((await request(`http://127.0.0.1:${port}/v2/`, { headers: { 'X-Big': 'a'.repeat(5000) } })).status, 431);
});

// ------------------------------------------------------------------ proxy headers and request ids

test('proxy headers: Host with port kept; X-Forwarded-* replaced for direct clients, appended for trusted proxies; request id forwarded', async (t) => {
  const up = await plainUpstream(t);
  const { port, cap } = await gateway(t, `upstreams: { v2: "http://127.0.0.1:${up.port}" }\nproxy: { trustedproxies: [127.0.0.2/32] }`);
  const spoof = { Host: 'registry.example:5043', 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Proto': 'https', 'X-Real-IP': '6.6.6.6', 'X-Request-Id': 'rid-1' };

  const direct = await request(`http://127.0.0.1:${port}/v2/`, { headers: spoof });
  assert.equal(direct.headers['x-request-id'], 'rid-1');
  let h = up.seen.at(-1)!;
  assert.equal(h.host, 'registry.example:5043');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-real-ip'], '127.0.0.1');
  assert.equal(h['x-request-id'], 'rid-1');

  // From 127.0.0.2 (a trusted load balancer): its view of the client is kept and the peer appended.
  await request(`http://127.0.0.1:${port}/v2/`, { headers: { ...spoof, 'X-Request-Id': 'rid-2' }, localAddress: '127.0.0.2' });
  h = up.seen.at(-1)!;
  assert.equal(h['x-forwarded-for'], '6.6.6.6, 127.0.0.2');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-real-ip'], '6.6.6.6');
  const line = await cap.waitFor((l) => l.msg === 'request completed' && l.reqId === 'rid-2');
  assert.equal(line.client, '6.6.6.6');
});

test('request ids: valid ones kept and echoed, invalid ones replaced; every pipeline line carries it', async (t) => {
  const { port, cap } = await gateway(t, '', { auth: true });
  for (const [given, want] of [
    ['abc-123_x.y', 'abc-123_x.y'], ['a'.repeat(128), 'a'.repeat(128)], ['a'.repeat(129), /^[0-9a-f-]{36}$/],
    ['bad id', /^[0-9a-f-]{36}$/], ['x/../y', /^[0-9a-f-]{36}$/], [undefined, /^[0-9a-f-]{36}$/],
  ] as [string | undefined, string | RegExp][]) {
    const r = await request(`http://127.0.0.1:${port}/v2/`, { headers: given === undefined ? {} : { 'X-Request-Id': given } });
    const id = String(r.headers['x-request-id']);
    if (typeof want === 'string') assert.equal(id, want); else assert.match(id, want);
    const line = await cap.waitFor((l) => l.msg === 'request completed' && l.reqId === id);
    assert.deepEqual([line.method, line.path, line.status, line.bytesIn, typeof line.durationMs], ['GET', '/v2/', 401, 0, 'number']);
    assert.equal(line.bytesOut, JSON.stringify(UNAUTHORIZED).length);
  }
});

// ------------------------------------------------------------------ v1 and upstream failures

test('v1: routed to the v1 upstream (Authorization stripped, no API-version header); pre-1.6 docker on other paths too', async (t) => {
  const v1 = await plainUpstream(t);
  const { port } = await gateway(t, `upstreams: { v2: embedded, v1: "http://127.0.0.1:${v1.port}" }`, { auth: true });
  assert.equal((await request(`http://127.0.0.1:${port}/v1/_ping`)).status, 401);
  const r = await request(`http://127.0.0.1:${port}/v1/_ping`, { headers: { Authorization: BASIC } });
  assert.deepEqual([r.status, r.text(), r.headerValues(API).length], [200, 'hello', 0]);
  assert.equal(v1.seen.at(-1)!.authorization, undefined);
  assert.equal(v1.seen.at(-1)!['x-forwarded-for'], '127.0.0.1');
  const old = await request(`http://127.0.0.1:${port}/_ping`, { headers: { Authorization: BASIC, 'User-Agent': 'docker/1.5.0 go/go1.4.1' } });
  assert.deepEqual([old.status, old.text()], [200, 'hello']);
  assert.equal((await request(`http://127.0.0.1:${port}/_ping`, { headers: { Authorization: BASIC, 'User-Agent': 'docker/1.6.0' } })).status, 404);
  // v2 still goes to the embedded registry.
  assert.equal((await request(`http://127.0.0.1:${port}/v2/`, { headers: { Authorization: BASIC } })).status, 200);
});

test('v1: upstreams.v1auth forward passes Authorization on; no v1 upstream → 404 JSON', async (t) => {
  const v1 = await plainUpstream(t);
  const fwd = await gateway(t, `upstreams: { v1: "http://127.0.0.1:${v1.port}", v1auth: forward }`, { auth: true });
  assert.equal((await request(`http://127.0.0.1:${fwd.port}/v1/search?q=x`, { headers: { Authorization: BASIC } })).status, 200);
  assert.equal(v1.seen.at(-1)!.authorization, BASIC);
  const none = await gateway(t);
  const r = await request(`http://127.0.0.1:${none.port}/v1/_ping`);
  assert.deepEqual([r.status, r.headers['content-type'], r.text()], [404, 'application/json; charset=utf-8', NOT_FOUND_BODY]);
});

test('sidecar: upstream down → 502 UNKNOWN (with API version, auth still first); the gateway keeps serving and recovers', async (t) => {
  const first = await plainUpstream(t);
  const upPort = first.port;
  await new Promise<void>((r) => { first.server.closeAllConnections(); first.server.close(() => r()); });
  const { port } = await gateway(t, `upstreams: { v2: "http://127.0.0.1:${upPort}" }`, { auth: true });
  assert.equal((await request(`http://127.0.0.1:${port}/v2/`)).status, 401);
  for (let i = 0; i < 3; i++) {
    const r = await request(`http://127.0.0.1:${port}/v2/`, { headers: { Authorization: BASIC } });
    assert.equal(r.status, 502);
    assert.deepEqual(r.json(), { errors: [{ code: 'UNKNOWN', message: 'upstream unavailable' }] });
    assert.equal(r.headerValues(API).length, 1);
  }
  await plainUpstream(t, upPort);   // the same port again: the upstream is back
  const ok = await request(`http://127.0.0.1:${port}/v2/`, { headers: { Authorization: BASIC } });
  assert.deepEqual([ok.status, ok.text()], [200, 'hello']);
});

// ------------------------------------------------------------------ TLS

test('tls: TLS 1.2 minimum, TLS 1.3, keep-alive, reload without dropping connections', async (t) => {
  const dir = await tempDir(t);
  const a = await makeTestCert();
  const b = await makeTestCert();
  const write = async (c: typeof a) => { await writeFile(join(dir, 'd.crt'), c.cert); await writeFile(join(dir, 'd.key'), c.key); };
  await write(a);
  const cfgDir = await tempDir(t);
  const config = loadConfigFromString(
    `listen: 127.0.0.1:0\nregistry: { storage: { inmemory: {} } }\ntls: { certificate: ${join(dir, 'd.crt')}, key: ${join(dir, 'd.key')} }\n`,
    join(cfgDir, 'gateway.yml'));
  const cap = captureLog();
  const server = await startServer(config, cap.log, { drainMs: 1000 });
  t.after(() => server.close());
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const port = Number(new URL(server.url).port);
  const handshake = (o: tls.ConnectionOptions) => withDeadline(new Promise<{ protocol: string | null; fp: string }>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...o }, () => {
      const r = { protocol: s.getProtocol(), fp: s.getPeerX509Certificate()!.fingerprint256 };
      s.end(); resolve(r);
    });
    s.on('error', reject);
  }), 10_000, 'the TLS handshake');
  assert.equal((await handshake({ maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
  assert.equal((await handshake({})).protocol, 'TLSv1.3');
  await assert.rejects(handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }));

  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: a.cert });
  t.after(() => agent.destroy());
  // node:https through `agent`: the test asserts on the TLS socket itself (reused, its protocol).
  const get = () => withDeadline(new Promise<{ status: number; reused: boolean; proto: string; api: unknown }>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/v2/', agent, servername: 'localhost' }, (res) => {
      const proto = (res.socket as tls.TLSSocket).getProtocol() ?? '';
      res.resume().on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket, proto, api: res.headers[API] }));
    });
    req.on('error', reject);
  }), 10_000, 'GET /v2/ over the keep-alive TLS agent');
  assert.deepEqual(await get(), { status: 200, reused: false, proto: 'TLSv1.3', api: 'registry/2.0' });
  assert.equal((await get()).reused, true);

  await write(b);
  await server.reload();
  assert.deepEqual(await get(), { status: 200, reused: true, proto: 'TLSv1.3', api: 'registry/2.0' });   // old connection still up
  assert.equal((await handshake({})).fp, b.fingerprint256);
  // X-Forwarded-Proto says https behind TLS is covered by forwarded.ts; here the log says tls: true.
  assert.ok(cap.lines.some((l) => l.msg === 'listening' && l.tls === true));
});

test('request ids reach the embedded registry\'s own log lines (once per line) through the CLI\'s logger mixin', async (t) => {
  const raw: string[] = [];
  const destination = new Writable({ write(c, _e, cb) { raw.push(...String(c).split('\n').filter(Boolean)); cb(); } });
  const log = createLogger({ level: 'info', destination, mixin: requestIdMixin });
  const config = loadConfigFromString('listen: 127.0.0.1:0\nregistry: { storage: { inmemory: {} } }\n', join(await tempDir(t), 'gateway.yml'));
  const server = await startServer(config, log, { drainMs: 1000 });
  t.after(() => server.close());
  const port = Number(new URL(server.url).port);
  assert.equal((await request(`http://127.0.0.1:${port}/v2/some/repo/manifests/latest`, { headers: { 'X-Request-Id': 'mix-1' } })).status, 404);
  const mine = raw.filter((l) => l.includes('mix-1'));
  const registryLine = mine.map((l) => JSON.parse(l)).find((l) => l.module === 'registry');
  assert.ok(registryLine, `a registry line carries the id: ${mine.join('\n')}`);
  for (const l of mine) assert.equal(l.split('"reqId"').length, 2, `reqId once: ${l}`);
  assert.ok(!raw.some((l) => JSON.parse(l).module === 'registry' && JSON.parse(l).msg === 'request rejected' && !l.includes('"reqId"')));
});
