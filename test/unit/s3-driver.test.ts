// The s3 driver's pure parts, without a store: its parameters (Distribution's keys, defaults, the checks across
// keys), the key mapping (Distribution's s3Path), the multipart copy ranges, the SDK error mapping and its 503,
// and that only s3-client.ts loads the SDK (so other drivers never pay for it).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { S3Driver, checkS3Parameters, partBufferMemory } from '../../src/registry/storage/drivers/s3.js';
import { OVERLAP_BUFFERS, PartBuffers, copyRanges } from '../../src/registry/storage/drivers/s3-writer.js';
import { Budget, FRESH_PER_S, answersWithBody, mapS3Error, type Req } from '../../src/registry/storage/drivers/s3-client.js';
import { StorageUnavailableError } from '../../src/registry/storage/driver.js';
import { toOciError } from '../../src/registry/api/errors.js';

const MiB = 1024 * 1024;
const base = { region: 'us-east-1', bucket: 'b' };
const keyError = (key: string, re?: RegExp) => (err: unknown) => {
  const e = err as { code?: string; key?: string; message?: string };
  assert.equal(e.code, 'STORAGE_INVALID_PARAMETER');
  assert.equal(e.key, key);
  if (re) assert.match(e.message ?? '', re);
  return true;
};

test('parameters: Distribution defaults; strings from REGISTRY_STORAGE_S3_* are parsed', () => {
  const p = checkS3Parameters(base);
  assert.equal(p.chunksize, 10 * MiB);
  assert.equal(p.multipartcopychunksize, 32 * MiB);
  assert.equal(p.multipartcopymaxconcurrency, 100);
  assert.equal(p.multipartcopythresholdsize, 32 * MiB);
  assert.equal(p.secure, true);
  assert.equal(p.v4auth, true);
  assert.equal(p.rootdirectory, '');
  assert.equal(p.storageclass, 'STANDARD');
  const s = checkS3Parameters({ ...base, chunksize: '5242880', secure: 'false', encrypt: 'true' });
  assert.deepEqual([s.chunksize, s.secure, s.encrypt], [5 * MiB, false, true]);
});

test('buffermemory: buffers of chunksize in all; the default a quarter of the memory, at most 1 GiB, at least two buffers', () => {
  const GiB = 1024 * MiB;
  assert.equal(partBufferMemory(10 * MiB, 24 * GiB), GiB);
  assert.equal(partBufferMemory(10 * MiB, 512 * MiB), 128 * MiB, 'a container of 512 MiB');
  assert.equal(partBufferMemory(64 * MiB, 100 * MiB), 128 * MiB, 'never less than two buffers');
  const d = new S3Driver(checkS3Parameters({ ...base, chunksize: 8 * MiB, buffermemory: String(100 * MiB) }));
  assert.equal(d.buffers.max, 12, '100 MiB of 8 MiB buffers');
  assert.throws(() => checkS3Parameters({ ...base, buffermemory: 6 * MiB }), keyError('registry.storage.s3.buffermemory', /at least chunksize/));
  assert.ok(new S3Driver(checkS3Parameters(base)).buffers.max >= 2);
});

test('parameters: each problem names its key', () => {
  assert.throws(() => checkS3Parameters({ bucket: 'b' }), keyError('registry.storage.s3.region', /required/));
  assert.throws(() => checkS3Parameters({ region: 'r' }), keyError('registry.storage.s3.bucket', /required/));
  assert.throws(() => checkS3Parameters({ ...base, v4auth: false }), keyError('registry.storage.s3.v4auth'));
  assert.throws(() => checkS3Parameters({ ...base, chunksize: 5 * MiB - 1 }), keyError('registry.storage.s3.chunksize'));
  assert.throws(() => checkS3Parameters({ ...base, accesskey: 'a' }), keyError('registry.storage.s3.secretkey'));
  assert.throws(() => checkS3Parameters({ ...base, storageclass: 'cold' }), keyError('registry.storage.s3.storageclass'));
  assert.throws(() => checkS3Parameters({ ...base, nosuch: 1 }), keyError('registry.storage.s3.nosuch'));
});

test("keys are Distribution's s3Path: TrimLeft(TrimRight(rootdirectory, '/') + path, '/')", () => {
  const key = (root: string) => new S3Driver(checkS3Parameters({ ...base, rootdirectory: root })).key('/docker/registry/v2/blobs');
  assert.equal(key(''), 'docker/registry/v2/blobs');
  assert.equal(key('/'), 'docker/registry/v2/blobs');
  assert.equal(key('/reg'), 'reg/docker/registry/v2/blobs');
  assert.equal(key('reg/'), 'reg/docker/registry/v2/blobs');
  assert.equal(key('/a/b/'), 'a/b/docker/registry/v2/blobs');
});

test('multipart copy ranges: cover the size, none but the last below 5 MiB', () => {
  assert.deepEqual(copyRanges(10 * MiB, 32 * MiB), [[0, 10 * MiB]]);
  assert.deepEqual(copyRanges(64 * MiB, 32 * MiB), [[0, 32 * MiB], [32 * MiB, 64 * MiB]]);
  assert.deepEqual(copyRanges(65 * MiB, 32 * MiB), [[0, 32 * MiB], [32 * MiB, 65 * MiB]]);
  assert.deepEqual(copyRanges(70 * MiB, 32 * MiB), [[0, 32 * MiB], [32 * MiB, 64 * MiB], [64 * MiB, 70 * MiB]]);
});

