// The registry with a redis blob-descriptor cache in front of blob lookups, against a real redis-server:
// blob HEAD/GET and manifest PUT are answered through the cache, deletes invalidate it, and SIGKILLing
// redis under load fails no request, logs one outage line, and the cache heals when redis is back.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import { createLogger } from '../../src/log/logger.js';
import { MemoryDescriptorCache } from '../../src/registry/cache/memory.js';
import { RedisDescriptorCache } from '../../src/registry/cache/redis.js';
import type { DescriptorCache } from '../../src/registry/cache/descriptor-cache.js';
import { descriptor, makeImageManifest, MT, pushBlob, pushImage, randomBlob } from '../support/oci-client.js';
import { request } from '../support/http.js';
import { redisSkip, startRedis } from '../support/redis-server.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { waitUntil } from '../support/wait.js';

const skip = redisSkip();

function capture() {
  const lines: Record<string, any>[] = [];
  const dest = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { log: createLogger({ level: 'debug', destination: dest }), lines };
}


/** Path of a repository's layer link on the filesystem driver (removed behind the registry's back). */
const layerLink = (reg: TestRegistry, repo: string, digest: string) =>
  join(reg.root, 'docker', 'registry', 'v2', 'repositories', repo, '_layers', 'sha256', digest.slice('sha256:'.length), 'link');

