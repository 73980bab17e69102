// The sidecar-mode proxy against real upstreams: the Distribution 2.8.2 binary, and plain node
// servers for behaviour Distribution cannot be made to show (missing header, stalls, resets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { once, EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { createUpstreamProxy, parseUpstreamTarget, type UpstreamProxyOptions } from '../../src/gateway/upstream-proxy.js';
import { applyForwardedHeaders } from '../../src/gateway/forwarded.js';
import { silentLogger } from '../../src/log/logger.js';
import { captureLog, makeTestCert } from '../support/tls-certs.js';
import { distributionAvailable, startDistribution } from '../support/distribution.js';
import { request } from '../support/http.js';
import { withDeadline } from '../support/wait.js';

type T = { after(fn: () => unknown): void };
const MiB = 1024 * 1024;
const OCI_502 = { errors: [{ code: 'UNKNOWN', message: 'upstream unavailable' }] };

async function listen(t: T, server: http.Server | net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => {
    if ('closeAllConnections' in server) server.closeAllConnections();   // http and https servers
    server.close(() => r());
  }));
  return (server.address() as AddressInfo).port;
}

/** The gateway side: forwarded headers, then the proxy, as the request pipeline will wire it. */
async function startGateway(t: T, opts: Partial<UpstreamProxyOptions> & { target: string }, presetApiHeader = true) {
  const proxy = createUpstreamProxy({ readTimeoutMs: 10_000, log: silentLogger(), ...opts });
  t.after(() => proxy.close());
  let n = 0;
  const server = http.createServer((req, res) => {
    const given = req.headers['x-request-id'];
    const reqId = typeof given === 'string' ? given : `req-${++n}`;
    res.setHeader('X-Request-Id', reqId);
    if (presetApiHeader) res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');   // pipeline step 4
    applyForwardedHeaders(req, { trustedProxies: [], proto: 'http' });
    proxy.handle(req, res, { reqId });
  });
  const port = await listen(t, server);
  return { port, host: `127.0.0.1:${port}`, server };
}

/** A plain upstream whose handler the test swaps; it records every request's headers. */
async function plainUpstream(t: T) {
  const seen: http.IncomingHttpHeaders[] = [];
  const events = new EventEmitter();
  let handler: http.RequestListener = (req, res) => { req.resume(); res.end('ok'); };
  const server = http.createServer((req, res) => { seen.push({ ...req.headers, ':url': req.url }); events.emit('request', req, res); handler(req, res); });
  const port = await listen(t, server);
  return { port, seen, events, server, set(h: http.RequestListener) { handler = h; } };
}

// ---------------------------------------------------------------------------------------------
// (a) + (d): the real Distribution binary

const needsDistribution = !distributionAvailable() && process.env.CI !== 'true'
  ? `docker-registry not found at ${process.env.DISTRIBUTION_BIN ?? '/usr/bin/docker-registry'} (set DISTRIBUTION_BIN)` : false;

test('Distribution: /v2/ answers through the proxy with exactly one API version header', { skip: needsDistribution }, async (t) => {
  const dist = await startDistribution(t);
  for (const preset of [false, true]) {   // Distribution sends its own: one header either way
    const gw = await startGateway(t, { target: dist.url }, preset);
    const r = await request(`http://127.0.0.1:${gw.port}/v2/`);
    assert.equal(r.status, 200);
    assert.equal(r.headerValues('docker-distribution-api-version').length, 1);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(r.headers['x-request-id'], 'req-1');
    const missing = await request(`http://127.0.0.1:${gw.port}/v2/no/such/manifests/latest`, { headers: { 'X-Request-Id': 'abc.123' } });
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body.toString()).errors[0].code, 'MANIFEST_UNKNOWN');
    assert.equal(missing.headerValues('docker-distribution-api-version').length, 1);
    assert.equal(missing.headers['x-request-id'], 'abc.123');
  }
});

