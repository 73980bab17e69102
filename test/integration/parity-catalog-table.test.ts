// The catalog's Distribution 2.8.2 order and pages as a table, for machines without docker-registry (the side-by-side
// proof is parity-distribution.test.ts). Every expected row below was recorded from Debian's docker-registry 2.8.2
// serving these very trees (issue 15, point 3): its _layers walk, its component-wise `last`, its Link rule (a full
// page is only noticed at the next walk entry that is not a `_` one, so some full pages carry no Link).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listCatalog } from '../../src/registry/core/catalog.js';
import { wrapDriver } from '../../src/registry/storage/base.js';
import { InMemoryDriver } from '../../src/registry/storage/drivers/inmemory.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { request } from '../support/http.js';
import { startRegistry } from '../support/registry-server.js';
import { makeTempDir } from '../support/tmp.js';

type T = { after(fn: () => unknown): void };

/** A root whose repositories/ holds `_layers` under each of `layers`, plus what is not a repository. */
async function tree(t: T, layers: string[], files: string[] = []) {
  const dir = await makeTempDir('berth-catalog-');
  t.after(() => dir.cleanup());
  const repos = join(dir.path, 'docker/registry/v2/repositories');
  for (const r of layers) await mkdir(join(repos, r, '_layers'), { recursive: true });
  for (const d of ['onlym/x/_manifests', 'onlyman/_manifests', 'up/_uploads']) await mkdir(join(repos, d), { recursive: true });
  for (const f of files) await writeFile(join(repos, f), 'x');
  const reg = await startRegistry({ root: dir.path });
  t.after(() => reg.close());
  return reg.url;
}

async function page(url: string, query: string) {
  const r = await request(`${url}/v2/_catalog${query}`);
  assert.equal(r.status, 200, query);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  const link = r.headers.link && new URL(/^<([^>]+)>/.exec(r.headers.link)![1]!, 'http://x').searchParams.get('last');
  return { names: r.json().repositories as string[], link: link ?? null };
}

const ONE = ['a', 'a/0x', 'a/b', 'a-b', 'a.b', 'a/b/c', 'b', 'z9', 'a__b'];
const ALL_ONE = ['a/0x', 'a', 'a/b', 'a/b/c', 'a-b', 'a.b', 'a__b', 'b', 'z9'];
const TWO = [...ONE, 'A', 'b/B', 'c'];

/** The same rows straight through listCatalog on the inmemory driver (no directories: they exist by their files). */
async function inMemory(layers: string[], files: string[] = []) {
  const d = wrapDriver(new InMemoryDriver());
  const repos = pathFor({ kind: 'repositoriesRoot' });
  for (const r of layers) await d.putContent(`${repos}/${r}/_layers/sha256/x/link`, Buffer.from('x'));
  for (const p of ['onlym/x/_manifests/tags/t', 'onlyman/_manifests/tags/t', 'up/_uploads/u/data']) await d.putContent(`${repos}/${p}`, Buffer.from('x'));
  for (const f of files) await d.putContent(`${repos}/${f}`, Buffer.from('x'));
  return async (query: string) => {
    const q = new URLSearchParams(query.slice(1));
    const n = q.has('n') ? Number(q.get('n')) : 100;
    const { names, more } = await listCatalog(d, { n, last: q.get('last') ?? undefined });
    return { names, link: more && names.length > 0 ? names[names.length - 1]! : null };
  };
}

describe('catalog order and pages recorded from Distribution 2.8.2', () => {
  test('tree one', async (t) => {
    const url = await tree(t, ONE);
    const rows: [string, string[], string | null][] = [
      ['', ALL_ONE, null],
      ['?n=3', ['a/0x', 'a', 'a/b'], 'a/b'],
      ['?n=3&last=a/0x', ['a/b', 'a/b/c', 'a-b'], 'a-b'],
      ['?n=3&last=a', ['a/0x', 'a/b', 'a/b/c'], 'a/b/c'],
      ['?n=0', [], null],
      ['?n=9', ALL_ONE, null],
      ['?n=10', ALL_ONE, null],
      ['?n=8&last=a/0x', ['a/b', 'a/b/c', 'a-b', 'a.b', 'a__b', 'b', 'z9'], null],
      ['?last=a/b', ['a/b/c', 'a-b', 'a.b', 'a__b', 'b', 'z9'], null],
      ['?last=a-b', ['a.b', 'a__b', 'b', 'z9'], null],
      ['?n=2&last=zz', [], null],
      ['?n=1&last=%E2%82%AC', [], null],
    ];
    const mem = await inMemory(ONE);
    for (const [q, names, link] of rows) {
      assert.deepEqual(await page(url, q), { names, link }, q);
      assert.deepEqual(await mem(q), { names, link }, `inmemory ${q}`);
    }
  });

  test('tree two: uppercase names, a stray file, a page that is full without a Link', async (t) => {
    const url = await tree(t, TWO, ['file']);
    const rows: [string, string[], string | null][] = [
      ['', ['A', 'a/0x', 'a', 'a/b', 'a/b/c', 'a-b', 'a.b', 'a__b', 'b/B', 'b', 'c', 'z9'], null],
      ['?n=1', ['A'], 'A'],
      ['?n=2', ['A', 'a/0x'], null],
      ['?n=1&last=A', ['a/0x'], null],
      ['?n=1&last=a/0x', ['a/b'], 'a/b'],
      ['?n=1&last=a', ['a/0x'], 'a/0x'],
      ['?n=2&last=a', ['a/0x', 'a/b'], 'a/b'],
    ];
    const mem = await inMemory(TWO, ['file']);
    for (const [q, names, link] of rows) {
      assert.deepEqual(await page(url, q), { names, link }, q);
      assert.deepEqual(await mem(q), { names, link }, `inmemory ${q}`);
    }
  });
});
