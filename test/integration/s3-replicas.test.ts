// Two berth processes on one S3 prefix (#17 points 3 and 5, the part that needs no shared redis): a chunked
// upload whose PATCHes alternate between them, and continue after one of them was SIGKILLed, completes with the
// right digest, and what one pushed the other serves at once. The upload's state lives in the store (the open
// multipart upload and its tail), so any process continues it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from '../support/http.js';
import { locationPath, randomBlob, sha256, startUpload, withQuery } from '../support/oci-client.js';
import { startBerth, type ServerProcess } from '../support/processes.js';
import { s3Prefix, s3Skip, s3Store, type S3Settings } from '../support/s3.js';
import { S3Driver, checkS3Parameters } from '../../src/registry/storage/drivers/s3.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();

function berthYaml(s: S3Settings, root: string): string {
  return ['listen: 127.0.0.1:0', 'upstreams:', '  v2: embedded', 'registry:', '  storage:', '    s3:',
    `      region: ${s.region}`, `      regionendpoint: ${s.endpoint}`, `      bucket: ${s.bucket}`, `      rootdirectory: ${root}`,
    `      accesskey: ${s.accessKey}`, `      secretkey: ${s.secretKey}`, '      secure: false',
    '    redirect:', '      disable: true', 'log:', '  level: warn', ''].join('\n');
}

async function patch(base: string, loc: string, at: number, part: Buffer): Promise<string> {
  const res = await request(`${base}${loc}`, {
    method: 'PATCH', body: part,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + part.length - 1}`, 'content-length': String(part.length) },
  });
  assert.equal(res.status, 202, `PATCH ${at} on ${base}: ${res.status} ${res.text()}`);
  assert.equal(res.headers.range, `0-${at + part.length - 1}`);
  return locationPath(base, res);
}

describe('s3: several berth processes on one prefix', { skip }, () => {
  test('PATCHes alternate between two processes and survive a SIGKILL; the other serves the blob', async () => {
    const s = await s3Store();
    const root = s3Prefix('replicas');
    const procs: ServerProcess[] = [];
    try {
      const a = await startBerth({ configYaml: berthYaml(s, root) });
      procs.push(a);
      const b = await startBerth({ configYaml: berthYaml(s, root) });
      procs.push(b);
      const blob = randomBlob(27 * MiB + 5);
      const cuts = [0, 3 * MiB, 15 * MiB, 16 * MiB, 27 * MiB + 5];
      let loc = await startUpload(a.url, 'rep/x');
      for (let i = 0; i + 1 < cuts.length; i++) {
        const via = i % 2 === 0 ? procs[0] : b;
        loc = await patch(via.url, loc, cuts[i], blob.subarray(cuts[i], cuts[i + 1]));
        if (i === 1) {   // between PATCHes (the second went to B) A is SIGKILLed; a new process takes its place
          await a.kill();
          procs[0] = await startBerth({ configYaml: berthYaml(s, root) });
        }
      }
      const c = procs[0];
      const status = await request(`${c.url}${loc}`);
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, `0-${blob.length - 1}`, 'the restarted process sees the whole upload');
      const digest = sha256(blob);
      const put = await request(`${b.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
      assert.equal(put.status, 201, `PUT: ${put.status} ${put.text()}`);
      const got = await request(`${c.url}/v2/rep/x/blobs/${digest}`);
      assert.equal(got.status, 200);
      assert.equal(sha256(got.body), digest, 'the other process serves the same bytes');
    } finally {
      await Promise.all(procs.map((p) => p.close()));
      const d = new S3Driver(checkS3Parameters({ region: s.region, regionendpoint: s.endpoint, bucket: s.bucket,
        accesskey: s.accessKey, secretkey: s.secretKey, rootdirectory: root, secure: false }));
      try {
        for (const p of await d.list('/').catch(() => [])) await d.delete(p);
        await d.abortUploads('/', () => true);
      } finally {
        await d.close();
      }
    }
  });
});
