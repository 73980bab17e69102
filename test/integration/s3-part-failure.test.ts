// A PATCH whose part the store fails after receiving it whole (S3's occasional 500 InternalError; s3-writer.ts:
// parts overlap, and a sent part keeps its buffer until the store answers): once, the part is sent again and the
// PATCH succeeds; on every sending, the PATCH answers 503 UNAVAILABLE, the session keeps every part before the
// failed one (its status says so), and the client that resumes there completes the blob with the right digest.
// Real berth, real Ceph; a proxy in front of the store fails the part (test/support/s3-request-log.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from '../support/http.js';
import { randomBlob, sha256, startUpload, withQuery } from '../support/oci-client.js';
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

  /** POST, then the gate's records cleared: the session's Location URL. */
  async function session(repo: string): Promise<string> {
    const loc = await startUpload(reg.url, repo);
    gate.failed.length = 0;
    gate.stored.length = 0;
    return `${reg.url}${loc}`;
  }

  /** PATCH of `bytes` at `at` with Content-Range and Content-Length. */
  const patch = (location: string, bytes: Buffer, at = 0) => request(location, { method: 'PATCH', body: bytes, headers: {
    'content-type': 'application/octet-stream', 'content-range': `${at}-${at + bytes.length - 1}`, 'content-length': bytes.length } });

  /** PUT ?digest= at the PATCH's Location, then the blob read back whole. */
  async function commitAndRead(repo: string, patched: { headers: Record<string, unknown> }, blob: Buffer): Promise<void> {
    const digest = sha256(blob);
    const next = new URL(String(patched.headers.location), reg.url);
    const done = await request(`${reg.url}${withQuery(next.pathname + next.search, { digest })}`, { method: 'PUT' });
    assert.equal(done.status, 201, done.text());
    const got = await request(`${reg.url}/v2/${repo}/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(blob), 'the blob is the bytes sent');
  }

  test('once: the part is sent again from its buffer, PATCH → 202, the blob is the bytes sent', async () => {
    const blob = randomBlob(36 * MiB + 7);
    const location = await session('pf/once');
    gate.failAfterBody(2);
    const patched = await patch(location, blob);
    assert.equal(patched.status, 202, patched.text());
    assert.equal(patched.headers.range, `0-${blob.length - 1}`);
    assert.deepEqual(gate.failed, [2]);
    assert.deepEqual(gate.stored, [1, 2, 3, 4]);
    await commitAndRead('pf/once', patched, blob);
  });

  test('on every sending: PATCH → 503 UNAVAILABLE; the session holds the parts before it; the client resumes there and commits', async () => {
    const blob = randomBlob(36 * MiB + 7);
    const location = await session('pf/app');
    gate.failAfterBody(2, 4);   // streamed once, then the SDK's 3 attempts from the buffer
    const failed = await patch(location, blob);
    assert.equal(failed.status, 503, failed.text());
    assert.equal(JSON.parse(failed.text()).errors[0].code, 'UNAVAILABLE');
    assert.equal(failed.headers['retry-after'], '5');
    assert.deepEqual(gate.failed, [2, 2, 2, 2]);
    assert.deepEqual(gate.stored, [1], 'part 3, streaming when part 2 failed, was never completed');

    const status = await request(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, `0-${10 * MiB - 1}`, 'the session is the part before the failed one');

    const resumed = await patch(location, blob.subarray(10 * MiB), 10 * MiB);
    assert.equal(resumed.status, 202, resumed.text());
    await commitAndRead('pf/app', resumed, blob);
  });
});
