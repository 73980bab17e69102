// The S3 client's bounds on a slow or stalled store (s3-client.ts S3Timeouts), with short values, through the
// fault proxy in front of the real Ceph RGW: a small request fails within its call deadline; a streamed body
// has no total deadline (a slow stream that keeps moving completes) but fails once its socket moves nothing for
// the idle time, both when sending (a streamed PutObject) and when receiving (a GetObject body). A writer's part cut
// that way by a client's pause is sent again from its buffer (through a request-logging proxy, with idletimeout 1 s).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import { connect, mapS3Error, type S3Connection } from '../../src/registry/storage/drivers/s3-client.js';
import { S3Driver, checkS3Parameters } from '../../src/registry/storage/drivers/s3.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startS3RequestLog } from '../support/s3-request-log.js';
import { s3Prefix, s3Skip, s3Store, type S3Settings } from '../support/s3.js';
import { withDeadline } from '../support/wait.js';

const skip = await s3Skip();
const KiB = 1024;
const MiB = 1024 * KiB;
// Short, but well above what a healthy (if loaded) store takes; setup writes go through a client with the defaults.
const T = { connect: 2000, attempt: 2000, call: 4000, idle: 1500 };

describe('s3 client: bounded calls on a stalled store, idle timeouts on streams', { skip }, () => {
  let s: S3Settings;
  let proxy: FaultProxy;
  let c: S3Connection;
  let direct: S3Connection;   // the defaults, straight to the store: setup and cleanup
  const prefix = s3Prefix('timeouts').slice(1);
  const keys: string[] = [];

  before(async () => {
    s = await s3Store();
    const u = new URL(s.endpoint);
    proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });
    const o = { region: s.region, forcePathStyle: true, accessKey: s.accessKey, secretKey: s.secretKey, skipVerify: false };
    c = connect({ ...o, endpoint: proxy.url, timeouts: T });
    direct = connect({ ...o, endpoint: s.endpoint });
  });
  afterEach(() => proxy.set('pass'));
  after(async () => {
    for (const Key of keys) await direct.client.send(new direct.commands.DeleteObjectCommand({ Bucket: s.bucket, Key })).catch(() => {});
    c.destroy();
    direct.destroy();
    await proxy.close();
  });

  const put = async (Key: string, Body: Buffer) => {
    keys.push(Key);
    await direct.client.send(new direct.commands.PutObjectCommand({ Bucket: s.bucket, Key, Body, ContentLength: Body.length }));
  };

  /** Reads `body` (arriving slowly through the proxy) until its first chunk, stalls the store, reads on: the error
   *  the body ends with (undefined if it ended), the bytes read, the ms from the stall to the end. */
  const stallMidBody = async (body: Readable, what: string): Promise<{ err: unknown; got: number; ms: number }> => {
    let got = 0;
    const ended = new Promise<unknown>((resolve) => {
      body.once('error', resolve);
      body.once('end', () => resolve(undefined));
    });
    await new Promise<void>((resolve) => body.once('data', (chunk: Buffer) => { got += chunk.length; body.pause(); resolve(); }));
    proxy.set('stall');
    const t0 = Date.now();
    body.on('data', (chunk: Buffer) => { got += chunk.length; });
    body.resume();
    const err = await withDeadline(ended, 15_000, what);
    return { err, got, ms: Date.now() - t0 };
  };

  /** Rejects with what the driver makes of the error: its code. */
  const code = (err: unknown) => (mapS3Error(err, '/x', 's3') as { code?: string }).code;

  test('registry.storage.s3.requesttimeout (seconds) sets the call deadline of the driver; out of range is refused', async () => {
    await put(`${prefix}/via-driver`, Buffer.from('x'));
    const d = new S3Driver(checkS3Parameters({
      region: s.region, regionendpoint: proxy.url, bucket: s.bucket, accesskey: s.accessKey, secretkey: s.secretKey,
      rootdirectory: `/${prefix}`, secure: false, requesttimeout: 3, idletimeout: 2,
    }));
    try {
      proxy.set('stall');
      const t0 = Date.now();
      const err = await withDeadline(d.stat('/via-driver').then(() => undefined, (e: unknown) => e), 10_000, 'stat on a stalled store');
      const ms = Date.now() - t0;
      assert.equal((err as { code?: string }).code, 'STORAGE_UNAVAILABLE', String(err));
      assert.ok(ms >= 2900 && ms < 5000, `failed after ${ms} ms (requesttimeout 3 s)`);
      proxy.set('pass');
      assert.equal((await d.stat('/via-driver')).size, 1);
    } finally {
      await d.close();
    }
    for (const bad of [0, 3601, '20s']) {
      assert.throws(() => checkS3Parameters({ region: 'r', bucket: 'b', requesttimeout: bad }), /requesttimeout/);
    }
    assert.equal(checkS3Parameters({ region: 'r', bucket: 'b' }).requesttimeout, 20);
    assert.equal(checkS3Parameters({ region: 'r', bucket: 'b' }).idletimeout, 60);
  });

  test('a small request to a stalled store fails within the call deadline, as STORAGE_UNAVAILABLE', async () => {
    await put(`${prefix}/small`, Buffer.from('x'));
    proxy.set('stall');
    const t0 = Date.now();
    const err = await withDeadline(c.client.send(new c.commands.HeadObjectCommand({ Bucket: s.bucket, Key: `${prefix}/small` })).then(() => undefined, (e: unknown) => e), 10_000, 'HEAD on a stalled store');
    const ms = Date.now() - t0;
    assert.equal(code(err), 'STORAGE_UNAVAILABLE', String(err));
    assert.ok(ms >= T.call - 100 && ms < T.call + 2000, `failed after ${ms} ms (call deadline ${T.call})`);
    proxy.set('pass');
    const r = await c.client.send(new c.commands.HeadObjectCommand({ Bucket: s.bucket, Key: `${prefix}/small` }));
    assert.equal(r.ContentLength, 1, 'the next request succeeds: no stalled socket is reused');
  });

  test('keep-alive connections that went silent (NAT state lost) are dropped at the first timeout: the retry connects anew', async () => {
    await put(`${prefix}/pool`, Buffer.from('p'));
    const head = () => c.client.send(new c.commands.HeadObjectCommand({ Bucket: s.bucket, Key: `${prefix}/pool` }));
    await Promise.all(Array.from({ length: 4 }, head));   // four idle keep-alive connections in the pool
    const accepted = proxy.stats().accepted;
    proxy.blackholeOpen();
    const t0 = Date.now();
    const r = await withDeadline(head().catch((e: unknown) => e), 10_000, 'HEAD after the pool went silent');
    const ms = Date.now() - t0;
    assert.equal((r as { ContentLength?: number }).ContentLength, 1, `HEAD failed: ${String(r)}`);
    assert.ok(ms < T.attempt + 1000, `one attempt timed out, the next connected anew (${ms} ms)`);
    assert.ok(proxy.stats().accepted > accepted, 'a new connection');
  });

  test('a streamed PutObject slower than every deadline but never idle completes; stalled mid-body it fails after the idle time', async () => {
    // 12 pieces of 16 KiB, one every 400 ms: 4.8 s in all, more than the call deadline, never idle for long.
    const pieces = Array.from({ length: 12 }, () => randomBytes(16 * KiB));
    const body = new PassThrough();
    keys.push(`${prefix}/slow`);
    const sent = c.client.send(new c.commands.PutObjectCommand({ Bucket: s.bucket, Key: `${prefix}/slow`, Body: body, ContentLength: 12 * 16 * KiB }));
    for (const p of pieces) {
      body.write(p);
      await new Promise((r) => setTimeout(r, 400));
    }
    body.end();
    await withDeadline(sent, 10_000, 'the slow PutObject');
    const got = await c.client.send(new c.commands.GetObjectCommand({ Bucket: s.bucket, Key: `${prefix}/slow` }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(pieces)));

    const stalled = new PassThrough();
    keys.push(`${prefix}/stalled`);
    const t0 = Date.now();
    const failing = c.client.send(new c.commands.PutObjectCommand({ Bucket: s.bucket, Key: `${prefix}/stalled`, Body: stalled, ContentLength: 1024 * KiB }))
      .then(() => undefined, (e: unknown) => e);
    stalled.write(randomBytes(64 * KiB));
    await new Promise((r) => setTimeout(r, 300));
    proxy.set('stall');
    stalled.end(randomBytes(960 * KiB));
    const err = await withDeadline(failing, 15_000, 'the stalled PutObject');
    const ms = Date.now() - t0;
    assert.equal(code(err), 'STORAGE_UNAVAILABLE', String(err));
    assert.ok(ms < 300 + T.idle + 3000, `failed after ${ms} ms (idle ${T.idle})`);
  });

  test('a GetObject body stalled mid-stream fails after the idle time', async () => {
    const data = randomBytes(3 * 1024 * KiB);
    await put(`${prefix}/big`, data);
    proxy.set('slow', { bytesPerSecond: 256 * KiB });   // so the body is still on its way when the store stalls
    const r = await c.client.send(new c.commands.GetObjectCommand({ Bucket: s.bucket, Key: `${prefix}/big` }));
    const { err, got, ms } = await stallMidBody(r.Body as unknown as Readable, 'the stalled GetObject body');
    assert.ok(err instanceof Error && (err as Error).name === 'TimeoutError', `the body fails with a TimeoutError (got ${String(err)}, ${got} of ${data.length} bytes)`);
    assert.ok(got < data.length);
    assert.ok(ms < T.idle + 3000, `failed after ${ms} ms (idle ${T.idle})`);
  });

  // getObject (a blob GET's bytes: undici on a presigned URL, not the SDK's handler) keeps the same bounds and the
  // SDK's retries and error shapes.
  const read = async (body: Readable): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  };

  test('getObject: the bytes, a Range, a missing key (NotFound), refused credentials (unavailable)', async () => {
    const data = randomBytes(300 * KiB);
    await put(`${prefix}/get`, data);
    assert.ok((await read(await c.getObject({ Bucket: s.bucket, Key: `${prefix}/get` }))).equals(data));
    assert.ok((await read(await c.getObject({ Bucket: s.bucket, Key: `${prefix}/get`, Range: 'bytes=1000-' }))).equals(data.subarray(1000)));
    assert.ok((await read(await c.getObject({ Bucket: s.bucket, Key: `${prefix}/get`, Range: 'bytes=5-9' }))).equals(data.subarray(5, 10)));
    const missing = await c.getObject({ Bucket: s.bucket, Key: `${prefix}/none` }).then(() => undefined, (e: unknown) => e);
    assert.equal(code(missing), 'STORAGE_PATH_NOT_FOUND', String(missing));
    const past = await c.getObject({ Bucket: s.bucket, Key: `${prefix}/get`, Range: `bytes=${data.length}-` }).then(() => undefined, (e: unknown) => e);
    assert.equal((past as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 416, String(past));
    const wrong = connect({ region: s.region, forcePathStyle: true, accessKey: s.accessKey, secretKey: 'not-the-secret', skipVerify: false, endpoint: s.endpoint, timeouts: T });
    try {
      const refused = await wrong.getObject({ Bucket: s.bucket, Key: `${prefix}/get` }).then(() => undefined, (e: unknown) => e);
      assert.equal(code(refused), 'STORAGE_UNAVAILABLE', String(refused));
      assert.equal((refused as Error).name, 'SignatureDoesNotMatch');
    } finally {
      wrong.destroy();
    }
  });

  test('getObject: connections reset before the answer are retried (3 attempts, as the SDK), then the error', async () => {
    const data = randomBytes(64 * KiB);
    await put(`${prefix}/retry`, data);
    proxy.failRequests(/^GET /, 2);
    assert.ok((await read(await c.getObject({ Bucket: s.bucket, Key: `${prefix}/retry` }))).equals(data), 'the third attempt');
    assert.equal(proxy.failed, 2);
    proxy.failRequests(/^GET /, 3);
    const err = await c.getObject({ Bucket: s.bucket, Key: `${prefix}/retry` }).then(() => undefined, (e: unknown) => e);
    assert.equal(code(err), 'STORAGE_UNAVAILABLE', String(err));
    assert.equal(proxy.failed, 5);
  });

  test('getObject: no answer fails within the call deadline; a body stalled mid-stream fails after the idle time', async () => {
    const data = randomBytes(3 * 1024 * KiB);
    await put(`${prefix}/get-big`, data);
    proxy.set('stall');
    const t0 = Date.now();
    const err = await withDeadline(c.getObject({ Bucket: s.bucket, Key: `${prefix}/get-big` }).then(() => undefined, (e: unknown) => e), 15_000, 'the stalled getObject');
    const ms = Date.now() - t0;
    assert.equal(code(err), 'STORAGE_UNAVAILABLE', String(err));
    assert.ok(ms < T.call + 2000, `failed after ${ms} ms (call ${T.call})`);
    proxy.set('slow', { bytesPerSecond: 256 * KiB });
    const stalled = await stallMidBody(await c.getObject({ Bucket: s.bucket, Key: `${prefix}/get-big` }), 'the stalled getObject body');
    assert.equal(code(stalled.err), 'STORAGE_UNAVAILABLE', `the body fails as the store being unavailable (got ${String(stalled.err)}, ${stalled.got} of ${data.length} bytes)`);
    assert.ok(stalled.got < data.length);
    assert.ok(stalled.ms < T.idle + 3000, `failed after ${stalled.ms} ms (idle ${T.idle})`);
  });

  test('a client pausing longer than idletimeout mid-part: the streamed part fails and is sent again from the buffer; the write completes, bytes exact', async () => {
    const log = await startS3RequestLog(s.endpoint);
    const d = new S3Driver(checkS3Parameters({
      region: s.region, regionendpoint: log.url, bucket: s.bucket, accesskey: s.accessKey, secretkey: s.secretKey,
      rootdirectory: `/${prefix}/pause`, secure: false, idletimeout: 1,
    }));
    try {
      const a = randomBytes(6 * MiB);
      const b = randomBytes(6 * MiB);
      // 12 MiB declared: parts of 7 and 5 MiB (s3-writer.ts partLength), the first streaming from the first byte.
      const w = await d.writer('/p/data', { sizeHint: a.length + b.length });
      const t0 = Date.now();
      const source = Readable.from((async function* () {
        yield a;
        await new Promise((r) => setTimeout(r, 2500));   // the client pauses: part 1's request idles 2.5 s
        yield b;
      })());
      await withDeadline(pipeline(source, w.stream), 30_000, 'the paused write');
      assert.ok(Date.now() - t0 >= 2500);
      await w.commit();
      assert.ok((await d.getContent('/p/data')).equals(Buffer.concat([a, b])), 'the object is the bytes written');
      assert.deepEqual(log.requests.filter((r) => r.op === 'UploadPart').length, 3,
        'part 1 streamed until the idle timeout cut it, part 1 again from the buffer, part 2 streamed');
      keys.push(d.key('/p/data'));
    } finally {
      await d.close();
      await log.close();
    }
  });
});
