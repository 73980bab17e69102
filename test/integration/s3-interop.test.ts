// S3 interop with CNCF Distribution 2.8.2 (Debian's `docker-registry`, i.e. registry:2 with its s3-aws driver)
// on one Ceph RGW bucket and key prefix (#17 point 2): what one pushes (monolithic and chunked, blobs above the
// multipart part size), the other serves with the same manifest bytes, digests and blob bytes, both ways.
// Distribution 2.8.2 panics at start with its s3 driver while AWS_CA_BUNDLE is set, so its process runs without
// it; berth keeps the variable (it must not depend on it).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { needs } from '../support/command.js';
import { request } from '../support/http.js';
import {
  MT, descriptor, locationPath, makeImageManifest, manifestBytes, pushBlob, pushManifest, randomBlob, sha256, startUpload, withQuery,
} from '../support/oci-client.js';
import { startBerth, startDistribution, type ServerProcess } from '../support/processes.js';
import { s3Prefix, s3Skip, s3Store, type S3Settings } from '../support/s3.js';
import { S3Driver, checkS3Parameters } from '../../src/registry/storage/drivers/s3.js';

const MiB = 1024 * 1024;
const skip = (await s3Skip()) || needs('docker-registry', 'docker-registry');

function s3Yaml(s: S3Settings, root: string, indent: string): string {
  return [
    's3:', `  region: ${s.region}`, `  regionendpoint: ${s.endpoint}`, `  bucket: ${s.bucket}`, `  rootdirectory: ${root}`,
    `  accesskey: ${s.accessKey}`, `  secretkey: ${s.secretKey}`, '  secure: false', '  v4auth: true', '  chunksize: 5242880',
  ].map((l) => indent + l).join('\n');
}

async function startPair(s: S3Settings, root: string): Promise<{ dist: ServerProcess; berth: ServerProcess }> {
  const dist = await startDistribution({
    storageYaml: s3Yaml(s, root, '  ') + '\n  redirect:\n    disable: true',
    env: { AWS_CA_BUNDLE: undefined },
  });
  try {
    const berth = await startBerth({
      configYaml: ['listen: 127.0.0.1:0', 'upstreams:', '  v2: embedded', 'registry:', '  storage:', s3Yaml(s, root, '    '),
        '    delete:', '      enabled: true', 'log:', '  level: info', ''].join('\n'),
    });
    return { dist, berth };
  } catch (err) {
    await dist.close();
    throw err;
  }
}

/** A chunked upload (POST, PATCHes of `chunk` bytes with Content-Range, PUT ?digest=) → digest. */
async function pushChunked(base: string, name: string, bytes: Buffer, chunk: number): Promise<string> {
  const digest = sha256(bytes);
  let loc = await startUpload(base, name);
  for (let at = 0; at < bytes.length; at += chunk) {
    const part = bytes.subarray(at, Math.min(bytes.length, at + chunk));
    const res = await request(`${base}${loc}`, {
      method: 'PATCH', body: part,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + part.length - 1}`, 'content-length': String(part.length) },
    });
    assert.equal(res.status, 202, `PATCH ${at}: ${res.status} ${res.text()}`);
    loc = locationPath(base, res);
  }
  const res = await request(`${base}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
  assert.equal(res.status, 201, `PUT ?digest: ${res.status} ${res.text()}`);
  return digest;
}

/** Pushes config + three layers (512 B monolithic, 12 MiB monolithic, 11 MiB chunked in 4 MiB PATCHes) and a
 *  tagged manifest; returns the blobs and the manifest digest. */
async function pushMix(base: string, repo: string): Promise<{ blobs: Map<string, Buffer>; digest: string; bytes: Buffer }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBlob(8).toString('hex') }));
  const small = randomBlob(512);
  const big = randomBlob(12 * MiB);
  const chunked = randomBlob(11 * MiB + 3);
  await pushBlob(base, repo, config);
  await pushBlob(base, repo, small);
  await pushBlob(base, repo, big);
  await pushChunked(base, repo, chunked, 4 * MiB);
  const m = makeImageManifest({
    config: descriptor(MT.ociConfig, config),
    layers: [small, big, chunked].map((b) => descriptor(MT.ociLayer, b)),
  });
  const bytes = manifestBytes(m);
  const digest = await pushManifest(base, repo, 'v1', bytes);
  return { blobs: new Map([config, small, big, chunked].map((b) => [sha256(b), b])), digest, bytes };
}

/** Pulls through `base` what pushMix pushed: same manifest bytes and digest, every blob's bytes hash to its digest. */
async function pullAndCompare(base: string, repo: string, pushed: Awaited<ReturnType<typeof pushMix>>, what: string): Promise<void> {
  const man = await request(`${base}/v2/${repo}/manifests/v1`, { headers: { accept: MT.ociManifest } });
  assert.equal(man.status, 200, `${what}: manifest ${man.status}`);
  assert.equal(man.headers['docker-content-digest'], pushed.digest, `${what}: manifest digest`);
  assert.ok(Buffer.from(man.body).equals(pushed.bytes), `${what}: manifest bytes`);
  for (const [digest, bytes] of pushed.blobs) {
    let res = await request(`${base}/v2/${repo}/blobs/${digest}`);
    if (res.status === 307) res = await request(String(res.headers.location));   // berth's presigned redirect to the store
    assert.equal(res.status, 200, `${what}: blob ${digest} ${res.status}`);
    assert.equal(sha256(res.body), digest, `${what}: blob ${digest} bytes (${res.body.length} of ${bytes.length})`);
  }
  const tags = await request(`${base}/v2/${repo}/tags/list`);
  assert.deepEqual(tags.json().tags, ['v1'], `${what}: tags`);
}

describe('s3 interop with Distribution 2.8.2 on one bucket and prefix', { skip }, () => {
  test('push through one, pull through the other, both ways: same manifests, digests and blob bytes', async () => {
    const s = await s3Store();
    const root = s3Prefix('interop');
    const { dist, berth } = await startPair(s, root);
    try {
      const viaDist = await pushMix(dist.url, 'interop/from-dist');
      await pullAndCompare(berth.url, 'interop/from-dist', viaDist, 'berth serving what registry:2 pushed');
      const viaBerth = await pushMix(berth.url, 'interop/from-berth');
      await pullAndCompare(dist.url, 'interop/from-berth', viaBerth, 'registry:2 serving what berth pushed');
      for (const srv of [dist, berth]) {
        const cat = await request(`${srv.url}/v2/_catalog`);
        assert.deepEqual(cat.json().repositories, ['interop/from-berth', 'interop/from-dist'], `catalog of ${srv.url}`);
      }
    } finally {
      await Promise.all([dist.close(), berth.close()]);
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
