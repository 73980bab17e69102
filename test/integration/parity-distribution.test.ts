// Drop-in parity with CNCF Distribution 2.8.2 (Debian's docker-registry), side by side on one storage root
// (issue 15, points 1, 2, 3, 6): the real docker-registry writes the data, then the same requests go to it and
// to berth's gateway (in process, filesystem storage on that root) and the answers are compared: the catalog's
// names, order and pages; `GET /`; Content-Type header by header; a pull of a reference that is no tag.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { createLogger } from '../../src/log/logger.js';
import { distributionAvailable, startDistribution } from '../support/distribution.js';
import { request, type HttpResponse } from '../support/http.js';
import { writeOciLayout } from '../support/images.js';
import { pushBlob, pushImage } from '../support/registry-http.js';
import { makeTempDir } from '../support/tmp.js';

const skip = distributionAvailable() ? false : 'docker-registry (Distribution 2.8.2) is not installed';

// Names chosen where the orders part: '/' vs '-', '.', '_' (component-wise), children before '_layers'
// ("a/0x" and "a/0x/9" come before "a"), deep nesting, and repositories that hold only blobs.
const IMAGES = ['a', 'a/b', 'a-b', 'z9', 'lib/ubuntu'];
const BLOBS_ONLY = ['a/0x', 'a/0x/9', 'a.b', 'a__b', 'a/b/c', 'b', 'lib', 'only/blobs/here'];