test('Distribution: a 32 MiB chunked upload streams through; Location/Range/UUID pass unchanged', { skip: needsDistribution }, async (t) => {
  const dist = await startDistribution(t);
  const gw = await startGateway(t, { target: dist.url });
  const repo = 'berth/proxy-test';
  const hash = createHash('sha256');
  const chunk = (size: number) => Readable.from((function* () {
    for (let left = size; left > 0; left -= 256 * 1024) {
      const b = randomBytes(Math.min(left, 256 * 1024));
      hash.update(b);
      yield b;
    }
  })());

  const start = await request(`http://127.0.0.1:${gw.port}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': 0 } });
  assert.equal(start.status, 202, start.body.toString());
  const uuid = start.headers['docker-upload-uuid'] as string;
  assert.match(uuid, /^[0-9a-f-]{36}$/);
  // Distribution builds absolute URLs from the Host header: the client's host:port survived.
  const loc1 = new URL(start.headers.location!);
  assert.equal(loc1.origin, `http://${gw.host}`);
  assert.equal(loc1.pathname, `/v2/${repo}/blobs/uploads/${uuid}`);
  assert.equal(start.headers.range, '0-0');

  // first chunk: Transfer-Encoding chunked, no Content-Range
  const p1 = await request(`http://127.0.0.1:${gw.port}${loc1.pathname + loc1.search}`, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' }, body: chunk(16 * MiB) });
  assert.equal(p1.status, 202, p1.body.toString());
  assert.equal(p1.headers.range, `0-${16 * MiB - 1}`);
  assert.equal(p1.headers['docker-upload-uuid'], uuid);
  const loc2 = new URL(p1.headers.location!);
  assert.equal(loc2.origin, `http://${gw.host}`);

  // second chunk: Content-Length + Content-Range
  const p2 = await request(`http://127.0.0.1:${gw.port}${loc2.pathname + loc2.search}`, { method: 'PATCH', headers: {
    'Content-Type': 'application/octet-stream', 'Content-Length': 16 * MiB, 'Content-Range': `${16 * MiB}-${32 * MiB - 1}`,
  }, body: chunk(16 * MiB) });
  assert.equal(p2.status, 202, p2.body.toString());
  assert.equal(p2.headers.range, `0-${32 * MiB - 1}`);

  const digest = `sha256:${hash.digest('hex')}`;
  const loc3 = new URL(p2.headers.location!);
  loc3.searchParams.set('digest', digest);
  const put = await request(`http://127.0.0.1:${gw.port}${loc3.pathname + loc3.search}`, { method: 'PUT', headers: { 'Content-Length': 0 } });
  assert.equal(put.status, 201, put.body.toString());
  assert.equal(put.headers['docker-content-digest'], digest);
  assert.equal(put.headers.location, `http://${gw.host}/v2/${repo}/blobs/${digest}`);
  assert.equal(put.headerValues('docker-distribution-api-version').length, 1);

  // and back out, streamed, with a Range request passed through
  const got = await withDeadline(new Promise<{ status: number; len: string | undefined; digest: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: gw.port, path: `/v2/${repo}/blobs/${digest}`, agent: false }, (res) => {
      const h = createHash('sha256');
      res.on('data', (c) => h.update(c));
      res.on('end', () => resolve({ status: res.statusCode!, len: res.headers['content-length'], digest: `sha256:${h.digest('hex')}` }));
      res.on('error', reject);
    }).on('error', reject);
  }), 60_000, 'the streamed GET of the 32 MiB blob');
  assert.deepEqual(got, { status: 200, len: String(32 * MiB), digest });
  const head = await request(`http://127.0.0.1:${gw.port}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  assert.deepEqual([head.status, head.headers['content-length'], head.body.length], [200, String(32 * MiB), 0]);
  const part = await request(`http://127.0.0.1:${gw.port}/v2/${repo}/blobs/${digest}`, { headers: { Range: 'bytes=0-9' } });
  assert.equal(part.status, 206);
  assert.equal(part.body.length, 10);
});

// ---------------------------------------------------------------------------------------------
// (b) a plain upstream

