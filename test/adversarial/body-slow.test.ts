// Issue 14, point 8: an authenticated client trickling an upload body (a few bytes now and then) held a
// connection, a file and an upload lock indefinitely. With proxy.bodytimeout / proxy.bodyminrate (Apache
// mod_reqtimeout's body=…,MinRate=…) a body slower than the rate after the grace period gets 408 and the
// connection is closed; the upload session keeps what arrived and stays resumable. Bodies at a fair rate pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createRegistryApp } from '../../src/registry/api/app.js';
import { createDriver } from '../../src/registry/storage/factory.js';
import type { FileWriter, StorageDriver } from '../../src/registry/storage/driver.js';
import { request } from '../support/http.js';
import { BASIC, rawConnect, startBerth, type T } from './conn-support.js';

const CONFIG = 'proxy: { bodytimeout: 1s, bodyminrate: 1000 }';
const auth = { Authorization: BASIC };

async function startUpload(url: string, repo: string): Promise<string> {
  const r = await request(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
  assert.equal(r.status, 202);
  return r.headers.location!;
}

/** Writes `data` over a raw PATCH: `first` bytes at once, then `step` bytes every `everyMs` until the server closes. */
async function trickle(t: T, port: number, location: string, data: Buffer, first: number, step: number, everyMs: number) {
  const c = await rawConnect(t, port);
  c.socket.write(`PATCH ${location} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${BASIC}\r\n`
    + `Content-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`);
  c.socket.write(data.subarray(0, first));
  let sent = first;
  const timer = setInterval(() => {
    if (c.closed() || sent >= data.length) { clearInterval(timer); return; }
    c.socket.write(data.subarray(sent, sent + step));
    sent += step;
  }, everyMs);
  t.after(() => clearInterval(timer));
  return { c, sent: () => sent, stop: () => clearInterval(timer) };
}

test('a body trickled below proxy.bodyminrate gets 408 and a closed connection; the upload resumes', async (t) => {
  const b = await startBerth(t, CONFIG, { auth: true });
  const location = await startUpload(b.url, 'adv/slow');
  const data = randomBytes(64 * 1024);
  // 2000 bytes, then 10 bytes every 200 ms (50 B/s): allowed 1 s + 2 s for the first 2000 bytes, then cut.
  const slow = await trickle(t, b.port, location, data, 2000, 10, 200);
  const r = await slow.c.response(0, 20_000);
  slow.stop();
  assert.equal(r.status, 408);
  assert.equal(r.headers.connection, 'close');
  assert.equal(JSON.parse(r.body).errors[0].code, 'BLOB_UPLOAD_INVALID');
  await slow.c.waitClosed('the server to close the slow upload\'s connection');
  await b.cap.waitFor((l) => l.msg === 'request body too slow: 408', 'the body-rate log line');
  await b.cap.waitFor((l) => l.msg === 'client disconnected' || l.msg === 'request completed', 'the PATCH to end');

  // Resumable: the session holds a prefix of what was sent; the rest completes it.
  const status = await request(`${b.url}${location}`, { headers: auth });
  assert.equal(status.status, 204);
  const stored = Number(/^0-(\d+)$/.exec(status.headers.range ?? '')?.[1] ?? -1) + 1;
  assert.ok(stored >= 2000 && stored <= slow.sent(), `stored ${stored} of ${slow.sent()} sent`);
  const rest = await request(`${b.url}${status.headers.location ?? location}`, {
    method: 'PATCH', body: data.subarray(stored),
    headers: { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `${stored}-${data.length - 1}` },
  });
  assert.equal(rest.status, 202, rest.text());
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const sep = rest.headers.location!.includes('?') ? '&' : '?';
  const put = await request(`${b.url}${rest.headers.location}${sep}digest=${digest}`, { method: 'PUT', headers: auth });
  assert.equal(put.status, 201, put.text());
  const blob = await request(`${b.url}/v2/adv/slow/blobs/${digest}`, { headers: auth });
  assert.equal(blob.status, 200);
  assert.ok(blob.body.equals(data));
  assert.deepEqual(b.cap.lines.filter((l) => l.level >= 50).map((l) => l.msg), [], 'nothing logged as an error');
});

test('bodies at a fair rate are not cut: a paced upload above the rate, and a fast one', async (t) => {
  const b = await startBerth(t, CONFIG, { auth: true });
  // 500 bytes every 100 ms (5000 B/s, five times the minimum) for 16 KiB: more than 3 s, past the grace period.
  const paced = randomBytes(16 * 1024);
  const location = await startUpload(b.url, 'adv/paced');
  const p = await trickle(t, b.port, location, paced, 500, 500, 100);
  const r = await p.c.response(0, 30_000);
  assert.equal(r.status, 202, r.body);
  const fast = randomBytes(4 * 1024 * 1024);
  const digest = `sha256:${createHash('sha256').update(fast).digest('hex')}`;
  const mono = await request(`${b.url}/v2/adv/fast/blobs/uploads/?digest=${digest}`, {
    method: 'POST', body: fast, headers: { ...auth, 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(mono.status, 201, mono.text());
  assert.equal(b.cap.lines.filter((l) => String(l.msg).startsWith('request body too slow')).length, 0);
});

test('sidecar: when the answer has already started, a body below the rate cuts the connection', async (t) => {
  // An upstream that answers at once and then reads the body as it comes (its answer ends only with the body).
  const upstream = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('started\n');
    req.resume().on('end', () => res.end('done\n'));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
  const b = await startBerth(t, `${CONFIG}\nupstreams: { v2: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}" }`);
  const slow = await trickle(t, b.port, '/v2/adv/sidecar/blobs/uploads/x', randomBytes(64 * 1024), 2000, 10, 200);
  await slow.c.waitClosed('the slow body\'s connection to be cut', 20_000);
  slow.stop();
  assert.match(slow.c.text(), /^HTTP\/1\.1 200 /);
  assert.match(slow.c.text(), /started/);
  assert.doesNotMatch(slow.c.text(), /done/);
  await b.cap.waitFor((l) => l.msg === 'request body too slow: connection closed', 'the body-rate log line');
});

test('storage slower than the client is not the client\'s fault: a fast body held back by a stalled write is not cut', async (t) => {
  // 1 MB/s minimum after 2 s (a 1 MiB body may take 3 s); the first write to an upload stalls 5 s, so the body
  // waits in berth's buffers meanwhile.
  const b = await startBerth(t, 'proxy: { bodytimeout: 2s, bodyminrate: 1000000 }', {
    auth: true, storage: '{ inmemory: {} }',
    app: (registry, log) => createRegistryApp(registry, { log, driver: stallingUploads(createDriver('inmemory', {}), 5000) }),
  });
  const data = randomBytes(1024 * 1024);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const r = await request(`${b.url}/v2/adv/stalled/blobs/uploads/?digest=${digest}`, {
    method: 'POST', body: data, headers: { ...auth, 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(r.status, 201, r.text());
  assert.equal(b.cap.lines.filter((l) => String(l.msg).startsWith('request body too slow')).length, 0);
});

/** `inner`, except that the first write to each upload's data file waits `ms`. */
function stallingUploads(inner: StorageDriver, ms: number): StorageDriver {
  const driver: StorageDriver = Object.create(inner);
  driver.writer = async (path, o) => {
    const w = await inner.writer(path, o);
    if (!path.includes('/_uploads/') || !path.endsWith('/data')) return w;
    let first = true;
    const stream = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, enc, cb) {
        if (!first) { w.stream.write(chunk, enc, cb); return; }
        first = false;
        setTimeout(() => w.stream.write(chunk, enc, cb), ms);
      },
      final(cb) { w.stream.end(cb); },
    });
    const writer: FileWriter = { get size() { return w.size; }, stream, commit: (x) => w.commit(x), cancel: (x) => w.cancel(x) };
    return writer;
  };
  return driver;
}
