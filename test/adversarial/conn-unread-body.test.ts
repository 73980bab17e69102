// Issue 14, point 3: a request answered before its body was read (4xx before reading, 500 when storage fails
// mid-body, an upstream answering early) must say `Connection: close` and the server must close the socket,
// without waiting for the rest of the body; SIGTERM's drain must not wait for such sockets.
// Raw sockets declare a large body, send a little of it, and never send the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import { createRegistryApp } from '../../src/registry/api/app.js';
import { createDriver } from '../../src/registry/storage/factory.js';
import type { FileWriter, StorageDriver } from '../../src/registry/storage/driver.js';
import { startRegistry } from '../support/registry-server.js';
import { request } from '../support/http.js';
import { withDeadline } from '../support/wait.js';
import { BASIC, rawConnect, startBerth, type T } from './conn-support.js';

const DECLARED = 10 * 1024 * 1024;   // the body the client announces
const SENT = 16 * 1024;              // what it actually sends before going quiet

/** Sends `head` (with Content-Length: DECLARED) and SENT body bytes; the rest never comes. */
async function unreadBody(t: T, port: number, requestLine: string, headers: string[] = []) {
  const c = await rawConnect(t, port);
  c.socket.write(`${requestLine}\r\nHost: 127.0.0.1\r\n${headers.map((h) => `${h}\r\n`).join('')}`
    + `Content-Type: application/octet-stream\r\nContent-Length: ${DECLARED}\r\n\r\n`);
  c.socket.write(Buffer.alloc(SENT, 7));
  return c;
}

async function startUpload(url: string, repo: string): Promise<string> {
  const r = await request(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: BASIC } });
  assert.equal(r.status, 202);
  return r.headers.location!;
}

test('answered before the body is read (401, 404, 200): Connection: close, and the server closes the socket', async (t) => {
  const b = await startBerth(t, '', { auth: true });
  const upload = await startUpload(b.url, 'adv/unread');
  const cases: [what: string, line: string, headers: string[], status: number][] = [
    ['401: no credentials', `PATCH ${upload} HTTP/1.1`, [], 401],
    ['401: wrong password', `PATCH ${upload} HTTP/1.1`, [`Authorization: Basic ${Buffer.from('alice:nope').toString('base64')}`], 401],
    ['404: a path berth does not serve', 'POST /not-here HTTP/1.1', [], 404],
    ['404: an unknown upload session', 'PATCH /v2/adv/unread/blobs/uploads/00000000-0000-4000-8000-000000000000 HTTP/1.1', [`Authorization: ${BASIC}`], 404],
    ['200: a GET /v2/ that ignores its body', 'GET /v2/ HTTP/1.1', [`Authorization: ${BASIC}`], 200],
  ];
  for (const [what, line, headers, status] of cases) {
    const c = await unreadBody(t, b.port, line, headers);
    const r = await c.response(0, 10_000);
    assert.equal(r.status, status, what);
    assert.equal(r.headers.connection, 'close', `${what}: Connection header`);
    await c.waitClosed(`the server to close the socket after ${what}`, 10_000);
  }
});

test('a PATCH whose storage write fails mid-body (ENOSPC): 500, Connection: close, socket closed', async (t) => {
  const b = await startBerth(t, '', {
    auth: true,
    storage: '{ inmemory: {} }',
    app: (registry, log) => createRegistryApp(registry, { log, driver: failingUploads(createDriver('inmemory', {}), 1000) }),
  });
  const upload = await startUpload(b.url, 'adv/enospc');
  const c = await unreadBody(t, b.port, `PATCH ${upload} HTTP/1.1`, [`Authorization: ${BASIC}`]);
  const r = await c.response(0, 10_000);
  assert.equal(r.status, 500);
  assert.equal(r.headers.connection, 'close');
  assert.equal(JSON.parse(r.body).errors[0].code, 'UNKNOWN');
  await c.waitClosed('the server to close the socket after the 500', 10_000);
});

test('sidecar: an upstream that answers before reading the body: Connection: close towards the client, socket closed', async (t) => {
  const upstream = await startRegistry({ driver: 'inmemory' });
  t.after(() => upstream.close());
  const b = await startBerth(t, `upstreams: { v2: "${upstream.url}" }`, { auth: true });
  const c = await unreadBody(t, b.port,
    'PATCH /v2/adv/sidecar/blobs/uploads/00000000-0000-4000-8000-000000000000 HTTP/1.1', [`Authorization: ${BASIC}`]);
  const r = await c.response(0, 10_000);
  assert.equal(r.status, 404);
  assert.equal(r.headers.connection, 'close');
  await c.waitClosed('the server to close the socket after the upstream\'s early answer', 10_000);
});

test('sidecar: an upstream that fails (connection reset) while the body is unread: 502, Connection: close, socket closed', async (t) => {
  const broken = net.createServer((s) => s.destroy());
  broken.listen(0, '127.0.0.1');
  await once(broken, 'listening');
  t.after(() => new Promise<void>((r) => broken.close(() => r())));
  const b = await startBerth(t, `upstreams: { v2: "http://127.0.0.1:${(broken.address() as net.AddressInfo).port}" }`, { auth: true });
  const c = await unreadBody(t, b.port, 'PATCH /v2/adv/broken/blobs/uploads/x HTTP/1.1', [`Authorization: ${BASIC}`]);
  const r = await c.response(0, 10_000);
  assert.equal(r.status, 502);
  assert.equal(r.headers.connection, 'close');
  await c.waitClosed('the server to close the socket after the 502', 10_000);
});

test('SIGTERM drain does not wait for sockets answered with a body unread, nor for bare connections', async (t) => {
  const b = await startBerth(t, '', { auth: true, opts: { drainMs: 30_000 } });
  const answered = await unreadBody(t, b.port, 'POST /v2/adv/drain/blobs/uploads/ HTTP/1.1');   // 401, body unread
  assert.equal((await answered.response()).status, 401);
  const bare = await rawConnect(t, b.port);   // connected, never sends a byte
  const started = Date.now();
  await withDeadline(b.server.close(), 10_000, 'close() with a drain of 30 s');
  assert.ok(Date.now() - started < 10_000);
  await answered.waitClosed('the answered socket to be closed');
  await bare.waitClosed('the bare socket to be closed');
});

/** `inner`, except that writes to an upload's data file fail with ENOSPC once `after` bytes were written. */
function failingUploads(inner: StorageDriver, after: number): StorageDriver {
  const driver: StorageDriver = Object.create(inner);
  driver.writer = async (path, o) => {
    const w = await inner.writer(path, o);
    if (!path.includes('/_uploads/') || !path.endsWith('/data')) return w;
    let n = 0;
    const stream = new Writable({
      write(chunk: Buffer, enc, cb) {
        n += chunk.length;
        if (n <= after) { w.stream.write(chunk, enc, cb); return; }
        cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }));
      },
      final(cb) { w.stream.end(cb); },
    });
    const writer: FileWriter = { get size() { return w.size; }, stream, commit: (x) => w.commit(x), cancel: (x) => w.cancel(x) };
    return writer;
  };
  return driver;
}
