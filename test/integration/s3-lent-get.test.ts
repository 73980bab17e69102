// The S3 driver's blob bodies (s3-client.ts getObject through lent-get.ts): read into recycled buffers from the real
// Ceph RGW (plain and over TLS), relayed through sendBody into real http responses, bytes exact under concurrency;
// a consumer slower than the idle timeout is not cut off; a store whose answer lent-get does not read (chunked, as a
// re-framing proxy sends it) is fetched with undici instead; broken answers (a real socket server playing a broken
// store or proxy) fail as the store being unavailable, never as a short body that looks whole.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { sendBody } from '../../src/registry/api/send-body.js';
import { BAD_ANSWER, lentGet, lentGetStats } from '../../src/registry/storage/drivers/lent-get.js';
import { connect, mapS3Error, type S3Connection } from '../../src/registry/storage/drivers/s3-client.js';
import { s3Prefix, s3Skip, s3Store, type S3Settings } from '../support/s3.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { forwardTlsToTcp, type TlsForward } from '../support/tcp-forward.js';
import { makeTestCert } from '../support/tls-certs.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const skip = await s3Skip();
const KiB = 1024;
const MiB = 1024 * KiB;
const T = { connect: 2000, attempt: 3000, call: 6000, idle: 1000 };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const code = (err: unknown) => (mapS3Error(err, '/x', 's3') as { code?: string }).code;

async function read(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk as Buffer));   // copies: chunks are lent
  return Buffer.concat(parts);
}

