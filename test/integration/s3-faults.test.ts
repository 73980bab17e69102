// The s3 driver when the object store cannot be reached (#17 point 6, first part): requests that need the store
// answer 503 UNAVAILABLE with Retry-After instead of 500, and the storage health check fails. The store here is
// an endpoint nobody listens on (127.0.0.1 port 1: connection refused), so this needs no Ceph.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from '../support/http.js';
import { expectOciError, sha256 } from '../support/oci-client.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';

describe('s3: object store unreachable', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({
      driver: 's3',
      s3Parameters: { region: 'us-east-1', regionendpoint: 'http://127.0.0.1:1', bucket: 'b', accesskey: 'a', secretkey: 's', secure: false },
    });
  });
  after(() => reg.close());

  it('pull and push answer 503 UNAVAILABLE with Retry-After; the health check fails', async () => {
    const digest = sha256('x');
    for (const [method, path] of [
      ['GET', `/v2/r/manifests/v1`], ['HEAD', `/v2/r/blobs/${digest}`], ['GET', `/v2/r/blobs/${digest}`],
      ['POST', '/v2/r/blobs/uploads/'], ['GET', '/v2/_catalog'],
    ] as const) {
      const res = await request(`${reg.url}${path}`, { method, headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      if (method === 'HEAD') assert.equal(res.status, 503, `${method} ${path}`);
      else expectOciError(res, 503, 'UNAVAILABLE', `${method} ${path}`);
      assert.equal(res.headers['retry-after'], '5', `${method} ${path}`);
    }
    await assert.rejects(reg.app.storage.check({ signal: AbortSignal.timeout(10_000) }), (err: { code?: string }) => err.code === 'STORAGE_UNAVAILABLE');
  });
});
