// kill -9 of a replica while a PATCH body is flowing (#17 point 5), on the real Ceph RGW. An earlier PATCH left a
// tail (13 MiB at chunksize 10 MiB: one part plus a 3 MiB `~tail`, under the 5 MiB a part needs); the next PATCH's writer sends the tail's bytes
// in its first new part and deletes the tail only at commit, so a writer that dies after that part leaves a tail
// whose bytes are already in the parts. The tail records the part count it was written at (x-amz-meta-berth-parts)
// and such a stale tail is not counted: the upload's size is exactly what the parts hold, and the client resumes
// there on another replica. Tested at the driver (a writer abandoned mid-stream) and with real processes.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { createClient } from 'redis';
import { pathFor } from '../../src/registry/storage/paths.js';
import { request } from '../support/http.js';
import { locationPath, randomBlob, sha256, startUpload, withQuery } from '../support/oci-client.js';
import { redisSkip } from '../support/redis-server.js';
import { s3Prefix, s3Skip, s3Store } from '../support/s3.js';
import { noSessionLeft, openMultipartUploads, prefixDriver, rawKeys, removePrefix, replicaSet } from '../support/s3-replicas.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

describe('s3: a writer that dies after storing a part', { skip }, () => {
  test('driver: a tail made stale by an abandoned writer is not counted; the next writer continues exactly', async () => {
    const s = await s3Store();
    const root = s3Prefix('stale-tail');
    const d = prefixDriver(s, root);
    try {
      const p = '/up/data';
      const first = randomBlob(13 * MiB);
      const second = randomBlob(8 * MiB);
      const third = randomBlob(7 * MiB + 3);
      const w1 = await d.writer(p);
      await pipeline(Readable.from([first]), w1.stream);
      await w1.close!();
      assert.deepEqual((await d.stat(p, { pending: true })).size, 13 * MiB);
      assert.ok((await rawKeys(d)).includes(`${p}~tail`), 'the 3 MiB after the first part (under the 5 MiB a part needs) are in the tail object');

      // The second writer re-sends the tail's 3 MiB plus 7 MiB of its own as part 2, buffers 1 MiB, then its
      // process "dies": the stream is destroyed, neither close() nor commit() nor cancel() runs.
      const w2 = await d.writer(p, { append: true });
      assert.equal(w2.size, 13 * MiB);
      await new Promise<void>((resolve, reject) => w2.stream.write(second, (err) => (err ? reject(err) : resolve())));
      w2.stream.destroy();
      // Part 2 was sent whole (parts overlap: the write returned before the store's answer), so the store keeps it.
      let pend = await d.pendingState(p);
      for (const until = Date.now() + 10_000; pend?.parts.length !== 2 && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 50));
        pend = await d.pendingState(p);
      }
      assert.equal(pend?.parts.length, 2, 'part 2 reached the store');
      const st = await d.stat(p, { pending: true });
      assert.equal(st.pending, true);
      assert.equal(st.size, 20 * MiB, 'two parts; the stale tail (written at one part) is not counted again');

      const w3 = await d.writer(p, { append: true });
      assert.equal(w3.size, 20 * MiB);
      await pipeline(Readable.from([third]), w3.stream);
      await w3.commit();
      const got = await d.getContent(p);
      const want = Buffer.concat([first, second.subarray(0, 7 * MiB), third]);
      assert.equal(got.length, want.length);
      assert.ok(got.equals(want), 'the object is the first 20 MiB stored, then the third writer\'s bytes');
      assert.deepEqual((await rawKeys(d)).filter((k) => k.startsWith(p)), [p], 'the commit removed the tail');
      assert.deepEqual(await openMultipartUploads(d), []);
    } finally {
      await d.close();
      await removePrefix(s, root);
    }
  });

  for (const shared of [false, true]) {
    const how = shared ? 'with a shared redis (the dead replica\'s upload lock expires first)' : 'without redis';
    test(`kill -9 of a replica mid-PATCH, ${how}: the other reports the stored offset, the client resumes there and commits`,
      { skip: shared && redisSkip() }, async () => {
      const set = await replicaSet('kill-upload', { redis: shared });
      const { driver: d, redis } = set;
      try {
        const [a, b] = await set.start(2);
        const name = 'kill/x';
        const blob = randomBlob(53 * MiB + 7);
        const digest = sha256(blob);
        let loc = await startUpload(a.url, name);
        const id = loc.split('?')[0]!.split('/').pop()!;
        const dataPath = pathFor({ kind: 'uploadData', name, id });

        // 10 MiB (one part), then 3 MiB: under the 5 MiB a part needs, so it is the tail. (One 13 MiB PATCH that
        // declares its length is stored as two parts, 8 and 5 MiB, with no tail: the writer sizes parts by it.)
        for (const [from, to] of [[0, 10 * MiB], [10 * MiB, 13 * MiB]] as const) {
          const res = await request(`${a.url}${loc}`, {
            method: 'PATCH', body: blob.subarray(from, to),
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}`, 'content-length': String(to - from) },
          });
          assert.equal(res.status, 202, res.text());
          loc = locationPath(a.url, res);
        }
        assert.equal((await d.pendingState(dataPath))?.tailSize, 3 * MiB, 'one part and a 3 MiB tail');

        // The second PATCH declares the remaining 40 MiB, sends 8 MiB and stalls; once part 2 (the tail's 3 MiB and
        // 7 MiB of this body) is in the store, A is SIGKILLed with the request open.
        const at = 13 * MiB;
        const url = new URL(`${a.url}${loc}`);
        const req = httpRequest(url, {
          method: 'PATCH',
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${blob.length - 1}`, 'content-length': String(blob.length - at) },
        });
        const outcome = new Promise<string>((resolve) => {
          req.once('response', (res) => { res.resume(); resolve(`response ${res.statusCode}`); });
          req.once('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
        });
        req.write(blob.subarray(at, at + 8 * MiB));
        await waitUntil('part 2 of the upload in the store', async () => ((await d.pendingState(dataPath))?.parts.length ?? 0) >= 2,
          { timeoutMs: 30_000, intervalMs: 100 });
        await a.kill();
        assert.equal(await withDeadline(outcome, 10_000, 'the killed PATCH to end'), 'error ECONNRESET');
        assert.equal((await d.pendingState(dataPath))?.parts.length, 2, 'no more parts after the kill');
        assert.ok((await rawKeys(d)).includes(`${dataPath}~tail`), 'the tail of the first PATCH is still there (stale)');

        if (redis) {   // A held the session's lock in redis while it wrote: the key outlives A until its TTL runs out
          const admin = createClient({ socket: { path: redis.socket, reconnectStrategy: false } });
          admin.on('error', () => {});
          await admin.connect();
          try {
            assert.equal((await admin.keys(`*upload-lock::${name}::${id}`)).length, 1);
          } finally {
            admin.destroy();
          }
        }
        // The client asks B where the upload stands: the two parts (20 MiB), not parts plus the stale tail (23 MiB).
        const status = await request(`${b.url}${loc}`);
        assert.equal(status.status, 204, status.text());
        assert.equal(status.headers.range, `0-${20 * MiB - 1}`);
        assert.equal(status.headers['docker-upload-uuid'], id);
        const rest = blob.subarray(20 * MiB);
        const resumed = await request(`${b.url}${loc}`, {
          method: 'PATCH', body: rest,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${20 * MiB}-${blob.length - 1}`, 'content-length': String(rest.length) },
        });
        assert.equal(resumed.status, 202, resumed.text());
        assert.equal(resumed.headers.range, `0-${blob.length - 1}`);
        const put = await request(`${b.url}${withQuery(locationPath(b.url, resumed), { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
        assert.equal(put.status, 201, put.text());
        assert.equal(put.headers['docker-content-digest'], digest);

        const [a2] = await set.start(1);
        for (const via of [a2, b]) {
          const got = await request(`${via.url}/v2/${name}/blobs/${digest}`);
          assert.equal(got.status, 200);
          assert.ok(got.body.equals(blob), `${via.url} serves exactly the uploaded bytes`);
        }
        await noSessionLeft(d, 'nothing left of the session');
      } finally {
        await set.close();
      }
    });
  }
});