async function admin(path: string) {
  const c = createClient({ socket: { path, reconnectStrategy: false } });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** What every cache must do inside the registry; `inspect` says whether redis holds the repo entry. */
async function cacheBehaviour(reg: TestRegistry, cache: DescriptorCache, inRedis?: (repo: string, d: string) => Promise<boolean>) {
  const img = await pushImage(reg.url, 'cached/app', 'v1');
  const d = img.layer.digest;
  assert.ok(await cache.get('cached/app', d), 'the upload\'s commit remembered the layer');
  assert.ok(await cache.get('cached/app', img.config.digest), 'and the config');
  if (inRedis) assert.ok(await inRedis('cached/app', d));
  assert.equal(await cache.get('other/app', d), undefined, 'only for that repository');

  // HEAD is answered by the cache: the link is gone from storage and HEAD still sees the blob. A pull and a
  // manifest's reference checks ask storage: the entry never hands out bytes or vouches for a reference.
  await rm(layerLink(reg, 'cached/app', d));
  const head = await request(`${reg.url}/v2/cached/app/blobs/${d}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(img.layer.size));
  assert.equal(head.headers['docker-content-digest'], d);
  const get = await request(`${reg.url}/v2/cached/app/blobs/${d}`);
  assert.equal(get.status, 404);
  assert.equal(get.json().errors[0].code, 'BLOB_UNKNOWN');
  const put = await request(`${reg.url}/v2/cached/app/manifests/v2`, {
    method: 'PUT', headers: { 'content-type': MT.ociManifest }, body: img.bytes,
  });
  assert.equal(put.status, 400);
  assert.equal(put.json().errors[0].code, 'MANIFEST_BLOB_UNKNOWN');
  // Delete a blob through the API: the entry is invalidated.
  const del = await request(`${reg.url}/v2/cached/app/blobs/${img.config.digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  assert.equal(await cache.get('cached/app', img.config.digest), undefined, 'blob DELETE cleared the entry');
  if (inRedis) assert.equal(await inRedis('cached/app', img.config.digest), false);
  assert.equal((await request(`${reg.url}/v2/cached/app/blobs/${img.config.digest}`, { method: 'HEAD' })).status, 404);

  // Manifest DELETE clears the repository's entry for the manifest digest.
  await cache.set('cached/app', img.digest, { digest: img.digest, size: img.bytes.length, mediaType: 'application/octet-stream' });
  assert.equal((await request(`${reg.url}/v2/cached/app/manifests/${img.digest}`, { method: 'DELETE' })).status, 202);
  assert.equal(await cache.get('cached/app', img.digest), undefined, 'manifest DELETE cleared the entry');

  // A blob never linked here is never answered from another repository's entry.
  assert.equal((await request(`${reg.url}/v2/other/app/blobs/${d}`, { method: 'HEAD' })).status, 404);
}

describe('registry with a blob-descriptor cache', () => {
  it('inmemory: HEAD/GET and manifest PUT go through the cache; deletes invalidate', async (t) => {
    const cache = new MemoryDescriptorCache();
    const reg = await startRegistry({ descriptorCache: cache });
    t.after(() => reg.close());
    await cacheBehaviour(reg, cache);
  });

  it('redis: HEAD/GET and manifest PUT go through the cache; deletes invalidate', { skip }, async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const cache = new RedisDescriptorCache({ socket: { path: redis.socket } }, createLogger({ level: 'silent' }));
    const reg = await startRegistry({ descriptorCache: cache });
    t.after(() => reg.close());
    await waitUntil('the redis cache to connect', () => cache.healthy);
    const a = await admin(redis.socket);
    t.after(() => { if (a.isOpen) a.destroy(); });
    await cacheBehaviour(reg, cache, async (repo, d) => Boolean(await a.sIsMember(`repository::${repo}::blobs`, d)));
  });

  it('redis SIGKILLed under load: every request succeeds, one outage line, recovery logged once, cache used again', { skip }, async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const { log, lines } = capture();
    const cache = new RedisDescriptorCache({ socket: { path: redis.socket }, maxBackoffMs: 100 }, log.child({ module: 'cache' }));
    const reg = await startRegistry({ descriptorCache: cache, log });
    t.after(() => reg.close());
    await waitUntil('the redis cache to connect', () => cache.healthy);

    const repos = ['load/a', 'load/b', 'load/c'];
    const images = await Promise.all(repos.map((r) => pushImage(reg.url, r, 'v1')));
    const extra = await Promise.all(repos.map(async (r) => {
      const bytes = randomBlob(64 * 1024);
      await pushBlob(reg.url, r, bytes);
      return descriptor(MT.ociLayer, bytes);
    }));

    // Load: workers cycle blob HEAD, blob GET and manifest PUT (referencing two layers) until told to stop.
    const statuses = new Map<number, number>();
    let done = 0;
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const k = (w + i) % repos.length;
        const repo = repos[k]!; const img = images[k]!;
        let status: number;
        if (i % 3 === 0) status = (await request(`${reg.url}/v2/${repo}/blobs/${img.layer.digest}`, { method: 'HEAD' })).status;
        else if (i % 3 === 1) {
          const r = await request(`${reg.url}/v2/${repo}/blobs/${extra[k]!.digest}`);
          status = r.status;
          assert.equal(r.body.length, extra[k]!.size);
        } else {
          const m = makeImageManifest({ config: img.config, layers: [img.layer, extra[k]!], annotations: { w: String(w), i: String(i) } });
          status = (await request(`${reg.url}/v2/${repo}/manifests/w${w}`, { method: 'PUT', headers: { 'content-type': MT.ociManifest }, body: JSON.stringify(m) })).status;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        done++;
      }
    };
    // A worker's failure ends the waits below at once (with that failure) instead of at their deadlines.
    let failed: unknown;
    const workers = Array.from({ length: 6 }, (_, w) => worker(w).catch((err) => { failed ??= err; stop = true; }));
    const load = (what: string, cond: () => boolean, timeoutMs = 30_000) => waitUntil(what, () => {
      if (failed) throw failed;
      return cond();
    }, { timeoutMs, detail: () => `${done} requests done, cache ${cache.healthy ? 'up' : 'down'}` });
    try {
      await load('150 requests of load', () => done >= 150);
      await redis.kill();                                   // SIGKILL mid-load
      const atKill = done;
      await load('the outage seen and 150 more requests', () => !cache.healthy && done >= atKill + 150);
      await redis.restart();                                // empty: no persistence
      await load('the redis cache to reconnect', () => cache.healthy, 10_000);
      const atRecovery = done;
      await load('150 requests after the recovery', () => done >= atRecovery + 150);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    if (failed) throw failed;

    assert.deepEqual([...statuses.keys()].filter((s) => s < 200 || s > 299), [], `statuses: ${JSON.stringify([...statuses])}`);
    const errors = lines.filter((l) => l.level >= 50);
    assert.equal(errors.length, 1, `exactly one error line: ${JSON.stringify(errors)}`);
    assert.match(errors[0]!.msg, /redis blob-descriptor cache unavailable/);
    assert.equal(errors[0]!.module, 'cache');
    assert.equal(lines.filter((l) => l.msg === 'redis blob-descriptor cache recovered').length, 1);
    assert.equal(lines.filter((l) => l.level === 40).length, 0, 'no warnings either');

    // Cache used again: the restarted (empty) redis holds the entries the load wrote back.
    const a = await admin(redis.socket);
    t.after(() => { if (a.isOpen) a.destroy(); });
    for (const [k, r] of repos.entries()) {
      assert.equal(await a.sIsMember(`repository::${r}::blobs`, images[k]!.layer.digest), 1, r);
      assert.equal(await a.hGet(`blobs::${extra[k]!.digest}`, 'size'), String(extra[k]!.size));
    }
    // And it answers: with the link gone from storage, HEAD is still served from redis.
    await rm(layerLink(reg, repos[0]!, images[0]!.layer.digest));
    assert.equal((await request(`${reg.url}/v2/${repos[0]}/blobs/${images[0]!.layer.digest}`, { method: 'HEAD' })).status, 200);
  });
});