async function listen(server: Server | TcpServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('s3 blob bodies read into lent buffers (lent-get)', { skip }, () => {
  let s: S3Settings;
  let c: S3Connection;
  const prefix = s3Prefix('lent').slice(1);
  const keys: string[] = [];
  const closers: Array<() => Promise<unknown> | void> = [];

  before(async () => {
    s = await s3Store();
    c = connect({ region: s.region, forcePathStyle: true, accessKey: s.accessKey, secretKey: s.secretKey, skipVerify: false, endpoint: s.endpoint, timeouts: T });
  });
  after(async () => {
    for (const Key of keys) await c.client.send(new c.commands.DeleteObjectCommand({ Bucket: s.bucket, Key })).catch(() => {});
    for (const close of closers.reverse()) await close();
    c.destroy();
  });

  const put = async (Key: string, Body: Buffer) => {
    keys.push(Key);
    await c.client.send(new c.commands.PutObjectCommand({ Bucket: s.bucket, Key, Body, ContentLength: Body.length }));
  };

  /** A real http server relaying `Key` (a Range from the request's `?range=`) with sendBody, as a blob GET does. */
  async function relay(conn: S3Connection): Promise<string> {
    const server = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      const Key = u.searchParams.get('key')!;
      const range = u.searchParams.get('range') ?? undefined;
      const length = Number(u.searchParams.get('length'));
      conn.getObject({ Bucket: s.bucket, Key, Range: range }).then(async (body) => {
        res.writeHead(200, { 'content-length': length });
        await sendBody(body, res, length);
      }).catch((err: unknown) => { res.destroy(err as Error); });
    });
    const port = await listen(server);
    closers.push(() => { server.closeAllConnections(); server.close(); });
    return `http://127.0.0.1:${port}`;
  }

  test('a relayed body is exact and its read buffers come back: the second 20 MiB GET allocates almost none', async () => {
    const data = randomBytes(20 * MiB);
    await put(`${prefix}/twenty`, data);
    const url = await relay(c);
    const get = async () => {
      const r = await request(`${url}/?key=${prefix}/twenty&length=${data.length}`);
      assert.equal(r.statusCode, 200);
      return sha(Buffer.from(await r.body.arrayBuffer()));
    };
    const before0 = lentGetStats();
    assert.equal(await get(), sha(data));
    const first = lentGetStats().allocated - before0.allocated;
    assert.equal(lentGetStats().answers - before0.answers, 1, 'the body was read by lent-get');
    const before1 = lentGetStats().allocated;
    assert.equal(await get(), sha(data));
    const second = lentGetStats().allocated - before1;
    // 20 MiB = 80 reads of 256 KiB at most if nothing came back; recycled, a few cover the read-ahead.
    assert.ok(second <= 8, `second GET allocated ${second} buffers (first ${first})`);
  });

  test('16 concurrent relayed GETs of different objects and ranges: every body exact', async () => {
    const objects = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const data = randomBytes(3 * MiB + i * 7919);
      await put(`${prefix}/conc-${i}`, data);
      return data;
    }));
    const url = await relay(c);
    const results = await Promise.all(Array.from({ length: 16 }, async (_, j) => {
      const i = j % 8;
      const data = objects[i]!;
      const ranged = j >= 8;
      const from = ranged ? 1000 + j : 0;
      const want = data.subarray(from);
      const q = `key=${prefix}/conc-${i}&length=${want.length}${ranged ? `&range=bytes=${from}-` : ''}`;
      const r = await request(`${url}/?${q}`);
      return sha(Buffer.from(await r.body.arrayBuffer())) === sha(want);
    }));
    assert.deepEqual(results, Array(16).fill(true));
  });

  test('a consumer pausing longer than the idle timeout is not cut off (only a silent store is)', async () => {
    const data = randomBytes(8 * MiB);
    await put(`${prefix}/pause`, data);
    const body = await c.getObject({ Bucket: s.bucket, Key: `${prefix}/pause` });
    const parts: Buffer[] = [];
    await new Promise<void>((resolve) => body.once('data', (chunk: Buffer) => { parts.push(Buffer.from(chunk)); body.pause(); resolve(); }));
    await new Promise((r) => setTimeout(r, T.idle * 2.5));
    body.on('data', (chunk: Buffer) => parts.push(Buffer.from(chunk)));
    const err = await withDeadline(new Promise<unknown>((resolve) => { body.once('end', () => resolve(undefined)); body.once('error', resolve); body.resume(); }), 15_000, 'the paused body');
    assert.equal(err, undefined, String(err));
    assert.equal(sha(Buffer.concat(parts)), sha(data));
  });

  test('store connections end with their GET: after a whole body, and at once when the client goes away mid-body', async () => {
    const data = randomBytes(16 * MiB);
    await put(`${prefix}/gone`, data);
    const u = new URL(s.endpoint);
    const proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });   // counts the open connections
    closers.push(() => proxy.close());
    const pc = connect({ region: s.region, forcePathStyle: true, accessKey: s.accessKey, secretKey: s.secretKey, skipVerify: false,
      endpoint: proxy.url, timeouts: T });
    closers.push(() => pc.destroy());
    const url = await relay(pc);
    const whole = await request(`${url}/?key=${prefix}/gone&length=${data.length}`);
    assert.equal(sha(Buffer.from(await whole.body.arrayBuffer())), sha(data));
    await waitUntil('the store connection of the whole GET closed', () => proxy.stats().open === 0, { timeoutMs: 5000 });
    const before0 = proxy.stats().accepted;
    proxy.set('slow', { bytesPerSecond: 2 * MiB });   // the rest would take 8 s to drain: it must not be read
    const r = await request(`${url}/?key=${prefix}/gone&length=${data.length}`);
    await new Promise<void>((resolve) => r.body.once('data', () => resolve()));
    assert.equal(proxy.stats().accepted - before0, 1);
    r.body.destroy();   // the client goes away with most of the body unread
    await waitUntil('the store connection of the abandoned GET closed', () => proxy.stats().open === 0, { timeoutMs: 3000 });
  });

  test('over https (skipverify): bytes exact through lent-get', async () => {
    const cert = await makeTestCert();
    const front: TlsForward = await forwardTlsToTcp(Number(new URL(s.endpoint).port), cert);
    closers.push(() => front.close());
    const tc = connect({ region: s.region, forcePathStyle: true, accessKey: s.accessKey, secretKey: s.secretKey, skipVerify: true,
      endpoint: `https://127.0.0.1:${front.port}`, timeouts: T });
    closers.push(() => tc.destroy());
    const data = randomBytes(5 * MiB + 3);
    await put(`${prefix}/tls`, data);
    const before0 = lentGetStats().answers;
    const url = await relay(tc);
    const r = await request(`${url}/?key=${prefix}/tls&length=${data.length}&range=bytes=0-`);
    assert.equal(sha(Buffer.from(await r.body.arrayBuffer())), sha(data));
    assert.ok((await read(await tc.getObject({ Bucket: s.bucket, Key: `${prefix}/tls`, Range: 'bytes=7-20' }))).equals(data.subarray(7, 21)));
    assert.equal(lentGetStats().answers - before0, 2, 'both answers read by lent-get over TLS');
  });

  test('a store whose answers are chunked (a re-framing proxy): fetched with undici instead, bytes exact, and so from then on', async () => {
    const data = randomBytes(2 * MiB + 11);
    await put(`${prefix}/chunked`, data);
    const store = new URL(s.endpoint);
    let gets = 0;
    // Forwards each request as it came (Host included: the URL is signed for it) and answers without a length.
    const proxy = createServer((req, res) => {
      gets++;
      const up = httpRequest({ host: store.hostname, port: Number(store.port), method: req.method, path: req.url, headers: req.headers },
        (ur: IncomingMessage) => {
          const headers = { ...ur.headers };
          delete headers['content-length'];
          res.writeHead(ur.statusCode!, headers);
          ur.pipe(res);
        });
      up.on('error', (err) => res.destroy(err));
      req.pipe(up);
    });
    const port = await listen(proxy);
    closers.push(() => { proxy.closeAllConnections(); proxy.close(); });
    const pc = connect({ region: s.region, forcePathStyle: true, accessKey: s.accessKey, secretKey: s.secretKey, skipVerify: false,
      endpoint: `http://127.0.0.1:${port}`, timeouts: T });
    closers.push(() => pc.destroy());
    const answers = lentGetStats().answers;
    assert.ok((await read(await pc.getObject({ Bucket: s.bucket, Key: `${prefix}/chunked` }))).equals(data));
    assert.equal(lentGetStats().answers, answers, 'lent-get took nothing of the body');
    assert.equal(gets, 2, 'lent-get saw a chunked answer and left it; undici asked again');
    assert.ok((await read(await pc.getObject({ Bucket: s.bucket, Key: `${prefix}/chunked`, Range: 'bytes=100-' }))).equals(data.subarray(100)));
    assert.equal(gets, 3, 'later GETs go to undici at once');
  });

  describe('broken answers (a socket server playing a broken store or proxy)', () => {
    let port = 0;
    let answer: (sock: Socket) => void = () => {};
    before(async () => {
      const server = createTcpServer((sock) => {
        sock.on('error', () => {});
        sock.once('data', () => answer(sock));
      });
      port = await listen(server);
      closers.push(() => new Promise((r) => server.close(r)));
    });
    const get = () => lentGet(new URL(`http://127.0.0.1:${port}/k`), { connectTimeout: 1000, headersTimeout: 2000, idleTimeout: 1000 });
    const failure = (p: Promise<unknown>) => withDeadline(p.then(() => undefined, (e: unknown) => e), 10_000, 'the broken answer');

    test('not HTTP, a head without end past 64 KiB, a bad Content-Length: BAD_ANSWER, the store unavailable', async () => {
      answer = (sock) => sock.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
      let err = await failure(get());
      assert.equal((err as { code?: string }).code, BAD_ANSWER, String(err));
      assert.equal(code(err), 'STORAGE_UNAVAILABLE');
      answer = (sock) => { sock.write('HTTP/1.1 200 OK\r\n'); sock.end(`x-pad: ${'a'.repeat(70 * KiB)}\r\n`); };
      err = await failure(get());
      assert.match(String(err), /head longer than 65536/);
      answer = (sock) => sock.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!');
      err = await failure(get());
      assert.match(String(err), /content-length/);
      assert.equal(code(err), 'STORAGE_UNAVAILABLE');
    });

    test('a body cut short fails its stream (BAD_ANSWER), never ends as if whole', async () => {
      answer = (sock) => sock.end('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789');
      const r = await get();
      assert.equal(r.status, 200);
      const err = await failure(read(r.body));
      assert.equal((err as { code?: string }).code, BAD_ANSWER, String(err));
      assert.match(String(err), /990 bytes short/);
    });

    test('small reads (a store across a network) fill one read buffer together, not one buffer each', async () => {
      const body = randomBytes(200 * 1000);
      answer = (sock) => {
        sock.setNoDelay(true);
        sock.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
        let i = 0;
        const next = () => {   // 200 writes of 1000 bytes, 1 ms apart: the reader sees ~200 small reads
          if (sock.destroyed) return;
          if (i === 200) { sock.end(); return; }
          sock.write(body.subarray(i * 1000, ++i * 1000));
          setTimeout(next, 1);
        };
        next();
      };
      const before0 = lentGetStats().allocated;
      const r = await get();
      let chunks = 0;
      const parts: Buffer[] = [];
      for await (const chunk of r.body) { chunks++; parts.push(Buffer.from(chunk as Buffer)); }
      assert.ok(Buffer.concat(parts).equals(body));
      assert.ok(chunks > 20, `${chunks} reads (the test needs small reads)`);
      const allocated = lentGetStats().allocated - before0;
      assert.ok(allocated <= 3, `${chunks} reads took ${allocated} read buffers`);
    });

    test('a head that never ends in time fails within headersTimeout; bytes past Content-Length are ignored', async () => {
      answer = (sock) => sock.write('HTTP/1.1 200 OK\r\n');   // and nothing more
      const t0 = Date.now();
      const err = await failure(get());
      assert.equal((err as { name?: string }).name, 'TimeoutError', String(err));
      assert.ok(Date.now() - t0 < 4000);
      answer = (sock) => sock.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloEXTRA');
      const r = await get();
      assert.equal((await read(r.body)).toString(), 'hello');
    });
  });
});
