// Table tests for the registry's pure parsing: names, tags, digests, Range / Content-Range,
// pagination and routing (parse from the right).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidName, isValidTag } from '../../src/registry/core/names.js';
import { parseDigest, tryParseDigest } from '../../src/registry/core/digest.js';
import { DigestInvalidError, PaginationNumberInvalidError } from '../../src/registry/core/errors.js';
import { contentLength, parseContentRange, parseRange } from '../../src/registry/api/range.js';
import { nextLink, page, parseN } from '../../src/registry/api/pagination.js';
import { accessFor, matchRoute, parseV2Request } from '../../src/http/v2-routes.js';
import { ifNoneMatch, uploadRange } from '../../src/registry/api/headers.js';

const H64 = 'a'.repeat(64);

test('repository names follow the spec grammar', () => {
  const ok = ['a', 'library/ubuntu', 'a.b_c__d--e/f-g', 'x0/y1/z2', 'a---b', 'a'.repeat(255), 'ab/' + 'c'.repeat(252)];
  const bad = ['', 'A', 'a/', '/a', 'a//b', 'a/../b', '..', '.', 'a/.', '_a', 'a_', 'a___b', 'a.-b', 'a/-b',
    'a%2e%2e', 'a%2fb', 'a\0b', 'a b', 'a'.repeat(256), 'a/'.repeat(200) + 'a', 'ä', 'a:b', '_layers', 'a/_uploads'];
  for (const n of ok) assert.equal(isValidName(n), true, n);
  for (const n of bad) assert.equal(isValidName(n), false, JSON.stringify(n));
});

test('tags follow the spec grammar', () => {
  for (const t of ['latest', 'v1.0', '_x', 'A-b_c.D', 'a'.repeat(128)]) assert.equal(isValidTag(t), true, t);
  for (const t of ['', '.x', '-x', 'a'.repeat(129), 'a/b', 'a:b', '..', 'a b', 'a%2e']) assert.equal(isValidTag(t), false, t);
});

test('digests: only well-formed sha256 / sha512', () => {
  assert.deepEqual(parseDigest(`sha256:${H64}`), { algorithm: 'sha256', hex: H64, text: `sha256:${H64}` });
  assert.equal(tryParseDigest(`sha512:${'0'.repeat(128)}`)?.algorithm, 'sha512');
  for (const d of [`sha256:${'A'.repeat(64)}`, `sha256:${H64.slice(1)}`, `sha384:${'a'.repeat(96)}`, `md5:${'a'.repeat(32)}`,
    H64, `sha256:`, `sha256:${H64}/../x`, `sha512:${H64}`, '']) {
    assert.equal(tryParseDigest(d), undefined, d);
    assert.throws(() => parseDigest(d), DigestInvalidError);
  }
});