test('plain upstream: API version header added once, other headers and bodies pass unchanged', async (t) => {
  const up = await plainUpstream(t);
  up.set((req, res) => {
    req.resume();
    res.setHeader('Location', 'http://elsewhere.example:5000/v2/x/blobs/uploads/u-1?_state=a%2Fb');
    res.setHeader('Range', '0-1023');
    res.setHeader('Docker-Upload-UUID', 'u-1');
    res.setHeader('Docker-Content-Digest', 'sha256:' + '0'.repeat(64));
    res.setHeader('OCI-Subject', 'sha256:' + '1'.repeat(64));
    res.setHeader('Link', '</v2/_catalog?last=b&n=2>; rel="next"');
    res.setHeader('ETag', '"sha256:abc"');
    res.setHeader('Content-Type', 'application/json');
    res.statusCode = req.method === 'DELETE' ? 202 : 200;
    res.end(req.method === 'HEAD' ? undefined : '{"ok":true}');
  });
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}` });
  const r = await request(`http://127.0.0.1:${gw.port}/v2/x/tags/list?n=2&last=a%2Fb`, { headers: {
    Host: 'registry.example:5443', Authorization: 'Basic dTpw', 'X-Forwarded-For': '6.6.6.6', 'User-Agent': 'docker/24.0.5',
  } });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), '{"ok":true}');
  assert.equal(r.headerValues('docker-distribution-api-version').length, 1);
  assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  assert.equal(r.headers.location, 'http://elsewhere.example:5000/v2/x/blobs/uploads/u-1?_state=a%2Fb');   // not rewritten
  assert.equal(r.headers.range, '0-1023');
  assert.equal(r.headers['docker-upload-uuid'], 'u-1');
  assert.equal(r.headers['docker-content-digest'], 'sha256:' + '0'.repeat(64));
  assert.equal(r.headers['oci-subject'], 'sha256:' + '1'.repeat(64));
  assert.equal(r.headers.link, '</v2/_catalog?last=b&n=2>; rel="next"');
  assert.equal(r.headers.etag, '"sha256:abc"');

  const seen = up.seen.at(-1)!;
  assert.equal(seen[':url'], '/v2/x/tags/list?n=2&last=a%2Fb');
  assert.equal(seen.host, 'registry.example:5443');   // Host preserved (nginx: $http_host)
  assert.equal(seen.authorization, 'Basic dTpw');      // passed by default, as nginx does
  assert.equal(seen['x-request-id'], 'req-1');
  assert.equal(seen['x-forwarded-for'], '127.0.0.1');  // the spoofed value was dropped
  assert.equal(seen['x-forwarded-proto'], 'http');
  assert.equal(seen['x-real-ip'], '127.0.0.1');
  assert.equal(seen['user-agent'], 'docker/24.0.5');

  const head = await request(`http://127.0.0.1:${gw.port}/v2/x/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['docker-distribution-api-version'], 'registry/2.0');
  const del = await request(`http://127.0.0.1:${gw.port}/v2/x/manifests/sha256:${'0'.repeat(64)}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
});

test('plain upstream: the path is sent byte for byte (no dot-segment or escape normalisation)', async (t) => {
  const up = await plainUpstream(t);
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}` });
  for (const path of ['/v2/a/../b/manifests/x', '/v2/a/%2e%2e/b/tags/list', '/v2//double/slash/', '/v2/a/blobs/uploads/u?_state=x%3D%3D&digest=sha256%3Aab']) {
    const r = await request(`http://127.0.0.1:${gw.port}${path}`);
    assert.equal(r.status, 200);
    assert.equal(up.seen.at(-1)![':url'], path);
  }
});

test('options: stripAuthorization drops credentials; the proxy adds no API version header of its own (v1)', async (t) => {
  const up = await plainUpstream(t);
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}`, stripAuthorization: true }, false);
  const r = await request(`http://127.0.0.1:${gw.port}/v2/`, { headers: { Authorization: 'Basic dTpw' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['docker-distribution-api-version'], undefined);
  assert.equal(up.seen.at(-1)!.authorization, undefined);
});

