// Two replicas given PATCHes of one upload session at the same offset at once, with different bytes (#17 point 5):
// with a shared redis the upload lock (core/upload-lock.ts, cache/redis-upload-lock.ts) lets one write and makes
// the other wait; that one then finds the session moved on and answers 416 with the new Range. The stored bytes
// are one PATCH's, never a mix, and the committed blob is exactly its digest's content. Without the lock both
// passed the range check and the last writer's bytes replaced the other's part by part, so a replica that kept the
// running hash of its own bytes committed a blob whose content was not its digest (see README "S3 storage").
import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { describe, test } from 'node:test';
import { request } from '../support/http.js';
import { locationPath, randomBlob, sha256, startUpload, withQuery } from '../support/oci-client.js';
import { redisSkip } from '../support/redis-server.js';
import { s3Skip } from '../support/s3.js';
import { noSessionLeft, openMultipartUploads, replicaSet } from '../support/s3-replicas.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const MiB = 1024 * 1024;
const s3skip = await s3Skip();
const skip = s3skip || redisSkip();

interface Outcome { status: number; range: string; body: string }

/** A PATCH whose body the test feeds by hand; `done` is its response (or the connection error). */
function openPatch(url: string, start: number, length: number): { req: ClientRequest; done: Promise<Outcome> } {
  const req = httpRequest(new URL(url), {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + length - 1}`, 'content-length': String(length) },
  });
  req.on('error', () => {});   // a refused body may be cut after the answer: the answer is what counts
  const done = new Promise<Outcome>((resolve, reject) => {
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; })
        .on('end', () => resolve({ status: res.statusCode!, range: String(res.headers.range ?? ''), body }));
    });
    req.once('error', reject);
  });
  return { req, done };
}

describe('s3: the upload lock across replicas (shared redis)', { skip }, () => {
  test('two PATCHes of one session at one offset on two replicas: one writes, the other answers 416; the blob is exact', async () => {
    const set = await replicaSet('upload-lock', { redis: true });
    const d = set.driver;
    try {
      const [a, b] = await set.start(2);
      const name = 'lock/x';
      const head = randomBlob(15 * MiB);
      const bodies = [randomBlob(15 * MiB), randomBlob(15 * MiB)];
      let loc = await startUpload(a.url, name);
      const first = await request(`${a.url}${loc}`, {
        method: 'PATCH', body: head,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${15 * MiB - 1}`, 'content-length': String(15 * MiB) },
      });
      assert.equal(first.status, 202, first.text());
      loc = locationPath(a.url, first);

      // Both requests arrive with 1 MiB of their bodies (less than a part: nothing reaches the store yet), then the
      // rest of both is sent at once.
      const patches = [a, b].map((p) => openPatch(`${p.url}${loc}`, 15 * MiB, 15 * MiB));
      patches.forEach((p, i) => p.req.write(bodies[i]!.subarray(0, MiB)));
      const early = await Promise.race([...patches.map((p) => p.done), new Promise<'none'>((r) => setTimeout(() => r('none'), 1000).unref())]);
      assert.equal(early, 'none', 'neither answered before its body was sent');
      patches.forEach((p, i) => p.req.end(bodies[i]!.subarray(MiB)));
      const outcomes = await withDeadline(Promise.all(patches.map((p) => p.done)), 40_000, 'both PATCHes to answer');
      const won = outcomes.findIndex((o) => o.status === 202);
      assert.ok(won >= 0, `one PATCH wrote: ${JSON.stringify(outcomes)}`);
      const lost = 1 - won;
      assert.equal(outcomes[won]!.range, `0-${30 * MiB - 1}`);
      assert.equal(outcomes[lost]!.status, 416, `the other waited, then found the session moved on: ${JSON.stringify(outcomes[lost])}`);
      assert.equal(outcomes[lost]!.range, `0-${30 * MiB - 1}`);
      assert.match(outcomes[lost]!.body, /BLOB_UPLOAD_INVALID/);

      // Committed where the winner ran (that process holds the running hash of its own bytes).
      const content = Buffer.concat([head, bodies[won]!]);
      const digest = sha256(content);
      const via = [a, b][won]!;
      const put = await request(`${via.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
      assert.equal(put.status, 201, put.text());
      for (const p of [a, b]) {
        const got = await request(`${p.url}/v2/${name}/blobs/${digest}`);
        assert.equal(got.status, 200);
        assert.ok(got.body.equals(content), `${p.url} serves exactly the winning PATCH's bytes`);
      }
      await noSessionLeft(d, 'nothing left of the session');
    } finally {
      await set.close();
    }
  });
});

// Without redis nothing serialises the two PATCHes: both pass the range check and the store ends with parts of
// either, or a mix. The running hash a replica kept of its own bytes is then not trusted at commit: the session's
// content token (the parts' and tail's ETags, FileWriter.version) differs from the one it recorded, so the stored
// bytes are hashed again. The commit either succeeds because the store really holds that content, or answers
// DIGEST_INVALID; no blob is ever served whose bytes are not its digest.
describe('s3: two replicas without redis, two PATCHes at one offset', { skip: s3skip }, () => {
  test('a commit never makes a blob whose content is not its digest', async () => {
    const set = await replicaSet('no-lock');
    try {
      const [a, b] = await set.start(2);
      const name = 'nolock/x';
      const head = randomBlob(15 * MiB);
      const bodies = [randomBlob(15 * MiB), randomBlob(15 * MiB)];
      let loc = await startUpload(a.url, name);
      const first = await request(`${a.url}${loc}`, {
        method: 'PATCH', body: head,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${15 * MiB - 1}`, 'content-length': String(15 * MiB) },
      });
      assert.equal(first.status, 202, first.text());
      loc = locationPath(a.url, first);
      const patches = [a, b].map((p) => openPatch(`${p.url}${loc}`, 15 * MiB, 15 * MiB));
      patches.forEach((p, i) => p.req.write(bodies[i]!.subarray(0, MiB)));
      await new Promise((r) => setTimeout(r, 300));
      patches.forEach((p, i) => p.req.end(bodies[i]!.subarray(MiB)));
      const outcomes = await withDeadline(Promise.all(patches.map((p) => p.done)), 40_000, 'both PATCHes to answer');
      for (const o of outcomes) assert.ok(o.status === 202 || o.status === 416, JSON.stringify(o));

      // Each replica commits what its client sent, through itself (where it kept the hash of its own bytes).
      let served = 0;
      for (const [i, via] of [a, b].entries()) {
        const content = Buffer.concat([head, bodies[i]!]);
        const digest = sha256(content);
        const put = await request(`${via.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
        assert.ok([201, 400, 404].includes(put.status), `PUT via replica ${i}: ${put.status} ${put.text()}`);
        if (put.status === 400) assert.match(put.text(), /DIGEST_INVALID/);
        for (const p of [a, b]) {
          const got = await request(`${p.url}/v2/${name}/blobs/${digest}`);
          if (put.status === 201) {
            assert.equal(got.status, 200);
            assert.equal(sha256(got.body), digest, `replica ${i}'s commit: the bytes served are the digest's`);
            served++;
          } else {
            assert.equal(got.status, 404, `no blob after a refused commit (replica ${i})`);
          }
        }
      }
      assert.ok(served <= 2, 'at most one commit made a blob');
      // A committed session's removal (which aborts what is left under it) runs after the commit's response.
      await waitUntil('no open multipart upload', async () => (await openMultipartUploads(set.driver)).length === 0, { intervalMs: 100 });
    } finally {
      await set.close();
    }
  });
});
