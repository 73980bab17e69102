// A PATCH whose part the store fails after receiving it whole (S3's occasional 500 InternalError; s3-writer.ts:
// parts overlap, and a sent part keeps its buffer until the store answers): once, the part is sent again and the
// PATCH succeeds; on every sending, the PATCH answers 503 UNAVAILABLE, the session keeps every part before the
// failed one (its status says so), and the client that resumes there completes the blob with the right digest.
// Real berth, real Ceph; a proxy in front of the store fails the part (test/support/s3-request-log.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from '../support/http.js';
import { randomBlob, sha256 } from '../support/oci-client.js';
import { s3RegistryThrough, type TestRegistry } from '../support/registry-server.js';
import { s3Skip } from '../support/s3.js';
import { startS3PartGate, type S3PartGate } from '../support/s3-request-log.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

describe('s3: a part the store fails after its whole body', { skip }, () => {
  let gate: S3PartGate;
  let reg: TestRegistry;
  let close: (() => Promise<void>) | undefined;
  before(async () => {
    ({ reg, proxy: gate, close } = await s3RegistryThrough('part-fail', startS3PartGate));
  });
  after(async () => { await close?.(); });

  test('once: the part is sent again from its buffer, PATCH → 202, the blob is the bytes sent', async () => {
    const blob = randomBlob(36 * MiB + 7);
    const digest = sha256(blob);
    const start = await request(`${reg.url}/v2/pf/once/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.location!, reg.url).href;
    gate.failed.length = 0;
    gate.stored.length = 0;

    gate.failAfterBody(2);
    const patched = await request(location, { method: 'PATCH', body: blob, headers: {
      'content-type': 'application/octet-stream', 'content-range': `0-${blob.length - 1}`, 'content-length': blob.length } });
    assert.equal(patched.status, 202, patched.text());
    assert.equal(patched.headers.range, `0-${blob.length - 1}`);
    assert.deepEqual(gate.failed, [2]);
    assert.deepEqual(gate.stored, [1, 2, 3, 4]);
    const next = new URL(patched.headers.location!, reg.url).href;
    const done = await request(`${next}${next.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
    assert.equal(done.status, 201, done.text());
    const got = await request(`${reg.url}/v2/pf/once/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(blob), 'the blob is the bytes sent');
  });

  test('on every sending: PATCH → 503 UNAVAILABLE; the session holds the parts before it; the client resumes there and commits', async () => {
    const blob = randomBlob(36 * MiB + 7);
    const digest = sha256(blob);
    const start = await request(`${reg.url}/v2/pf/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.location!, reg.url).href;
    gate.failed.length = 0;
    gate.stored.length = 0;

    gate.failAfterBody(2, 4);   // streamed once, then the SDK's 3 attempts from the buffer
    const failed = await request(location, { method: 'PATCH', body: blob, headers: {
      'content-type': 'application/octet-stream', 'content-range': `0-${blob.length - 1}`, 'content-length': blob.length } });
    assert.equal(failed.status, 503, failed.text());
    assert.equal(JSON.parse(failed.text()).errors[0].code, 'UNAVAILABLE');
    assert.equal(failed.headers['retry-after'], '5');
    assert.deepEqual(gate.failed, [2, 2, 2, 2]);
    assert.deepEqual(gate.stored, [1], 'part 3, streaming when part 2 failed, was never completed');

    const status = await request(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, `0-${10 * MiB - 1}`, 'the session is the part before the failed one');

    const rest = blob.subarray(10 * MiB);
    const resumed = await request(location, { method: 'PATCH', body: rest, headers: {
      'content-type': 'application/octet-stream', 'content-range': `${10 * MiB}-${blob.length - 1}`, 'content-length': rest.length } });
    assert.equal(resumed.status, 202, resumed.text());
    const next = new URL(resumed.headers.location!, reg.url).href;
    const done = await request(`${next}${next.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
    assert.equal(done.status, 201, done.text());
    const got = await request(`${reg.url}/v2/pf/app/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(blob), 'the blob is the bytes sent');
  });
});