test('streams both ways: bytes reach the other side before either body ends', async (t) => {
  const up = await plainUpstream(t);
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}` });

  // upload: the upstream sees the first chunk while the client is still sending
  const firstChunk = new Promise<http.IncomingMessage>((resolve) => up.set((req, res) => {
    req.once('data', () => resolve(req));
    req.on('end', () => res.end('done'));
  }));
  const creq = http.request({ host: '127.0.0.1', port: gw.port, method: 'PATCH', path: '/v2/x/blobs/uploads/u', agent: false,
    headers: { 'Transfer-Encoding': 'chunked' } });
  const cres = once(creq, 'response');
  creq.write(Buffer.alloc(1024, 1));
  const upstreamReq = await withDeadline(firstChunk, 10_000, 'the first chunk at the upstream');
  assert.equal(upstreamReq.complete, false);
  creq.end(Buffer.alloc(1024, 2));
  const [res] = await withDeadline(cres, 10_000, 'the response to the PATCH') as [http.IncomingMessage];
  res.resume();
  await withDeadline(once(res, 'end'), 10_000, 'the end of the PATCH response');

  // download: the client sees the first chunk while the upstream is still writing
  let finish!: () => void;
  up.set((req, res2) => {
    req.resume();
    res2.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    res2.write('first');
    finish = () => res2.end('last');
  });
  const dreq = http.get({ host: '127.0.0.1', port: gw.port, path: '/v2/x/blobs/sha256:aa', agent: false });
  const [dres] = await withDeadline(once(dreq, 'response'), 10_000, 'the download response') as [http.IncomingMessage];
  const [first] = await withDeadline(once(dres, 'data'), 10_000, 'the first bytes of the download');
  assert.equal(String(first), 'first');
  finish();
  let rest = '';
  dres.on('data', (d) => { rest += d; });
  await withDeadline(once(dres, 'end'), 10_000, 'the end of the download');
  assert.equal(rest, 'last');
});

// ---------------------------------------------------------------------------------------------
// (c) upstream down

test('upstream refusing connections: 502 OCI UNKNOWN, every time, without crashing', async (t) => {
  const cap = captureLog();
  // Port 1 (tcpmux) has no listener on a test machine: a deterministic ECONNREFUSED.
  const gw = await startGateway(t, { target: 'http://127.0.0.1:1', log: cap.log });
  for (const [method, body] of [['GET', undefined], ['POST', Buffer.alloc(64 * 1024)], ['HEAD', undefined]] as const) {
    const r = await request(`http://127.0.0.1:${gw.port}/v2/x/blobs/uploads/`, { method, headers: { 'X-Request-Id': `down-${method}` }, body });
    assert.equal(r.status, 502, method);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers['x-request-id'], `down-${method}`);
    if (method !== 'HEAD') assert.deepEqual(JSON.parse(r.body.toString()), OCI_502);
  }
  const logged = cap.lines.filter((l) => l.msg === 'upstream unavailable');
  assert.equal(logged.length, 3);
  assert.equal(logged[0]!.err.code, 'ECONNREFUSED');
  assert.equal(logged[0]!.reqId, 'down-GET');
});

test('upstream resetting connections: 502, then the proxy serves again once it recovers', async (t) => {
  let mode: 'reset' | 'ok' = 'reset';
  const server = http.createServer((req, res) => { req.resume(); res.end('recovered'); });
  server.on('connection', (s: net.Socket) => { if (mode === 'reset') s.destroy(); });
  const port = await listen(t, server);
  const gw = await startGateway(t, { target: `http://127.0.0.1:${port}` });
  const r1 = await request(`http://127.0.0.1:${gw.port}/v2/`);
  assert.equal(r1.status, 502);
  assert.deepEqual(JSON.parse(r1.body.toString()), OCI_502);
  assert.equal(r1.headerValues('docker-distribution-api-version').length, 1);
  mode = 'ok';
  const r2 = await request(`http://127.0.0.1:${gw.port}/v2/`);
  assert.deepEqual([r2.status, r2.body.toString()], [200, 'recovered']);
});

test('upstream dying mid-response: the client connection is closed, not left hanging', async (t) => {
  const up = await plainUpstream(t);
  up.set((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Length': 1000 });
    res.write('partial', () => res.socket!.destroy());
  });
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}` });
  const creq = http.get({ host: '127.0.0.1', port: gw.port, path: '/v2/x/blobs/sha256:aa', agent: false });
  const [res] = await withDeadline(once(creq, 'response'), 10_000, 'the response') as [http.IncomingMessage];
  assert.equal(res.statusCode, 200);
  res.resume();
  await withDeadline(once(res, 'aborted'), 10_000, 'the client connection to be closed');
  up.set((req, res2) => { req.resume(); res2.end('fine'); });
  const again = await request(`http://127.0.0.1:${gw.port}/v2/`);
  assert.deepEqual([again.status, again.body.toString()], [200, 'fine']);
});

test('idle timeout: a silent upstream gets 502; a stall mid-body closes the client connection', async (t) => {
  const up = await plainUpstream(t);
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}`, readTimeoutMs: 200 });

  up.set((req) => { req.resume(); });   // never answers
  const closed = new Promise<void>((resolve) => up.events.once('request', (_req, res: http.ServerResponse) => res.once('close', resolve)));
  const r = await request(`http://127.0.0.1:${gw.port}/v2/`);
  assert.equal(r.status, 502);
  await withDeadline(closed, 10_000, 'the upstream request to be torn down');   // and the upstream request was torn down

  up.set((req, res) => { req.resume(); res.writeHead(200, { 'Content-Length': 100 }); res.write('some'); });   // stalls
  const creq = http.get({ host: '127.0.0.1', port: gw.port, path: '/v2/x/blobs/sha256:aa', agent: false });
  const [res] = await withDeadline(once(creq, 'response'), 10_000, 'the response') as [http.IncomingMessage];
  res.resume();
  await withDeadline(once(res, 'aborted'), 10_000, 'the stalled response to be cut off');
});

