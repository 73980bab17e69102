// What an upload asks the object store (issue #17's speed: requests per PATCH are latency on every chunk). The
// session's state in the store (multipart upload, parts, tail) is found once per API request: the stat that
// resumes the session hands its findings to the writer (StorageDriver.writer's `from`), so a PATCH lists the
// upload's parts once and a commit once, however many parts there are; the process that started the upload lists
// its parts without finding it by ListMultipartUploads first. Real requests to the real Ceph, observed by a logging
// proxy.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request, type RequestBody } from '../support/http.js';
import { randomBlob, sha256, withQuery } from '../support/oci-client.js';
import { s3RegistryThrough, type TestRegistry } from '../support/registry-server.js';
import { S3Driver, checkS3Parameters } from '../../src/registry/storage/drivers/s3.js';
import { s3Skip } from '../support/s3.js';
import { rawKeys as keysOf } from '../support/s3-replicas.js';
import { startS3RequestLog, type S3Request, type S3RequestLog } from '../support/s3-request-log.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

/** POST, then one PATCH of `blob`: the session's next location (absolute) and id. */
async function patchedSession(base: string, repo: string, blob: Buffer): Promise<{ location: string; id: string }> {
  const start = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const p = await request(new URL(start.headers.location!, base).href, { method: 'PATCH', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(p.status, 202, p.text());
  const location = new URL(p.headers.location!, base).href;
  return { location, id: new URL(location).pathname.split('/').pop()! };
}

describe('s3: store requests per upload request', { skip }, () => {
  let log: S3RequestLog;
  let reg: TestRegistry;
  let close: (() => Promise<void>) | undefined;
  let store: S3Driver | undefined;   // the prefix without the proxy
  before(async () => {
    let direct: Record<string, unknown>;
    ({ reg, proxy: log, direct, close } = await s3RegistryThrough('req', startS3RequestLog));
    store = new S3Driver(checkS3Parameters(direct));
  });
  after(async () => { await store?.close(); await close?.(); });
  const rawKeys = () => keysOf(store!);

  /** The requests one API call makes, by operation. */
  async function counted(fn: () => Promise<void>): Promise<Map<string, number>> {
    log.requests.length = 0;
    await fn();
    const m = new Map<string, number>();
    for (const r of log.requests) m.set(r.op, (m.get(r.op) ?? 0) + 1);
    return m;
  }

  test('chunked upload: each PATCH and the commit find the session once (one ListParts; ListMultipartUploads only before the upload exists)', async () => {
    const chunks = [randomBlob(12 * MiB + 5), randomBlob(12 * MiB), randomBlob(3 * MiB + 1)];
    const all = Buffer.concat(chunks);
    const digest = sha256(all);
    const start = await request(`${reg.url}/v2/req/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    let location = new URL(start.headers.location!, reg.url).href;
    let at = 0;
    for (const [i, chunk] of chunks.entries()) {
      const ops = await counted(async () => {
        const r = await request(location, { method: 'PATCH', body: chunk, headers: {
          'content-type': 'application/octet-stream', 'content-range': `${at}-${at + chunk.length - 1}`, 'content-length': chunk.length } });
        assert.equal(r.status, 202, r.text());
        location = new URL(r.headers.location!, reg.url).href;
      });
      at += chunk.length;
      // The first PATCH finds that there is no upload yet; later ones list the parts of the upload it started.
      assert.equal(ops.get('ListMultipartUploads') ?? 0, i === 0 ? 1 : 0, `PATCH ${i + 1}: ${JSON.stringify([...ops])}`);
      assert.equal(ops.get('ListParts') ?? 0, i === 0 ? 0 : 1, `PATCH ${i + 1}: ${JSON.stringify([...ops])}`);
      assert.ok((ops.get('HeadObject') ?? 0) <= 2, `PATCH ${i + 1}: the tail and, before any part, the data object: ${JSON.stringify([...ops])}`);
    }
    const ops = await counted(async () => {
      const r = await request(withQuery(location, { digest }), { method: 'PUT' });
      assert.equal(r.status, 201, r.text());
      // The session's removal runs after the response: its batch delete ends it.
      await waitUntil('the session clean-up after the commit', () => log.requests.some((q) => q.op === 'DeleteObjects'));
    });
    assert.equal(ops.get('ListMultipartUploads'), 1, `only the session directory's, on cleanup: ${JSON.stringify([...ops])}`);
    assert.equal(ops.get('ListParts'), 1, JSON.stringify([...ops]));
    assert.equal(ops.get('CompleteMultipartUpload'), 1);
    const got = await request(`${reg.url}/v2/req/app/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(all), 'the blob is the bytes sent');
  });

  /** POST, one PATCH of `blob` (as `body` with `headers`), the PUT that commits it and the session's clean-up after
   *  it: the store requests of all that, by operation. The blob is then read back whole. */
  async function pushCounted(blob: Buffer, body: RequestBody, headers: Record<string, string | number> = {}): Promise<Map<string, number>> {
    const digest = sha256(blob);
    const start = await request(`${reg.url}/v2/req/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const ops = await counted(async () => {
      const r = await request(new URL(start.headers.location!, reg.url).href, { method: 'PATCH', body, headers: { 'content-type': 'application/octet-stream', ...headers } });
      assert.equal(r.status, 202, r.text());
      const put = await request(withQuery(new URL(r.headers.location!, reg.url).href, { digest }), { method: 'PUT' });
      assert.equal(put.status, 201, put.text());
      await waitUntil('the session clean-up after the commit', () => log.requests.some((q) => q.op === 'DeleteObjects'));
    });
    const got = await request(`${reg.url}/v2/req/app/blobs/${digest}`);
    assert.ok(got.status === 200 && got.body.equals(blob), 'the blob is the bytes sent');
    return ops;
  }

  test('a streamed PATCH that declares only its Content-Length (as skopeo and podman send a layer) gets parts sized to it: each byte sent once', async () => {
    const blob = randomBlob(16 * MiB + 7);
    const ops = await pushCounted(blob, blob, { 'content-length': blob.length });
    // 10 MiB, then the 6 MiB left streamed at its own length; before, the second part was declared 10 MiB, cut
    // short at the end of the body and sent again (three UploadParts, 22 MiB sent for 16).
    assert.equal(ops.get('UploadPart'), 2, JSON.stringify([...ops]));
    // The session has no tail object (its stat found none): the commit deletes none.
    assert.deepEqual(log.requests.filter((q) => q.key.endsWith('~tail')).map((q) => q.op), ['HeadObject', 'HeadObject'], 'the PATCH\'s and the commit\'s lookups only');
  });

  test('a PATCH without a length (a chunked body, as docker sends every layer) under one part: one PutObject, no multipart upload, no part', async () => {
    const blob = randomBlob(7 * MiB + 3);
    const ops = await pushCounted(blob, Readable.from((function* () { for (let at = 0; at < blob.length; at += 64 * 1024) yield blob.subarray(at, at + 64 * 1024); })()));
    // Before, the writer streamed a part from 5 MiB on: a multipart upload, a part cut short at 7 MiB, aborted and
    // sent again, completed (15 MiB sent for 7).
    assert.equal(ops.get('CreateMultipartUpload') ?? 0, 0, JSON.stringify([...ops]));
    assert.equal(ops.get('UploadPart') ?? 0, 0, JSON.stringify([...ops]));
  });

  test('a blob HEAD or GET asks for the link and the data with two HEADs, never a GET of the link', async () => {
    const blob = randomBlob(1000);
    const digest = sha256(blob);
    const missing = await counted(async () => {
      assert.equal((await request(`${reg.url}/v2/req/app/blobs/${digest}`, { method: 'HEAD' })).status, 404);
    });
    assert.deepEqual([...missing], [['HeadObject', 2]], 'a blob not pushed: two HEADs (link, data)');
    log.requests.length = 0;
    const post = await request(`${reg.url}/v2/req/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(post.status, 201, post.text());
    await waitUntil('the session removed after the upload', () => log.requests.some((q) => q.op === 'DeleteObjects'));
    const head = await counted(async () => {
      const r = await request(`${reg.url}/v2/req/app/blobs/${digest}`, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], '1000');
    });
    assert.deepEqual([...head], [['HeadObject', 2]], 'a pushed blob: two HEADs');
    const get = await counted(async () => {
      const r = await request(`${reg.url}/v2/req/app/blobs/${digest}`);
      assert.ok(r.status === 200 && r.body.equals(blob));
    });
    assert.deepEqual([...get].sort(), [['GetObject', 1], ['HeadObject', 2]], 'a GET: two HEADs, then the data');
  });

  test('a commit answers before its session is removed; the session is gone for the client at once, and from the store after', async () => {
    const blob = randomBlob(6 * MiB + 3);
    const digest = sha256(blob);
    const { location, id } = await patchedSession(reg.url, 'req/app', blob);
    // The clean-up's listing of the session's objects (its prefix, not the data path's) and its batch delete are
    // held at the proxy: a commit that waited for them would not answer.
    const mine = (r: S3Request) => (r.op === 'ListObjectsV2' && r.key.endsWith(`/_uploads/${id}`)) || r.op === 'DeleteObjects';
    const release = log.hold(mine);
    try {
      const put = await withDeadline(request(withQuery(location, { digest }), { method: 'PUT' }), 10_000, 'the commit\'s answer');
      assert.equal(put.status, 201, put.text());
      const blobGet = await request(`${reg.url}/v2/req/app/blobs/${digest}`);
      assert.ok(blobGet.status === 200 && blobGet.body.equals(blob), 'the blob is whole at once');
      // The data path was moved by the commit: the session is unknown though its startedat is still stored.
      const st = await request(location);
      assert.equal(st.status, 404, `session status while its removal is held: ${st.status} ${st.text()}`);
      await waitUntil('the clean-up to reach the store', () => log.requests.some((r) => mine(r)));
      assert.ok((await rawKeys()).some((k) => k.includes(`/_uploads/${id}/`)), 'the session is still stored while its removal is held');
    } finally {
      release();
    }
    await waitUntil('the session removed from the store', async () => !(await rawKeys()).some((k) => k.includes(`/_uploads/${id}`)));
  });

  test('closing the registry (SIGTERM\'s path) waits for a committed session\'s removal', async () => {
    const t = await s3RegistryThrough('req-close', startS3RequestLog);
    const d = new S3Driver(checkS3Parameters(t.direct));
    try {
      const blob = randomBlob(1000);
      const digest = sha256(blob);
      const { location, id } = await patchedSession(t.reg.url, 'req/close', blob);
      // The removal's listing of the session is held (not every DeleteObjects: close() itself deletes its lease).
      const removal = (r: S3Request) => r.op === 'ListObjectsV2' && r.key.endsWith(`/_uploads/${id}`);
      const release = t.proxy.hold(removal);
      let closing: Promise<void> | undefined;
      let closed = false;
      try {
        const put = await request(withQuery(location, { digest }), { method: 'PUT' });
        assert.equal(put.status, 201, put.text());
        await waitUntil('the removal\'s listing to reach the store', () => t.proxy.requests.some(removal));
        closing = t.reg.app.close().then(() => { closed = true; });
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(closed, false, 'close() waits while the removal is held');
      } finally {
        release();
      }
      await withDeadline(closing!, 10_000, 'close() after the removal');
      assert.deepEqual((await keysOf(d)).filter((k) => k.includes(`/_uploads/${id}`)), [], 'the session was removed before close() ended');
    } finally {
      await d.close();
      await t.close();
    }
  });
});