test('Range: single ranges, suffixes, unsatisfiable, ignored forms', () => {
  const rows: [string | undefined, number, ReturnType<typeof parseRange>][] = [
    [undefined, 10, undefined],
    ['bytes=0-4', 10, { start: 0, end: 4 }],
    ['bytes=5-', 10, { start: 5, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=-30', 10, { start: 0, end: 9 }],
    ['bytes=8-100', 10, { start: 8, end: 9 }],
    ['bytes=10-', 10, 'unsatisfiable'],
    ['bytes=10-12', 10, 'unsatisfiable'],
    ['bytes=-0', 10, 'unsatisfiable'],
    ['bytes=0-', 0, 'unsatisfiable'],
    ['bytes=0-1,3-4', 10, undefined],          // multi-range → whole blob
    ['bytes=4-2', 10, undefined],              // invalid → ignored
    ['items=0-1', 10, undefined],
    ['bytes=-', 10, undefined],
  ];
  for (const [h, size, want] of rows) assert.deepEqual(parseRange(h, size), want, `${h} / ${size}`);
});

test('Content-Range for upload chunks', () => {
  assert.equal(parseContentRange(undefined), undefined);
  assert.deepEqual(parseContentRange('0-99'), { start: 0, end: 99 });
  assert.deepEqual(parseContentRange('bytes=100-199'), { start: 100, end: 199 });
  assert.deepEqual(parseContentRange('bytes 5-5'), { start: 5, end: 5 });
  for (const h of ['5-4', 'a-b', '-5', '5-', '0-1/2x']) assert.equal(parseContentRange(h), 'invalid', h);
  assert.equal(contentLength('12'), 12);
  assert.equal(contentLength(undefined), undefined);
  assert.equal(uploadRange(0), '0-0');
  assert.equal(uploadRange(10), '0-9');
});

test('pagination: n parsing, pages after last, Link', () => {
  const q = (s: string) => new URLSearchParams(s);
  assert.equal(parseN(q('')), undefined);
  assert.equal(parseN(q('n=0')), 0);
  assert.equal(parseN(q('n=1000')), 1000);
  for (const s of ['n=1001', 'n=-1', 'n=abc', 'n=1.5', 'n=', 'n=99999999999']) assert.throws(() => parseN(q(s)), PaginationNumberInvalidError, s);
  const all = ['a', 'b', 'c', 'd'];
  assert.deepEqual(page(all, 2, undefined), { items: ['a', 'b'], more: true });
  assert.deepEqual(page(all, 2, 'b'), { items: ['c', 'd'], more: false });
  assert.deepEqual(page(all, 2, 'bb'), { items: ['c', 'd'], more: false });
  assert.deepEqual(page(all, undefined, 'a'), { items: ['b', 'c', 'd'], more: false });
  assert.deepEqual(page(all, 0, undefined), { items: [], more: true });
  assert.equal(nextLink('/v2/x/tags/list', 2, 'b'), '</v2/x/tags/list?n=2&last=b>; rel="next"');
});

test('routes are parsed from the right', () => {
  const D = `sha256:${H64}`;
  const rows: [string, unknown][] = [
    ['/v2', { kind: 'base' }],
    ['/v2/', { kind: 'base' }],
    ['/v2/_catalog', { kind: 'catalog' }],
    ['/v2/a/b/tags/list', { kind: 'tags', name: 'a/b' }],
    ['/v2/a/manifests/latest', { kind: 'manifest', name: 'a', ref: 'latest' }],
    ['/v2/x/manifests/y/manifests/z', { kind: 'manifest', name: 'x/manifests/y', ref: 'z' }],
    [`/v2/a/blobs/${D}`, { kind: 'blob', name: 'a', digest: D }],
    ['/v2/a/b/blobs/uploads/', { kind: 'uploadStart', name: 'a/b' }],
    ['/v2/a/b/blobs/uploads', { kind: 'uploadStart', name: 'a/b' }],
    ['/v2/a/blobs/uploads/abc-123', { kind: 'upload', name: 'a', id: 'abc-123' }],
    [`/v2/a/referrers/${D}`, { kind: 'referrers', name: 'a', digest: D }],
    ['/v2/a/%2e%2e/manifests/x', { kind: 'manifest', name: 'a/%2e%2e', ref: 'x' }],
    ['/v2/tags/list', undefined],
    ['/v2/a', undefined],
    ['/v2/a/blobs', undefined],
    ['/v3/a/tags/list', undefined],
    ['/v2x/a/tags/list', undefined],
  ];
  for (const [p, want] of rows) assert.deepEqual(matchRoute(p), want, p);
});

test('access each request needs (Distribution\'s appendAccessRecords), and the metric route name', () => {
  const D = `sha256:${H64}`;
  const repo = (name: string, ...actions: string[]) => ({ type: 'repository', name, actions });
  const rows: [string, string, unknown[], string][] = [
    ['GET', '/v2/', [], 'base'],
    ['GET', '/v2/_catalog?n=10', [{ type: 'registry', name: 'catalog', actions: ['*'] }], 'catalog'],
    ['GET', '/v2/a/b/tags/list', [repo('a/b', 'pull')], 'tags'],
    ['HEAD', `/v2/a/manifests/${D}`, [repo('a', 'pull')], 'manifest'],
    ['PUT', '/v2/a/manifests/v1', [repo('a', 'pull', 'push')], 'manifest'],
    ['DELETE', '/v2/a/manifests/v1', [repo('a', 'delete')], 'manifest'],
    ['GET', `/v2/a/blobs/${D}`, [repo('a', 'pull')], 'blob'],
    ['DELETE', `/v2/a/blobs/${D}`, [repo('a', 'delete')], 'blob'],
    ['POST', '/v2/a/blobs/uploads/', [repo('a', 'pull', 'push')], 'blob_upload'],
    ['POST', `/v2/a/blobs/uploads/?mount=${D}&from=lib/src`, [repo('a', 'pull', 'push'), repo('lib/src', 'pull')], 'blob_upload'],
    ['POST', `/v2/a/blobs/uploads/?mount=${D}`, [repo('a', 'pull', 'push')], 'blob_upload'],   // no from: a plain session
    ['PATCH', '/v2/a/blobs/uploads/u1?_state=x', [repo('a', 'pull', 'push')], 'blob_upload'],
    ['PUT', `/v2/a/blobs/uploads/u1?digest=${D}`, [repo('a', 'pull', 'push')], 'blob_upload'],
    ['DELETE', '/v2/a/blobs/uploads/u1', [repo('a', 'delete')], 'blob_upload'],
    ['GET', `/v2/a/referrers/${D}?artifactType=x`, [repo('a', 'pull')], 'referrers'],
    ['OPTIONS', '/v2/a/tags/list', [], 'tags'],
    ['GET', '/v2/a/nothing', [], 'unknown'],
  ];
  for (const [method, url, access, metric] of rows) {
    const r = parseV2Request(method, url);
    assert.deepEqual(r.access, access, `${method} ${url}`);
    assert.equal(r.metric, metric, `${method} ${url}`);
  }
  assert.deepEqual(accessFor('GET', undefined), []);
  const mount = parseV2Request('POST', `/v2/a/blobs/uploads/?mount=${D}&from=b`).route;
  assert.deepEqual(mount, { kind: 'uploadStart', name: 'a', mount: { digest: D, from: 'b' } });
});

test('If-None-Match matching', () => {
  const d = `sha256:${H64}`;
  assert.equal(ifNoneMatch(`"${d}"`, d), true);
  assert.equal(ifNoneMatch(`W/"${d}"`, d), true);
  assert.equal(ifNoneMatch(`"x", "${d}"`, d), true);
  assert.equal(ifNoneMatch('*', d), true);
  assert.equal(ifNoneMatch(d, d), true);
  assert.equal(ifNoneMatch('"other"', d), false);
  assert.equal(ifNoneMatch(undefined, d), false);
});