test('SDK errors: missing → PathNotFound; network, 5xx and refusals → STORAGE_UNAVAILABLE → 503 UNAVAILABLE', () => {
  const sdk = (name: string, status?: number, code?: string) => Object.assign(new Error(name), { name, code, $metadata: { httpStatusCode: status } });
  const code = (e: unknown) => (e as { code?: string }).code;
  assert.equal(code(mapS3Error(sdk('NoSuchKey', 404), '/a', 's3')), 'STORAGE_PATH_NOT_FOUND');
  assert.equal(code(mapS3Error(sdk('NotFound', 404), '/a', 's3')), 'STORAGE_PATH_NOT_FOUND');
  for (const e of [sdk('Error', undefined, 'ECONNREFUSED'), sdk('TimeoutError'), sdk('InternalError', 500), sdk('ServiceUnavailable', 503),
    sdk('NoSuchBucket', 404), sdk('InvalidAccessKeyId', 403), sdk('SignatureDoesNotMatch', 403)]) {
    assert.equal(code(mapS3Error(e, '/a', 's3')), 'STORAGE_UNAVAILABLE', e.name);
  }
  const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
  assert.equal(mapS3Error(abort, '/a', 's3'), abort);
  const oci = toOciError(new StorageUnavailableError('down', 's3'));
  assert.deepEqual([oci.code, oci.status, oci.headers], ['UNAVAILABLE', 503, { 'Retry-After': '5' }]);
});

test('only s3-client.ts imports the AWS SDK at run time (type imports are erased)', () => {
  const dir = join(import.meta.dirname, '../../src');
  const files = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.ts'));
  const importers = files.filter((f) => /^import (?!type )[^;]*from '@aws-sdk\//m.test(readFileSync(join(dir, f), 'utf8')));
  assert.deepEqual(importers.map((f) => f.split('\\').join('/')), ['registry/storage/drivers/s3-client.ts']);
});

test('PartBuffers: every writer gets one buffer; second buffers only up to the limit, counted back; free ones reused', async () => {
  const b = new PartBuffers(1024, 2);
  const own = [await b.acquire(), await b.acquire(), await b.acquire()];
  assert.ok(own.every((x) => x.length === 1024));
  const s1 = b.second();
  const s2 = b.second();
  assert.ok(s1 && s2);
  assert.equal(b.second(), undefined, 'the limit: no third writer overlaps');
  assert.equal(b.seconds, 2);
  b.back(s1!, true);
  assert.equal(b.seconds, 1);
  const again = b.second();
  assert.equal(again, s1, 'a buffer given back is reused');
  b.back(again!, true);
  b.back(s2!, true);
  assert.equal(b.seconds, 0);
  for (const x of own) b.back(x, false);   // writers ending: not counted, at most `limit` kept
  assert.equal(b.seconds, 0);
  assert.equal(b.inUse, 0);
  const next = [await b.acquire(), await b.acquire(), await b.acquire()];
  assert.deepEqual(next.map((x) => x === s1 || x === s2), [true, true, false], 'two kept for reuse, the third is new');
  b.back(Buffer.alloc(2048), false);   // another size (a writer's prior content beyond one part) was never counted
  assert.equal(b.inUse, 3);
  assert.equal(new PartBuffers(1).limit, OVERLAP_BUFFERS);
});

test('PartBuffers: at most `max` out; writers over it wait in order and get the buffers that come back; an aborted wait leaves the queue', async () => {
  const b = new PartBuffers(1024, 1, 2);
  const x = await b.acquire();
  const y = await b.acquire();
  assert.equal(b.second(), undefined, 'no second buffer beyond the bound');
  const order: string[] = [];
  const first = b.acquire().then((buf) => { order.push('first'); return buf; });
  const ac = new AbortController();
  const aborted = b.acquire(ac.signal);
  const third = b.acquire().then((buf) => { order.push('third'); return buf; });
  assert.equal(b.queued, 3);
  ac.abort(new Error('client gone'));
  await assert.rejects(aborted, /client gone/);
  assert.equal(b.queued, 2, 'the aborted wait left the queue');
  await assert.rejects(b.acquire(AbortSignal.abort(new Error('already gone'))), /already gone/);
  b.back(x, false);
  assert.equal(await first, x, 'the first waiter gets the buffer that came back');
  b.back(y, false);
  assert.equal(await third, y);
  assert.deepEqual(order, ['first', 'third']);
  assert.equal(b.inUse, 2);
  assert.equal(b.peak, 2, 'never more than `max` out');
  b.lost(1, false);   // a writer collected without ending: counted back, the next waiter gets a new buffer
  assert.equal(b.inUse, 1);
  const z = await b.acquire();
  assert.equal(z.length, 1024);
  assert.equal(b.inUse, 2);
});

test('s3 client: which requests answer with a body (a connection of their own on plain HTTP), and the budget for them', () => {
  const req = (method: string, headers: Record<string, string> = {}): Req => ({ method, headers });
  assert.deepEqual(['GET', 'POST', 'HEAD', 'PUT', 'DELETE'].map((m) => answersWithBody(req(m))), [true, true, false, false, false]);
  assert.equal(answersWithBody(req('PUT', { 'x-amz-copy-source': 'b/k' })), true, 'a copy answers with XML');
  let now = 0;
  const b = new Budget(100, () => now);
  let n = 0;
  while (b.take()) n++;
  assert.equal(n, 100, 'a burst of one second');
  now += 50;
  n = 0;
  while (b.take()) n++;
  assert.equal(n, 5, '100 a second');
  now += 10_000;
  n = 0;
  while (b.take()) n++;
  assert.equal(n, 100, 'never more than one second saved up');
  assert.equal(FRESH_PER_S, 100);
});
