// Which S3 requests go on connections of their own (s3-client.ts, answersWithBody): on a plain-HTTP endpoint those
// whose answer has a body (GET, lists, POST, copies) each open one, so a store that holds a body behind its headers
// until the client's delayed ACK (Ceph RGW's default frontend) answers them at once; HEAD, PUT and DELETE share
// kept-alive connections. Real driver, real Ceph; a proxy in front of it counts the client's connections
// (test/support/s3-request-log.ts). The budget beyond which they share too (FRESH_PER_S) is unit-tested.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { s3Prefix, s3Skip, s3Store } from '../support/s3.js';
import { prefixDriver, removePrefix } from '../support/s3-replicas.js';
import { startS3RequestLog } from '../support/s3-request-log.js';

const skip = await s3Skip();

describe('s3 client: connections on a plain-HTTP endpoint', { skip }, () => {
  test('GET, ListObjectsV2, ListMultipartUploads, CreateMultipartUpload and CopyObject: one connection each; PUT, HEAD and DELETE reuse one', async () => {
    const s = await s3Store();
    const log = await startS3RequestLog(s.endpoint);
    const root = s3Prefix('conn');
    const d = prefixDriver({ ...s, endpoint: log.url }, root);
    try {
      const c = await d.connection();
      const Bucket = d.bucket;
      const key = (i: number) => d.key(`/c/k${i}`);
      for (let i = 0; i < 3; i++) await c.client.send(new c.commands.PutObjectCommand({ Bucket, Key: key(i), Body: Buffer.from(`v${i}`) }));
      for (let i = 0; i < 3; i++) await c.client.send(new c.commands.HeadObjectCommand({ Bucket, Key: key(i) }));
      for (let i = 0; i < 3; i++) {
        const r = await c.client.send(new c.commands.GetObjectCommand({ Bucket, Key: key(i) }));
        assert.equal(await r.Body!.transformToString(), `v${i}`);
      }
      await c.client.send(new c.commands.ListObjectsV2Command({ Bucket, Prefix: d.key('/c/') }));
      await c.client.send(new c.commands.ListMultipartUploadsCommand({ Bucket, Prefix: d.key('/c/') }));
      const mp = await c.client.send(new c.commands.CreateMultipartUploadCommand({ Bucket, Key: key(9) }));
      await c.client.send(new c.commands.AbortMultipartUploadCommand({ Bucket, Key: key(9), UploadId: mp.UploadId }));
      await c.client.send(new c.commands.CopyObjectCommand({ Bucket, Key: key(8), CopySource: `${Bucket}/${key(0)}` }));
      for (let i = 0; i < 3; i++) await c.client.send(new c.commands.DeleteObjectCommand({ Bucket, Key: key(i) }));

      const on = new Map<string, number[]>();
      log.requests.forEach((r, i) => on.set(r.op, [...(on.get(r.op) ?? []), log.requestConnection[i]!]));
      const own = ['GetObject', 'ListObjectsV2', 'ListMultipartUploads', 'CreateMultipartUpload', 'CopyObject'].flatMap((op) => on.get(op) ?? []);
      assert.equal(own.length, 7, JSON.stringify([...on]));
      const shared = ['PutObject', 'HeadObject', 'AbortMultipartUpload', 'DeleteObject'].flatMap((op) => on.get(op) ?? []);
      assert.equal(shared.length, 10);
      assert.equal(new Set(own).size, own.length, 'each answer with a body came on a connection of its own');
      assert.ok(own.every((conn) => !shared.includes(conn)), 'none of them on a shared connection');
      assert.equal(new Set(shared).size, 1, 'one at a time, the others reuse one kept-alive connection');
      assert.equal(log.connections(), own.length + 1);
    } finally {
      await d.close();
      await log.close();
      await removePrefix(s, root);
    }
  });
});
