// `node --import tsx bench/s3-latency.ts [--runs N]`: the store's answer time per kind of request, with the client
// berth uses (src/registry/storage/drivers/s3-client.ts), one request at a time on a kept-alive connection. It shows
// what a store's frontend adds per request (bench/RESULTS.md, "Where berth's time goes on S3"): Ceph RGW's beast
// without `tcp_nodelay=1` holds each response body behind its headers until the client's delayed ACK (~40 ms on
// Linux), so every request whose answer has a body (GET, List*, CompleteMultipartUpload, DeleteObjects, a 404 with
// its XML error) takes ~45 ms, and HEAD, PUT and DELETE a few. Uses the tests' store (test/support/s3.ts's
// s3Store(): the S3_* environment, else scripts/s3-ceph.sh); writes and deletes keys under a fresh prefix.
import { parseArgs } from 'node:util';
import { connect } from '../src/registry/storage/drivers/s3-client.js';
import { benchStore, newPrefix } from './s3-stacks.js';

const { values: a } = parseArgs({ options: { runs: { type: 'string', default: '8' } } });
const runs = Math.max(1, Math.min(1000, Number(a.runs) || 8));
const s3 = await benchStore();
const c = connect({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true, accessKey: s3.accessKey, secretKey: s3.secretKey, skipVerify: false });
const B = s3.bucket;
const C = c.commands;
const root = newPrefix('latency').replace(/^\//, '');

async function row(name: string, f: (i: number) => Promise<unknown>): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await f(i).catch(() => undefined);   // 404s are part of what is timed
    ms.push(performance.now() - t);
  }
  const sorted = [...ms].sort((x, y) => x - y);
  console.log(`${name.padEnd(34)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1).padStart(6)} ms   (${ms.map((x) => x.toFixed(0)).join(' ')})`);
}

try {
  console.log(`store ${s3.endpoint}, ${runs} requests of each kind, one at a time`);
  await row('PutObject (5 bytes)', (i) => c.client.send(new C.PutObjectCommand({ Bucket: B, Key: `${root}/x${i}`, Body: 'hello' })));
  await row('HeadObject (found)', (i) => c.client.send(new C.HeadObjectCommand({ Bucket: B, Key: `${root}/x${i}` })));
  await row('HeadObject (404, no body)', (i) => c.client.send(new C.HeadObjectCommand({ Bucket: B, Key: `${root}/none${i}` })));
  await row('GetObject (404, XML body)', (i) => c.client.send(new C.GetObjectCommand({ Bucket: B, Key: `${root}/none${i}` })));
  await row('GetObject (5 bytes)', async (i) => {
    const r = await c.client.send(new C.GetObjectCommand({ Bucket: B, Key: `${root}/x${i}` }));
    await r.Body!.transformToByteArray();
  });
  await row('ListObjectsV2 (one key)', (i) => c.client.send(new C.ListObjectsV2Command({ Bucket: B, Prefix: `${root}/x${i}`, MaxKeys: 1 })));
  await row('ListMultipartUploads', (i) => c.client.send(new C.ListMultipartUploadsCommand({ Bucket: B, Prefix: `${root}/x${i}` })));
  await row('DeleteObject', (i) => c.client.send(new C.DeleteObjectCommand({ Bucket: B, Key: `${root}/x${i}` })));
} finally {
  c.destroy();
}
