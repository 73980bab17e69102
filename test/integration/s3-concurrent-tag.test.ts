// 8 concurrent pushes of one tag through 3 berth replicas on one S3 prefix with a shared redis (#17 point 5):
// Distribution's multi-replica setup (`redis:` plus `storage.cache.blobdescriptor: redis`), a real redis-server
// (reached over TCP as a deployment would) and the real Ceph RGW. Each push is a distinct image (its own config,
// layer and manifest) to the same repo:tag at once. Afterwards every replica names the same manifest for the tag,
// one of the 8, whose blobs every replica serves; all 8 manifests stay fetchable by digest; the tag is listed once
// and no upload session is left in the store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { createClient } from 'redis';
import { request } from '../support/http.js';
import { descriptor, makeImageManifest, manifestBytes, MT, pushBlob, pushManifest, randomBlob, sha256 } from '../support/oci-client.js';
import { redisSkip } from '../support/redis-server.js';
import { s3Skip } from '../support/s3.js';
import { noSessionLeft, rawKeys, replicaSet } from '../support/s3-replicas.js';

const skip = (await s3Skip()) || redisSkip();
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

interface Image { digest: string; bytes: Buffer; blobs: { digest: string; bytes: Buffer }[] }

/** One distinct image pushed through `base`: config and layer as monolithic uploads, then the manifest under tag. */
async function pushDistinct(base: string, name: string, tag: string, n: number): Promise<Image> {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', push: n, nonce: randomBytes(8).toString('hex') }));
  const layerBytes = randomBlob(64 * 1024 + n);
  await Promise.all([pushBlob(base, name, configBytes), pushBlob(base, name, layerBytes)]);
  const bytes = manifestBytes(makeImageManifest({ config: descriptor(MT.ociConfig, configBytes), layers: [descriptor(MT.ociLayer, layerBytes)] }));
  const digest = await pushManifest(base, name, tag, bytes);
  assert.equal(digest, sha256(bytes));
  return { digest, bytes, blobs: [{ digest: sha256(configBytes), bytes: configBytes }, { digest: sha256(layerBytes), bytes: layerBytes }] };
}

describe('s3: several replicas with a shared redis', { skip }, () => {
  test('8 concurrent pushes of one tag through 3 replicas leave one consistent tag', async () => {
    const set = await replicaSet('tag-race', { redis: true });
    const { driver: d, redis } = set;
    try {
      const procs = await set.start(3);
      const name = 'race/app';
      const tag = 'latest';
      const images = await Promise.all(Array.from({ length: 8 }, (_, i) => pushDistinct(procs[i % 3]!.url, name, tag, i)));
      const digests = new Set(images.map((i) => i.digest));
      assert.equal(digests.size, 8);

      const answers: string[] = [];
      for (const p of procs) {
        for (const method of ['GET', 'HEAD']) {
          const res = await request(`${p.url}/v2/${name}/manifests/${tag}`, { method, headers: { accept: ACCEPT } });
          assert.equal(res.status, 200, `${method} ${p.url}: ${res.status}`);
          answers.push(res.headers['docker-content-digest']!);
          if (method === 'GET') assert.equal(sha256(res.body), res.headers['docker-content-digest']);
        }
      }
      assert.equal(new Set(answers).size, 1, `every replica names the same manifest: ${answers.join(' ')}`);
      const winner = images.find((i) => i.digest === answers[0]);
      assert.ok(winner, 'the tag names one of the 8 pushed manifests');
      for (const p of procs) {
        for (const b of winner.blobs) {
          const res = await request(`${p.url}/v2/${name}/blobs/${b.digest}`);
          assert.equal(res.status, 200, `blob ${b.digest} via ${p.url}`);
          assert.ok(res.body.equals(b.bytes));
        }
        for (const img of images) {
          const res = await request(`${p.url}/v2/${name}/manifests/${img.digest}`, { headers: { accept: ACCEPT } });
          assert.equal(res.status, 200, `manifest ${img.digest} via ${p.url}`);
          assert.ok(res.body.equals(img.bytes));
        }
        const tags = await request(`${p.url}/v2/${name}/tags/list`);
        assert.equal(tags.status, 200);
        assert.deepEqual(tags.json(), { name, tags: [tag] });
      }
      await noSessionLeft(d, 'no upload session left');
      // The replicas share one descriptor cache: all three wrote under one prefix (derived from the same s3 config).
      const admin = createClient({ socket: { path: redis!.socket, reconnectStrategy: false } });
      admin.on('error', () => {});
      await admin.connect();
      try {
        const prefixes = new Set((await admin.keys('*blobs::sha256:*')).filter((k) => !k.includes('repository::')).map((k) => k.slice(0, k.indexOf('blobs::'))));
        assert.equal(prefixes.size, 1, `one key prefix in redis: ${[...prefixes].join(' ')}`);
        for (const img of images) for (const b of img.blobs) assert.equal(await admin.exists(`${[...prefixes][0]}blobs::${b.digest}`), 1);
      } finally {
        admin.destroy();
      }
      assert.equal((await rawKeys(d)).filter((k) => k.includes('/_manifests/tags/')).length, 1 + 8,
        'the tag: its current link and one index link per pushed manifest');
    } finally {
      await set.close();
    }
  });
});