// ---------------------------------------------------------------------------------------------
// (e) client abort

test('client abort mid-upload destroys the upstream request', async (t) => {
  const up = await plainUpstream(t);
  const upstreamSaw = new Promise<http.IncomingMessage>((resolve) => up.set((req) => { req.once('data', () => resolve(req)); }));
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}` });
  const creq = http.request({ host: '127.0.0.1', port: gw.port, method: 'PATCH', path: '/v2/x/blobs/uploads/u', agent: false,
    headers: { 'Content-Length': 10 * MiB } });
  creq.on('error', () => {});
  creq.write(Buffer.alloc(64 * 1024));
  const upReq = await withDeadline(upstreamSaw, 10_000, 'the upload at the upstream');
  const upErr = new Promise<Error>((resolve) => upReq.once('error', resolve));
  const upClosed = new Promise((resolve) => upReq.once('close', resolve));
  creq.destroy();
  await withDeadline(upClosed, 10_000, 'the upstream request to close');
  assert.equal(upReq.complete, false);
  assert.equal(((await withDeadline(upErr, 10_000, 'the upstream request error')) as NodeJS.ErrnoException).code, 'ECONNRESET');   // 'aborted'
});

test('client abort mid-download closes the upstream response', async (t) => {
  const up = await plainUpstream(t);
  const upstreamRes = new Promise<http.ServerResponse>((resolve) => up.set((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Length': 10 * MiB });
    res.write(Buffer.alloc(1024), () => resolve(res));
  }));
  const gw = await startGateway(t, { target: `http://127.0.0.1:${up.port}` });
  const creq = http.get({ host: '127.0.0.1', port: gw.port, path: '/v2/x/blobs/sha256:aa', agent: false });
  creq.on('error', () => {});
  const [res] = await withDeadline(once(creq, 'response'), 10_000, 'the download response') as [http.IncomingMessage];
  await withDeadline(once(res, 'data'), 10_000, 'the first bytes of the download');
  const upRes = await withDeadline(upstreamRes, 10_000, 'the upstream response');
  const upClosed = once(upRes, 'close');
  creq.destroy();
  await withDeadline(upClosed, 10_000, 'the upstream response to close');
  assert.equal(upRes.writableFinished, false);
});

test('https upstream: verified against the configured CA, refused without it', async (t) => {
  const cert = await makeTestCert();
  const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => { req.resume(); res.end(`tls ${req.url}`); });
  const port = await listen(t, server);
  const trusted = await startGateway(t, { target: `https://localhost:${port}`, ca: cert.cert });
  const ok = await request(`http://127.0.0.1:${trusted.port}/v2/`);
  assert.deepEqual([ok.status, ok.body.toString()], [200, 'tls /v2/']);
  assert.equal(ok.headers['docker-distribution-api-version'], 'registry/2.0');
  const cap = captureLog();
  const untrusted = await startGateway(t, { target: `https://localhost:${port}`, log: cap.log });
  const bad = await request(`http://127.0.0.1:${untrusted.port}/v2/`);
  assert.equal(bad.status, 502);
  assert.match(cap.lines.find((l) => l.msg === 'upstream unavailable')!.err.code, /SELF_SIGNED|UNABLE_TO_VERIFY/);
});

test('parseUpstreamTarget accepts http(s) origins only', () => {
  assert.equal(parseUpstreamTarget('http://registry:5000').origin, 'http://registry:5000');
  assert.equal(parseUpstreamTarget('https://[::1]:5000/').origin, 'https://[::1]:5000');
  for (const bad of ['registry:5000', 'ftp://x', 'http://u:p@x:5000', 'http://x:5000/v2', 'http://x:5000/?a=1', 'nonsense']) {
    assert.throws(() => parseUpstreamTarget(bad), (e: any) => e.code === 'BERTH_UPSTREAM_TARGET', bad);
  }
  assert.throws(() => createUpstreamProxy({ target: 'http://x:1', readTimeoutMs: 0, log: silentLogger() }), /readTimeoutMs/);
});
