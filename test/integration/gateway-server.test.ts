// startServer in-process on real sockets: routing, request ids, the `request completed` line with
// byte counts, draining on close (finishing and cut-off cases) and IPv6 listen addresses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { networkInterfaces } from 'node:os';
import { loadConfigFromString } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { startServer, NOT_FOUND_BODY } from '../../src/gateway/server.js';

/** A logger whose JSON lines land in `lines`; `waitFor` resolves when a matching line arrives. */
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
  const waitFor = (pred: (l: Record<string, any>) => boolean) => new Promise<Record<string, any>>((resolve) => {
    const hit = lines.find(pred);
    if (hit) resolve(hit); else waiters.push({ pred, resolve });
  });
  return { log: createLogger({ level, destination }), lines, waitFor };
}

async function start(t: { after(fn: () => Promise<void>): void }, opts: { listen?: string; drainMs?: number; level?: string } = {}) {
  const config = loadConfigFromString(`listen: "${opts.listen ?? '127.0.0.1:0'}"\nregistry: { storage: { inmemory: {} } }\n`, '/tmp/gateway.yml');
  const cap = capturingLogger(opts.level);
  const server = await startServer(config, cap.log, { drainMs: opts.drainMs });
  t.after(() => server.close());
  return { server, ...cap };
}

function send(url: string, method = 'GET', headers: Record<string, string> = {}, body?: string) {
  return new Promise<{ res: IncomingMessage; body: string }>((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => { text += c; }).on('end', () => resolve({ res, body: text }));
    });
    req.once('error', reject).end(body);
  });
}

test('routes: /v2/ to the registry, anything else 404 UNSUPPORTED (HEAD without body)', async (t) => {
  const { server } = await start(t);
  const v2 = await send(`${server.url}/v2/`);
  assert.equal(v2.res.statusCode, 200);
  assert.equal(v2.res.headers['docker-distribution-api-version'], 'registry/2.0');
  for (const path of ['/', '/v2x', '/v1/search', '/favicon.ico?x=1']) {
    const r = await send(`${server.url}${path}`);
    assert.equal(r.res.statusCode, 404, path);
    assert.equal(r.res.headers['content-type'], 'application/json');
    assert.equal(r.body, NOT_FOUND_BODY);
  }
  const head = await send(`${server.url}/other`, 'HEAD');
  assert.equal(head.res.statusCode, 404);
  assert.equal(head.body, '');
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
    const r = await send(`${server.url}/v2/`, 'GET', given === undefined ? {} : { 'X-Request-Id': given });
    const id = String(r.res.headers['x-request-id']);
    if (typeof want === 'string') assert.equal(id, want); else assert.match(id, want);
    const line = await waitFor((l) => l.msg === 'request completed' && l.reqId === id);
    assert.equal(line.status, 200);
  }
});

test('request completed: method, path without query, status, duration, body bytes in and out', async (t) => {
  const { server, waitFor } = await start(t);
  const post = await send(`${server.url}/v2/logs/test/blobs/uploads/?secret=s3cr3t`, 'POST');
  assert.equal(post.res.statusCode, 202, post.body);
  const location = new URL(String(post.res.headers.location), server.url).toString();
  const patch = await send(location, 'PATCH', { 'Content-Type': 'application/octet-stream', 'X-Request-Id': 'p1' }, 'x'.repeat(1000));
  assert.equal(patch.res.statusCode, 202, patch.body);
  const line = await waitFor((l) => l.reqId === 'p1' && l.msg === 'request completed');
  assert.equal(line.method, 'PATCH');
  assert.equal(line.path, new URL(location).pathname);
  assert.equal(line.status, 202);
  assert.equal(line.bytesIn, 1000);
  assert.equal(typeof line.durationMs, 'number');
  assert.equal(line.level, 30);

  const miss = await send(`${server.url}/v2/logs/test/manifests/latest?token=t0p`, 'GET', { 'X-Request-Id': 'g1' });
  assert.equal(miss.res.statusCode, 404);
  const l2 = await waitFor((l) => l.reqId === 'g1' && l.msg === 'request completed');
  assert.equal(l2.path, '/v2/logs/test/manifests/latest');
  assert.equal(l2.bytesOut, Buffer.byteLength(miss.body));
  assert.equal(l2.bytesIn, 0);
});

