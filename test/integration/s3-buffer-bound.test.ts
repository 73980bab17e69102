// Upload memory on S3 is bounded (registry.storage.s3.buffermemory): each upload in progress holds one part buffer
// (chunksize), and past the bound a PATCH waits for one before it reads its body, instead of the process running
// out of memory under many concurrent uploads (a flood, or only many clients at once). Through berth (the in-process
// gateway) on the real Ceph RGW with room for one buffer: concurrent uploads all complete, one at a time; a client
// that gives up while its PATCH waits takes nothing with it: berth, not reading that body, notices only when the
// buffer comes to it (the body then fails at once, as the socket is gone) and passes the buffer on, so the next
// upload gets it. (A wait whose request's signal aborts leaves the queue at once: test/unit/s3-driver.test.ts.)
// Meanwhile /metrics shows the buffer held and the upload waiting (berth_upload_buffers_*).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createMetrics } from '../../src/metrics/metrics.js';
import { request } from '../support/http.js';
import { randomBlob, sha256, withQuery } from '../support/oci-client.js';
import { deleteS3Prefix, startRegistry, type TestRegistry } from '../support/registry-server.js';
import { s3Parameters, s3Prefix, s3Skip, s3Store } from '../support/s3.js';
import { waitUntil } from '../support/wait.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

describe('s3: part buffers bounded by buffermemory (one buffer)', { skip }, () => {
  let reg: TestRegistry;
  let params: Record<string, unknown>;
  before(async () => {
    params = { ...s3Parameters(await s3Store(), s3Prefix('bound')), chunksize: 5 * MiB, buffermemory: 5 * MiB };
    reg = await startRegistry({ driver: 's3', s3Parameters: params });
  });
  after(async () => {
    await reg?.close();
    if (params) await deleteS3Prefix(params);
  });

  async function session(repo: string): Promise<string> {
    const r = await request(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(r.status, 202);
    return new URL(r.headers.location!, reg.url).href;
  }

  async function upload(repo: string, blob: Buffer): Promise<void> {
    const p = await request(await session(repo), { method: 'PATCH', body: blob, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 60_000 });
    assert.equal(p.status, 202, p.text());
    const put = await request(withQuery(new URL(p.headers.location!, reg.url).href, { digest: sha256(blob) }), { method: 'PUT' });
    assert.equal(put.status, 201, put.text());
  }

  test('4 uploads at once with room for one buffer: all complete, the bytes exact', async () => {
    const blobs = [0, 1, 2, 3].map(() => randomBlob(12 * MiB + 5));
    await Promise.all(blobs.map((b, i) => upload(`bound/c${i}`, b)));
    for (const [i, b] of blobs.entries()) {
      const got = await request(`${reg.url}/v2/bound/c${i}/blobs/${sha256(b)}`);
      assert.ok(got.status === 200 && got.body.equals(b), `upload ${i}`);
    }
  });

  test('a client that gives up while its PATCH waits for a buffer takes nothing with it: its turn passes the buffer on, the next upload gets it', async () => {
    // What an operator sees on /metrics meanwhile (berth_upload_buffers_*).
    const metrics = createMetrics();
    const gauge = async (name: string) => new RegExp(`^${name}\\{driver="s3"\\} (\\S+)$`, 'm').exec(await metrics.registry.metrics())?.[1];
    try {
      // A holds the one buffer: 1 MiB sent, then its body pauses until released.
      let release!: () => void;
      const paused = new Promise<void>((r) => { release = r; });
      const a = randomBlob(6 * MiB);
      const slow = Readable.from((async function* () { yield a.subarray(0, MiB); await paused; yield a.subarray(MiB); })());
      const aDone = request(await session('bound/a'), { method: 'PATCH', body: slow, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 60_000 });
      await waitUntil('A holding the buffer', async () => (await gauge('berth_upload_buffers_in_use')) === '1');
      // B waits for that buffer; its client gives up after 1.5 s (the connection closes) before sending all.
      const b = randomBlob(MiB);
      const never = new Promise<void>(() => {});
      const bBody = Readable.from((async function* () { yield b; await never; })());
      const bDone = request(await session('bound/b'), { method: 'PATCH', body: bBody, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 1500, fresh: true })
        .then(() => undefined, (err: Error) => err);
      await waitUntil('B waiting for the buffer', async () => (await gauge('berth_upload_buffers_waiting')) === '1', { timeoutMs: 1200 });
      assert.equal(await gauge('berth_upload_buffers_in_use'), '1');
      assert.equal(await gauge('berth_upload_buffer_bytes'), String(5 * MiB));
      assert.equal(await gauge('berth_upload_buffers_limit'), '1');
      assert.ok((await bDone) instanceof Error, 'B got no answer while it waited, and gave up');
      bBody.destroy();
      release();
      const aRes = await aDone;
      assert.equal(aRes.status, 202, aRes.text());
      // C gets the buffer (with a leaked one it would wait until its deadline)
      const c = randomBlob(7 * MiB);
      await upload('bound/c', c);
      const got = await request(`${reg.url}/v2/bound/c/blobs/${sha256(c)}`);
      assert.ok(got.status === 200 && got.body.equals(c));
      assert.equal(await gauge('berth_upload_buffers_in_use'), '0', 'every buffer came back');
    } finally {
      metrics.close();
    }
  });
});