describe('parity with Distribution 2.8.2 on the same storage root', { skip }, () => {
  let dist: string;
  let berth: string;

  const cleanups: (() => unknown)[] = [];
  after(async () => { for (const fn of cleanups.reverse()) await fn(); });

  before(async () => {
    const dir = await makeTempDir('berth-parity-');
    cleanups.push(() => dir.cleanup());
    const d = await startDistribution({ after: (fn) => cleanups.push(fn) });
    dist = d.url;
    const img = await writeOciLayout(join(dir.path, 'img'), { layers: [{ size: 2048, kind: 'random' }] });
    for (const repo of IMAGES) await pushImage(dist, repo, 'v1', img, 'monolithic');
    const blob = Buffer.from('a blob and nothing else');
    const blobPath = join(dir.path, 'blob');
    await writeFile(blobPath, blob);
    for (const repo of BLOBS_ONLY) await pushBlob(dist, repo, blobPath, `sha256:${createHash('sha256').update(blob).digest('hex')}`, 'post-digest');
    // What neither lists: a directory with only `_manifests` (no `_layers`), a stray file, an empty directory.
    const repos = join(d.root, 'docker/registry/v2/repositories');
    await mkdir(join(repos, 'manifests/only/_manifests'), { recursive: true });
    await mkdir(join(repos, 'empty'), { recursive: true });
    await writeFile(join(repos, 'a/stray'), 'x');
    const config = loadConfigFromString(
      `listen: "127.0.0.1:0"\nregistry: { storage: { filesystem: { rootdirectory: ${JSON.stringify(d.root)} }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } } }\n`,
      join(dir.path, 'gateway.yml'));
    const server = await startServer(config, createLogger({ level: 'silent' }));
    cleanups.push(() => server.close());
    berth = server.url;
  });

  const both = (path: string, method = 'GET') => Promise.all([request(`${dist}${path}`, { method }), request(`${berth}${path}`, { method })]);

  test('catalog: the same names in the same order, blob-only repositories included', async () => {
    const [d, b] = await both('/v2/_catalog');
    assert.equal(d.status, 200);
    const names = d.json().repositories as string[];
    assert.deepEqual(new Set(names), new Set([...IMAGES, ...BLOBS_ONLY]), 'the fixture: Distribution lists every repository');
    assert.deepEqual(b.json(), d.json());
    assert.ok(names.indexOf('a/0x') < names.indexOf('a') && names.indexOf('a/b') < names.indexOf('a-b'), `walk order: ${names}`);
  });

  test('catalog: the same pages, Link headers and last= answers for every page size', async () => {
    for (const n of [1, 2, 3, 4, 5, 7, 13, 100]) {
      let next: string | undefined = `/v2/_catalog?n=${n}`;
      for (let pages = 0; next; pages++) {
        assert.ok(pages < 20, `n=${n}: no end to the pages`);
        const [d, b] = await both(next);
        assert.deepEqual([b.status, b.json()], [d.status, d.json()], `${next}`);
        assert.deepEqual(linkQuery(b), linkQuery(d), `Link of ${next}`);
        const q = linkQuery(d);
        next = q && `/v2/_catalog?n=${q.n}&last=${encodeURIComponent(q.last!)}`;
      }
    }
    for (const last of ['a', 'a/0x', 'a/b', 'a-b', 'a.b', 'lib', 'only', 'zz', '0', 'A', 'a/0x/9']) {
      const [d, b] = await both(`/v2/_catalog?last=${encodeURIComponent(last)}`);
      assert.deepEqual(b.json(), d.json(), `last=${last}`);
    }
  });

  test('GET / (and HEAD, POST): 200, empty, Cache-Control: no-cache, no Content-Type, no auth needed', async () => {
    for (const method of ['GET', 'HEAD', 'POST']) {
      const [d, b] = await both('/', method);
      const shape = (r: HttpResponse) => [r.status, r.headers['cache-control'], r.headers['content-type'], r.text()];
      assert.deepEqual(shape(b), shape(d), method);
      assert.deepEqual(shape(b), [200, 'no-cache', undefined, ''], method);
    }
  });

  test('Content-Type on the same requests, header by header (JSON answers: application/json; charset=utf-8)', async () => {
    const rows: [string, string][] = [
      ['GET', '/v2/'], ['GET', '/v2/_catalog'], ['GET', '/v2/_catalog?n=2'], ['GET', '/v2/a/tags/list'], ['GET', '/v2/a/b/tags/list?n=1'],
      ['GET', '/v2/nothere/tags/list'], ['GET', '/v2/a/manifests/nope'], ['GET', `/v2/a/blobs/sha256:${'0'.repeat(64)}`],
      ['GET', '/v2/a/blobs/sha256:abc'], ['GET', '/v2/_catalog?n=1001'],
      ['PATCH', '/v2/a/blobs/uploads/nope'], ['DELETE', `/v2/a/manifests/sha256:${'0'.repeat(64)}`],
    ];
    for (const [method, path] of rows) {
      const [d, b] = await both(path, method);
      assert.equal(b.status, d.status, `${method} ${path}: status`);
      assert.equal(b.headers['content-type'], d.headers['content-type'], `${method} ${path}: Content-Type`);
      assert.equal(b.headers['docker-distribution-api-version'], d.headers['docker-distribution-api-version'], `${method} ${path}: API version`);
      // Distribution parses an upload id as a UUID (BLOB_UPLOAD_INVALID); berth says BLOB_UPLOAD_UNKNOWN, both 404.
      if (d.status >= 400 && method !== 'PATCH') assert.equal(b.json().errors[0].code, d.json().errors[0].code, `${method} ${path}: code`);
    }
  });

  test('Content-Type along a push and pull, step by step on both (uploads, blobs, manifests, deletes)', async () => {
    const blob = Buffer.from('content type parity');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const config = Buffer.from('{}');
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: blob.length }],
    }));
    const seen = new Map<string, (string | undefined)[]>();
    for (const base of [dist, berth]) {
      const step = async (what: string, path: string, o: Parameters<typeof request>[1] = {}) => {
        const r = await request(new URL(path, base).href, o);
        seen.set(what, [...(seen.get(what) ?? []), `${r.status} ${r.headers['content-type'] ?? '(none)'}`]);
        return r;
      };
      const octet = { 'content-type': 'application/octet-stream' };
      const mono = new URL((await step('POST for a monolithic PUT', '/v2/ct/blobs/uploads/', { method: 'POST' })).headers.location!, base);
      mono.searchParams.set('digest', configDigest);
      await step('PUT monolithic', mono.pathname + mono.search, { method: 'PUT', headers: octet, body: config });
      const start = await step('POST start', '/v2/ct/blobs/uploads/', { method: 'POST' });
      const loc = start.headers.location!;
      const patched = await step('PATCH chunk', loc, { method: 'PATCH', headers: { ...octet, 'content-range': `0-${blob.length - 1}` }, body: blob });
      await step('GET upload status', patched.headers.location!);
      const put = new URL(patched.headers.location!, base);
      put.searchParams.set('digest', digest);
      await step('PUT upload', put.pathname + put.search, { method: 'PUT' });
      await step('HEAD blob', `/v2/ct/blobs/${digest}`, { method: 'HEAD' });
      await step('GET blob', `/v2/ct/blobs/${digest}`);
      await step('PUT manifest', '/v2/ct/manifests/v1', { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
      await step('GET manifest', '/v2/ct/manifests/v1', { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      await step('HEAD manifest', '/v2/ct/manifests/v1', { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      await step('GET tags', '/v2/ct/tags/list');
      const started = await step('POST to cancel', '/v2/ct/blobs/uploads/', { method: 'POST' });
      await step('DELETE upload', started.headers.location!, { method: 'DELETE' });
      await step('DELETE manifest', `/v2/ct/manifests/${createHashDigest(manifest)}`, { method: 'DELETE' });
      await step('DELETE blob', `/v2/ct/blobs/${digest}`, { method: 'DELETE' });
    }
    for (const [what, [d, b]] of seen) assert.equal(b, d, `${what}: berth vs Distribution (status Content-Type)`);
  });

  test('GET/HEAD of a manifest reference that is neither a tag nor a digest: 404 on both (berth: MANIFEST_UNKNOWN)', async () => {
    for (const ref of ['.INVALID_MANIFEST_NAME', '-dash', 'x'.repeat(129)]) {
      for (const method of ['GET', 'HEAD']) {
        const [d, b] = await both(`/v2/a/manifests/${ref}`, method);
        assert.equal(d.status, 404, `Distribution ${method} ${ref}`);
        assert.equal(b.status, 404, `berth ${method} ${ref}`);
        if (method === 'GET') assert.equal(b.json().errors[0].code, 'MANIFEST_UNKNOWN');
      }
    }
  });
});

const createHashDigest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The Link header's n and last (Distribution orders the query last=…&n=…, berth n=…&last=…). */
function linkQuery(r: HttpResponse): { n: string | null; last: string | null } | undefined {
  const link = r.headers.link;
  if (!link) return undefined;
  const m = /^<([^>]+)>; rel="next"$/.exec(String(link));
  assert.ok(m, `Link: ${link}`);
  const q = new URL(m[1]!, 'http://x').searchParams;
  return { n: q.get('n'), last: q.get('last') };
}
