// listRepositories on real storage (inmemory and a filesystem temp dir): which directories are
// repositories, lexical order, n/last pagination and early stop.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { listRepositories } from '../../src/registry/core/catalog.js';
import { wrapDriver } from '../../src/registry/storage/base.js';
import type { StorageDriver } from '../../src/registry/storage/driver.js';
import { FilesystemDriver } from '../../src/registry/storage/drivers/filesystem.js';
import { InMemoryDriver } from '../../src/registry/storage/drivers/inmemory.js';
import { pathFor, ROOT } from '../../src/registry/storage/paths.js';
import { makeTempDir } from '../support/tmp.js';

const digest = { algorithm: 'sha256', hex: 'a'.repeat(64) };

const drivers: Record<string, (t: TestContext) => Promise<StorageDriver>> = {
  inmemory: async () => wrapDriver(new InMemoryDriver()),
  filesystem: async (t) => {
    const tmp = await makeTempDir('berth-catalog');
    t.after(() => tmp.cleanup());
    return wrapDriver(new FilesystemDriver({ rootdirectory: tmp.path }));
  },
};

async function addRepo(d: StorageDriver, name: string): Promise<void> {
  await d.putContent(pathFor({ kind: 'manifestRevisionLink', name, digest }), Buffer.from('sha256:' + digest.hex));
}

const REPOS = ['zeta', 'alpha', 'alpha/one', 'alpha/two', 'library/ubuntu', 'library/debian', 'a-b', 'a/b',
  'x/y/z/deep', 'mid-dle', 'mid.dle'];

async function seed(d: StorageDriver): Promise<void> {
  for (const r of REPOS) await addRepo(d, r);
  // Not repositories: a directory with only uploads or layers, and anything under a "_" directory.
  await d.putContent(pathFor({ kind: 'uploadStartedAt', name: 'pending', id: 'u1' }), Buffer.from('2024-01-01T00:00:00Z'));
  await d.putContent(pathFor({ kind: 'layerLink', name: 'layers-only', digest }), Buffer.from('x'));
  await d.putContent(`${ROOT}/repositories/alpha/_uploads/u2/_manifests/link`, Buffer.from('x'));
  await d.putContent(`${ROOT}/repositories/_hidden/_manifests/revisions/link`, Buffer.from('x'));
  await d.putContent(`${ROOT}/repositories/stray-file`, Buffer.from('x'));   // a file, not a dir
}

async function pageAll(d: StorageDriver, n: number): Promise<string[][]> {
  const pages: string[][] = [];
  let last: string | undefined;
  for (let i = 0; i < 10_000; i++) {   // bounded: a catalog that never says "no more" fails here
    const { names, more } = await listRepositories(d, { n, last });
    pages.push(names);
    if (!more) return pages;
    assert.equal(names.length, n, 'a page with more after it is full');
    last = names[names.length - 1];
  }
  assert.fail(`listRepositories still said "more" after 10000 pages of ${n}`);
}

for (const [name, make] of Object.entries(drivers)) {
  describe(`catalog (${name})`, () => {
    it('is empty when there is no repositories directory', async (t) => {
      const d = await make(t);
      assert.deepEqual(await listRepositories(d, { n: 100 }), { names: [], more: false });
      await d.putContent(pathFor({ kind: 'blobData', digest }), Buffer.from('x'));
      assert.deepEqual(await listRepositories(d, { n: 100 }), { names: [], more: false });
    });

    it('lists nested repositories in lexical order; _-dirs and dirs without _manifests are not repos', async (t) => {
      const d = await make(t);
      await seed(d);
      const all = await listRepositories(d, { n: 1000 });
      assert.deepEqual(all, { names: [...REPOS].sort(), more: false });
      assert.ok(all.names.indexOf('a-b') < all.names.indexOf('a/b'), 'plain lexical order');
      assert.ok(!all.names.includes('library') && all.names.includes('library/ubuntu'));
    });

    it('paginates with n and last; the pages concatenate to the full list', async (t) => {
      const d = await make(t);
      await seed(d);
      const sorted = [...REPOS].sort();
      for (const n of [1, 2, 3, 5, sorted.length, sorted.length + 1]) {
        const pages = await pageAll(d, n);
        assert.deepEqual(pages.flat(), sorted, `n=${n}`);
      }
      assert.deepEqual(await listRepositories(d, { n: sorted.length }), { names: sorted, more: false });
      assert.deepEqual(await listRepositories(d, { n: 0 }), { names: [], more: true });
      assert.deepEqual(await listRepositories(d, { n: 2, last: 'alpha' }), { names: ['alpha/one', 'alpha/two'], more: true });
      assert.deepEqual((await listRepositories(d, { n: 2, last: 'library' })).names, ['library/debian', 'library/ubuntu'],
        'last may be a directory that is not a repository');
      assert.deepEqual((await listRepositories(d, { n: 1, last: 'b' })).names, ['library/debian'], 'last need not exist');
      assert.deepEqual((await listRepositories(d, { n: 2, last: 'alpha/' })).names, ['alpha/one', 'alpha/two']);
      assert.deepEqual(await listRepositories(d, { n: 5, last: 'zeta' }), { names: [], more: false });
      assert.deepEqual(await listRepositories(d, { n: 5, last: '~~~' }), { names: [], more: false });
    });

    it('stops listing directories once the page is full', async (t) => {
      const inner = await make(t);
      for (let i = 0; i < 30; i++) await addRepo(inner, `big/r${String(i).padStart(2, '0')}`);
      let lists = 0;
      const d: StorageDriver = { ...inner, name: inner.name, list: (p, o) => { lists++; return inner.list(p, o); } };
      const first = await listRepositories(d, { n: 2 });
      assert.deepEqual(first, { names: ['big/r00', 'big/r01'], more: true });
      assert.ok(lists <= 6, `listed ${lists} directories for a page of 2`);
      lists = 0;
      const later = await listRepositories(d, { n: 1, last: 'big/r27' });
      assert.deepEqual(later.names, ['big/r28']);
      assert.ok(lists <= 6, `listed ${lists} directories to resume after last`);
    });
  });
}
