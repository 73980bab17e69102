// What an upload asks the object store (issue #17's speed: requests per PATCH are latency on every chunk). The
// session's state in the store (multipart upload, parts, tail) is found once per API request: the stat that
// resumes the session hands its findings to the writer (StorageDriver.writer's `from`), so a PATCH lists the
// upload's parts once and a commit once, however many parts there are; the process that started the upload lists
// its parts without finding it by ListMultipartUploads first. Real requests to the real Ceph, observed by a logging
// proxy.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from '../support/http.js';
import { randomBlob, sha256 } from '../support/oci-client.js';
import { s3RegistryThrough, type TestRegistry } from '../support/registry-server.js';
import { s3Skip } from '../support/s3.js';
import { startS3RequestLog, type S3RequestLog } from '../support/s3-request-log.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

describe('s3: store requests per upload request', { skip }, () => {
  let log: S3RequestLog;
  let reg: TestRegistry;
  let close: (() => Promise<void>) | undefined;
  before(async () => {
    ({ reg, proxy: log, close } = await s3RegistryThrough('req', startS3RequestLog));
  });
  after(async () => { await close?.(); });

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
      const r = await request(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
      assert.equal(r.status, 201, r.text());
    });
    assert.equal(ops.get('ListMultipartUploads'), 1, `only the session directory's, on cleanup: ${JSON.stringify([...ops])}`);
    assert.equal(ops.get('ListParts'), 1, JSON.stringify([...ops]));
    assert.equal(ops.get('CompleteMultipartUpload'), 1);
    const got = await request(`${reg.url}/v2/req/app/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(all), 'the blob is the bytes sent');
  });
});
