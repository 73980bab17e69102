// Conformance suite for DescriptorCache implementations (after distribution's cache/cachecheck), run
// once per implementation by test/integration/descriptor-cache.test.ts: memory always, redis against a
// real redis-server. It uses only the interface; every test gets a fresh, empty cache.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { CachedDescriptor, DescriptorCache } from '../../../src/registry/cache/descriptor-cache.js';

export interface CacheHandle {
  /** A fresh, empty cache. */
  cache: DescriptorCache;
  /** Releases everything (closes the cache if the test did not, stops servers). */
  cleanup(): Promise<void>;
}

export const digestOf = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
const desc = (s: string, size = s.length, mediaType = 'application/octet-stream'): CachedDescriptor =>
  ({ digest: digestOf(s), size, mediaType });

export function runCacheSuite(name: string, make: () => Promise<CacheHandle>, opts: { skip?: string | false } = {}): void {
  describe(`descriptor cache conformance: ${name}`, { skip: opts.skip }, () => {
    const withCache = (title: string, fn: (c: DescriptorCache) => Promise<void>) =>
      it(title, async () => {
        const h = await make();
        try { await fn(h.cache); } finally { await h.cleanup(); }
      });

    withCache('misses on an empty cache, globally and per repository', async (c) => {
      assert.equal(await c.get(null, digestOf('a')), undefined);
      assert.equal(await c.get('library/a', digestOf('a')), undefined);
    });

    withCache('a global set answers globally but not for any repository', async (c) => {
      const d = desc('layer');
      await c.set(null, d.digest, d);
      assert.deepEqual(await c.get(null, d.digest), d);
      assert.equal(await c.get('library/a', d.digest), undefined);
    });

    withCache('a repository set answers for that repository and globally, not for others', async (c) => {
      const d = desc('config', 1234, 'application/vnd.oci.image.config.v1+json');
      await c.set('library/a', d.digest, d);
      assert.deepEqual(await c.get('library/a', d.digest), d);
      assert.deepEqual(await c.get(null, d.digest), d);
      for (const other of ['library/b', 'library', 'library/a/b', 'library/a::blobs']) {
        assert.equal(await c.get(other, d.digest), undefined, other);
      }
    });

    withCache('clearAll forgets every repository entry; global entries stay', async (c) => {
      const d = desc('everything');
      const e = desc('else');
      await c.set('a', d.digest, d);
      await c.set('b/c', e.digest, e);
      await c.clearAll();
      assert.equal(await c.get('a', d.digest), undefined);
      assert.equal(await c.get('b/c', e.digest), undefined);
      assert.deepEqual(await c.get(null, d.digest), d);
      await c.clearAll();                                    // on an empty cache too
      await c.set('a', d.digest, d);                         // and entries can come back
      assert.deepEqual(await c.get('a', d.digest), d);
    });

    withCache('clear forgets the repository entry only (global and other repositories stay)', async (c) => {
      const d = desc('shared');
      await c.set('a', d.digest, d);
      await c.set('b', d.digest, d);
      await c.clear('a', d.digest);
      assert.equal(await c.get('a', d.digest), undefined);
      assert.deepEqual(await c.get('b', d.digest), d);
      assert.deepEqual(await c.get(null, d.digest), d);
      await c.clear('a', d.digest);                          // clearing again is fine
      await c.clear('never', digestOf('nothing'));          // so is clearing what was never there
      await c.set('a', d.digest, d);                         // and it can come back
      assert.deepEqual(await c.get('a', d.digest), d);
    });

    withCache('keeps the canonical digest, sizes 0 and > 4 GiB exactly', async (c) => {
      const alias = 'sha512:' + 'a'.repeat(128);
      const big = { digest: digestOf('big'), size: 5 * 1024 ** 3 + 7, mediaType: 'application/octet-stream' };
      await c.set('r', alias, big);
      assert.deepEqual(await c.get('r', alias), big);
      const empty = desc('', 0);
      await c.set('r', empty.digest, empty);
      assert.deepEqual(await c.get('r', empty.digest), empty);
    });

    withCache('concurrent sets across repositories all land', async (c) => {
      const items = Array.from({ length: 200 }, (_, i) => ({ repo: `r${i % 7}`, d: desc(`blob-${i}`, i) }));
      await Promise.all(items.map(({ repo, d }) => c.set(repo, d.digest, d)));
      const got = await Promise.all(items.map(({ repo, d }) => c.get(repo, d.digest)));
      got.forEach((g, i) => assert.deepEqual(g, items[i]!.d, `item ${i}`));
      const wrong = await Promise.all(items.map(({ repo, d }) => c.get(repo + 'x', d.digest)));
      assert.ok(wrong.every((g) => g === undefined));
    });

    withCache('concurrent sets of the same digest from many repositories agree', async (c) => {
      const d = desc('popular');
      await Promise.all(Array.from({ length: 50 }, (_, i) => c.set(`team/app${i}`, d.digest, d)));
      for (let i = 0; i < 50; i++) assert.deepEqual(await c.get(`team/app${i}`, d.digest), d);
    });

    withCache('close is idempotent', async (c) => {
      await c.close();
      await c.close();
    });
  });
}
