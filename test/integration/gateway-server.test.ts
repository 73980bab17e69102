// startServer in-process on real sockets: routing, request ids, the `request completed` line with
// byte counts, draining on close (finishing and cut-off cases) and IPv6 listen addresses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { networkInterfaces } from 'node:os';
import { loadConfigFromString } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { startServer, NOT_FOUND_BODY } from '../../src/gateway/server.js';
import { request } from '../support/http.js';
import { waitUntil, withDeadline } from '../support/wait.js';

/** A logger whose JSON lines land in `lines`; `waitFor` resolves when a matching line arrives (within 10 s). */
function capturingLogger(level = 'info') {
  const lines: Record<string, any>[] = [];
  const waiters: { pred: (l: Record<string, any>) => boolean; resolve: (l: Record<string, any>) => void }[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const text of String(chunk).split('\n').filter(Boolean)) {
        const line = JSON.parse(text);
        lines.push(line);
        for (const w of [...waiters]) if (w.pred(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
      }
      cb();
    },
  });
  const waitFor = (what: string, pred: (l: Record<string, any>) => boolean) => withDeadline(new Promise<Record<string, any>>((resolve) => {
    const hit = lines.find(pred);
    if (hit) resolve(hit); else waiters.push({ pred, resolve });
  }), 10_000, `log line: ${what}`, () => `last lines: ${JSON.stringify(lines.slice(-5))}`);
  return { log: createLogger({ level, destination }), lines, waitFor };
}

async function start(t: { after(fn: () => Promise<void>): void }, opts: { listen?: string; drainMs?: number; level?: string } = {}) {
  const config = loadConfigFromString(`listen: "${opts.listen ?? '127.0.0.1:0'}"\nregistry: { storage: { inmemory: {} } }\n`, '/tmp/gateway.yml');
  const cap = capturingLogger(opts.level);
  const server = await startServer(config, cap.log, { drainMs: opts.drainMs });
  t.after(() => server.close());
  return { server, ...cap };
}

test('routes: /v2/ to the registry, / 200 (the load balancers\' probe), anything else 404 UNSUPPORTED (HEAD without body)', async (t) => {
  const { server } = await start(t);
  const v2 = await request(`${server.url}/v2/`);
  assert.equal(v2.status, 200);
  assert.equal(v2.headers['docker-distribution-api-version'], 'registry/2.0');
  const root = await request(`${server.url}/`);
  assert.deepEqual([root.status, root.headers['cache-control'], root.text()], [200, 'no-cache', '']);
  for (const path of ['/v2x', '/v1/search', '/favicon.ico?x=1', '//']) {
    const r = await request(`${server.url}${path}`);
    assert.equal(r.status, 404, path);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.text(), NOT_FOUND_BODY);
  }
  const head = await request(`${server.url}/other`, { method: 'HEAD' });
  assert.equal(head.status, 404);
  assert.equal(head.text(), '');
});

test('request ids: a valid X-Request-Id is kept, anything else replaced by a UUID; echoed', async (t) => {
  const { server, waitFor } = await start(t);
  const cases: [string | undefined, string | RegExp][] = [
    ['abc-123_x.y', 'abc-123_x.y'],
    ['a'.repeat(128), 'a'.repeat(128)],
    ['a'.repeat(129), /^[0-9a-f-]{36}$/],
    ['bad id', /^[0-9a-f-]{36}$/],
    ['x/../y', /^[0-9a-f-]{36}$/],
    [undefined, /^[0-9a-f-]{36}$/],
  ];
  for (const [given, want] of cases) {
    const r = await request(`${server.url}/v2/`, { headers: given === undefined ? {} : { 'X-Request-Id': given } });
    const id = String(r.headers['x-request-id']);
    if (typeof want === 'string') assert.equal(id, want); else assert.match(id, want);
    const line = await waitFor(`request completed ${id}`, (l) => l.msg === 'request completed' && l.reqId === id);
    assert.equal(line.status, 200);
  }
});

test('request completed: method, path without query, status, duration, body bytes in and out', async (t) => {
  const { server, waitFor } = await start(t);
  const post = await request(`${server.url}/v2/logs/test/blobs/uploads/?secret=s3cr3t`, { method: 'POST' });
  assert.equal(post.status, 202, post.text());
  const location = new URL(String(post.headers.location), server.url).toString();
  const patch = await request(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'X-Request-Id': 'p1' }, body: 'x'.repeat(1000) });
  assert.equal(patch.status, 202, patch.text());
  const line = await waitFor('request completed p1', (l) => l.reqId === 'p1' && l.msg === 'request completed');
  assert.equal(line.method, 'PATCH');
  assert.equal(line.path, new URL(location).pathname);
  assert.equal(line.status, 202);
  assert.equal(line.bytesIn, 1000);
  assert.equal(typeof line.durationMs, 'number');
  assert.equal(line.level, 30);

  const miss = await request(`${server.url}/v2/logs/test/manifests/latest?token=t0p`, { headers: { 'X-Request-Id': 'g1' } });
  assert.equal(miss.status, 404);
  const l2 = await waitFor('request completed g1', (l) => l.reqId === 'g1' && l.msg === 'request completed');
  assert.equal(l2.path, '/v2/logs/test/manifests/latest');
  assert.equal(l2.bytesOut, miss.body.length);
  assert.equal(l2.bytesIn, 0);
});