/** Starts an upload PATCH that sends part of its body and stays open. */
async function openUpload(url: string, id: string) {
  const post = await send(`${url}/v2/drain/test/blobs/uploads/`, 'POST');
  assert.equal(post.res.statusCode, 202, post.body);
  const req = request(new URL(String(post.res.headers.location), url), {
    method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'X-Request-Id': id },
  });
  const response = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
    req.once('response', (res) => { res.resume().once('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection })); });
    req.once('error', reject);
  });
  req.write('part one');
  return { req, response };
}

test('close(): refuses new connections, lets the request in flight finish with Connection: close', async (t) => {
  const { server, waitFor } = await start(t, { level: 'debug' });
  const up = await openUpload(server.url, 'inflight');
  await waitFor((l) => l.reqId === 'inflight' && l.msg === 'request started');
  const closed = server.close();
  await waitFor((l) => /draining/.test(l.msg));
  await assert.rejects(send(`${server.url}/v2/`), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  up.req.end(' and two');
  assert.deepEqual(await up.response, { status: 202, connection: 'close' });
  await closed;
  const line = await waitFor((l) => l.reqId === 'inflight' && l.msg === 'request completed');
  assert.equal(line.bytesIn, 16);
});

test('close(): after drainMs, connections still busy are cut and close() resolves', async (t) => {
  const { server, waitFor } = await start(t, { drainMs: 50, level: 'debug' });
  const up = await openUpload(server.url, 'stuck');
  await waitFor((l) => l.reqId === 'stuck' && l.msg === 'request started');
  await server.close();
  await assert.rejects(up.response, (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET' || err.code === 'EPIPE');
  await waitFor((l) => /drain timeout/.test(l.msg));
  const line = await waitFor((l) => l.reqId === 'stuck' && l.msg === 'request completed');
  assert.equal(line.aborted, true);
});

const hasIPv6Loopback = Object.values(networkInterfaces()).flat().some((i) => i?.family === 'IPv6' && i.address === '::1');

test('listen on [::1]:0 gives a bracketed URL', { skip: !hasIPv6Loopback && !process.env.CI && 'no IPv6 loopback' }, async (t) => {
  const { server } = await start(t, { listen: '[::1]:0' });
  assert.match(server.url, /^http:\/\/\[::1\]:\d+$/);
  const r = await send(`${server.url}/v2/`);
  assert.equal(r.res.statusCode, 200);
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
  const post = await send(`${server.url}/v2/up/blobs/uploads/`, 'POST', { 'content-length': '0' });
  assert.equal(post.res.statusCode, 202);
  const loc = new URL(post.res.headers.location!, server.url).toString();
  await send(`${server.url}/v2/`);
  // The server's response 'close' can come just after the client has read the response: wait for the count.
  const settled = async (n: number) => { while (events.length < n) await new Promise((r) => setTimeout(r, 5)); };
  await send(loc, 'PATCH', { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' }, 'small');   // no length: counts
  await settled(2);
  assert.deepEqual(events, ['start 1', 'end 0']);
  const big = 'x'.repeat(1024 * 1024);
  const patch = await send(loc, 'PATCH', { 'content-type': 'application/octet-stream', 'content-length': String(big.length) }, big);
  assert.equal(patch.res.statusCode, 202, patch.body);
  await settled(4);
  assert.deepEqual(events.slice(2), ['start 1', 'end 0']);
  // A client that sends the headers of a big upload and vanishes: the response closes, end() still comes.
  const gone = request(loc, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-length': String(8 * 1024 * 1024) } });
  gone.on('error', () => {});
  gone.write('x'.repeat(64 * 1024));
  while (active === 0) await new Promise((r) => setTimeout(r, 5));
  gone.destroy();
  while (active !== 0) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(events.slice(4), ['start 1', 'end 0']);
});