/** Starts an upload PATCH that sends part of its body and stays open (a raw request: request() sends whole
 *  bodies); its response is awaited for at most 10 s. */
async function openUpload(url: string, id: string) {
  const post = await request(`${url}/v2/drain/test/blobs/uploads/`, { method: 'POST' });
  assert.equal(post.status, 202, post.text());
  const req = httpRequest(new URL(String(post.headers.location), url), {
    method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'X-Request-Id': id },
  });
  const response = withDeadline(new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
    req.once('response', (res) => { res.resume().once('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection })); });
    req.once('error', reject);
  }), 10_000, `the response to PATCH ${id}`);
  req.write('part one');
  return { req, response };
}

test('close(): refuses new connections, lets the request in flight finish with Connection: close', async (t) => {
  const { server, waitFor } = await start(t, { level: 'debug' });
  const up = await openUpload(server.url, 'inflight');
  await waitFor('request started inflight', (l) => l.reqId === 'inflight' && l.msg === 'request started');
  const closed = server.close();
  await waitFor('draining', (l) => /draining/.test(l.msg));
  await assert.rejects(request(`${server.url}/v2/`, { fresh: true }), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  up.req.end(' and two');
  assert.deepEqual(await up.response, { status: 202, connection: 'close' });
  await closed;
  const line = await waitFor('request completed inflight', (l) => l.reqId === 'inflight' && l.msg === 'request completed');
  assert.equal(line.bytesIn, 16);
});

test('close(): after drainMs, connections still busy are cut and close() resolves', async (t) => {
  const { server, waitFor } = await start(t, { drainMs: 50, level: 'debug' });
  const up = await openUpload(server.url, 'stuck');
  await waitFor('request started stuck', (l) => l.reqId === 'stuck' && l.msg === 'request started');
  await server.close();
  await assert.rejects(up.response, (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET' || err.code === 'EPIPE');
  await waitFor('drain timeout', (l) => /drain timeout/.test(l.msg));
  const line = await waitFor('request completed stuck', (l) => l.reqId === 'stuck' && l.msg === 'request completed');
  assert.equal(line.aborted, true);
});

const hasIPv6Loopback = Object.values(networkInterfaces()).flat().some((i) => i?.family === 'IPv6' && i.address === '::1');

test('listen on [::1]:0 gives a bracketed URL', { skip: !hasIPv6Loopback && !process.env.CI && 'no IPv6 loopback' }, async (t) => {
  const { server } = await start(t, { listen: '[::1]:0' });
  assert.match(server.url, /^http:\/\/\[::1\]:\d+$/);
  const r = await request(`${server.url}/v2/`);
  assert.equal(r.status, 200);
});

test('a port in use fails startServer with EADDRINUSE (and the app is closed)', async (t) => {
  const { server } = await start(t);
  const port = new URL(server.url).port;
  const config = loadConfigFromString(`listen: 127.0.0.1:${port}\nregistry: { storage: { inmemory: {} } }\n`, '/tmp/g.yml');
  const cap = capturingLogger();
  await assert.rejects(startServer(config, cap.log), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
});

test('uploadTraffic: start() when a request with a body of 1 MiB or more (or chunked) begins, end() when its response closes, also when the client goes away', async (t) => {
  const config = loadConfigFromString('listen: "127.0.0.1:0"\nregistry: { storage: { inmemory: {} } }\n', '/tmp/gateway.yml');
  const events: string[] = [];
  let active = 0;
  const server = await startServer(config, capturingLogger().log, {
    uploadTraffic: { start() { active++; events.push(`start ${active}`); }, end() { active--; events.push(`end ${active}`); } },
  });
  t.after(() => server.close());
  const post = await request(`${server.url}/v2/up/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
  assert.equal(post.status, 202);
  const loc = new URL(post.headers.location!, server.url).toString();
  await request(`${server.url}/v2/`);
  // The server's response 'close' can come just after the client has read the response: wait for the count.
  const settled = (n: number) => waitUntil(`${n} uploadTraffic events`, () => events.length >= n, { intervalMs: 5, detail: () => events.join(', ') });
  // A stream body goes out chunked (Transfer-Encoding: chunked, no length): it counts.
  await request(loc, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: Readable.from([Buffer.from('small')]) });
  await settled(2);
  assert.deepEqual(events, ['start 1', 'end 0']);
  const big = 'x'.repeat(1024 * 1024);
  const patch = await request(loc, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-length': String(big.length) }, body: big });
  assert.equal(patch.status, 202, patch.text());
  await settled(4);
  assert.deepEqual(events.slice(2), ['start 1', 'end 0']);
  // A client that sends the headers of a big upload and vanishes (a raw request): the response closes, end() still comes.
  const gone = httpRequest(loc, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-length': String(8 * 1024 * 1024) } });
  gone.on('error', () => {});
  gone.write('x'.repeat(64 * 1024));
  await waitUntil('start() for the vanishing upload', () => active !== 0, { intervalMs: 5 });
  gone.destroy();
  await waitUntil('end() after the client went away', () => active === 0, { intervalMs: 5 });
  assert.deepEqual(events.slice(4), ['start 1', 'end 0']);
});
