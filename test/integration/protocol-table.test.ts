// The protocol table, after go-containerregistry's pkg/registry TestCalls: one row per request → expected
// status, headers and OCI error code, covering every spec endpoint (end-1 … end-13, plus _catalog), every
// error code the registry emits, and hostile input. Every row also checks Docker-Distribution-Api-Version.
// After the hostile rows, the storage root must hold nothing but docker/registry/v2 and nothing may have
// been written beside it. Where the spec allows several answers, a row lists all of them (and says why).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import {
  MT, descriptor, expectApiVersion, expectOciError, locationPath, makeImageManifest, pushBlob, pushImage,
  sha256, startUpload, withQuery, type PushedImage,
} from '../support/oci-client.js';
import { request, type HttpResponse } from '../support/http.js';

const R = 't/repo';                       // the fixture repository
const UNKNOWN = sha256('never pushed');
const HEX64 = 'a'.repeat(64);
// TAG_INVALID, PAGINATION_NUMBER_INVALID and RANGE_INVALID are Distribution's codes, not the OCI spec's.
const ALL_CODES = ['RANGE_INVALID', 'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED',
  'UNSUPPORTED', 'TOOMANYREQUESTS', 'TAG_INVALID', 'PAGINATION_NUMBER_INVALID'];

interface Fixture { base: string; img: PushedImage; blob: Buffer; blobDigest: string; etags: Record<string, string> }
type S = Record<string, any>;                           // whatever a row's setup returns
type V<T> = T | ((f: Fixture, s: S) => T);
interface Row {
  desc: string;
  setup?: (f: Fixture) => Promise<S>;
  method: string;
  path: V<string>;
  headers?: V<Record<string, string>>;
  body?: V<Buffer | string | Readable | undefined>;
  status: number | number[];
  code?: string | string[];                             // checked when the status is >= 400 (and not HEAD)
  resHeaders?: V<Record<string, string | RegExp | null>>;   // null: must be absent
  check?: (res: HttpResponse, f: Fixture, s: S) => Promise<void> | void;
}
const val = <T>(v: V<T> | undefined, f: Fixture, s: S): T | undefined => (typeof v === 'function' ? (v as (f: Fixture, s: S) => T)(f, s) : v);
const octet = { 'content-type': 'application/octet-stream' };
const upload = async (f: Fixture): Promise<S> => ({ loc: await startUpload(f.base, R) });
const uploadWith = (bytes: string) => async (f: Fixture): Promise<S> => {
  const loc = await startUpload(f.base, R);
  const res = await request(`${f.base}${loc}`, { method: 'PATCH', headers: { ...octet, 'content-range': `0-${bytes.length - 1}` }, body: bytes });
  assert.equal(res.status, 202, res.text());
  return { loc: locationPath(f.base, res) };
};
const headIs = (status: number, path: (f: Fixture, s: S) => string) => async (_r: HttpResponse, f: Fixture, s: S) => {
  const res = await request(`${f.base}${path(f, s)}`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
  assert.equal(res.status, status, `HEAD ${path(f, s)}`);
};

/** The fixture manifest padded (with an annotation) to exactly `size` bytes. */
function padManifest(f: Fixture, size: number): Buffer {
  const bare = JSON.stringify({ ...f.img.manifest, annotations: { pad: '' } });
  return Buffer.from(JSON.stringify({ ...f.img.manifest, annotations: { pad: 'x'.repeat(size - bare.length) } }));
}

// ───────────────────────────── spec endpoints ─────────────────────────────
const endpointRows: Row[] = [
  // end-1
  { desc: 'end-1 GET /v2/', method: 'GET', path: '/v2/', status: 200 },
  { desc: 'end-1 HEAD /v2/', method: 'HEAD', path: '/v2/', status: 200 },

  // end-2 blobs
  { desc: 'end-2 GET blob', method: 'GET', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`, status: 200,
    resHeaders: (f) => ({ 'content-length': String(f.blob.length), 'docker-content-digest': f.blobDigest,
      // ETag is not required by the spec; berth (like Distribution) sends the quoted digest.
      'content-type': 'application/octet-stream', etag: `"${f.blobDigest}"` }),
    check: (res, f) => assert.deepEqual(res.body, f.blob) },
  { desc: 'end-2 HEAD blob', method: 'HEAD', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`, status: 200,
    resHeaders: (f) => ({ 'content-length': String(f.blob.length), 'docker-content-digest': f.blobDigest }) },
  { desc: 'end-2 GET blob If-None-Match: ETag → 304', method: 'GET', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`,
    headers: (f) => ({ 'if-none-match': f.etags.blob }), status: 304, check: (res) => assert.equal(res.body.length, 0) },
  { desc: 'end-2 GET blob If-None-Match: other → 200', method: 'GET', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`,
    headers: { 'if-none-match': '"sha256:nope"' }, status: 200 },
  { desc: 'end-2 GET unknown blob', method: 'GET', path: `/v2/${R}/blobs/${UNKNOWN}`, status: 404, code: 'BLOB_UNKNOWN' },
  { desc: 'end-2 HEAD unknown blob', method: 'HEAD', path: `/v2/${R}/blobs/${UNKNOWN}`, status: 404 },
  { desc: 'end-2 GET blob in unknown repo', method: 'GET', path: (f) => `/v2/t/nothere/blobs/${f.blobDigest}`, status: 404, code: ['BLOB_UNKNOWN', 'NAME_UNKNOWN'] },
  { desc: 'end-2 Range bytes=0-0 → 206', method: 'GET', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`, headers: { range: 'bytes=0-0' },
    status: 206, resHeaders: (f) => ({ 'content-range': `bytes 0-0/${f.blob.length}`, 'content-length': '1' }) },
  { desc: 'end-2 Range bytes=999999- (unsatisfiable) → 416 Content-Range bytes */size', method: 'GET',
    path: (f) => `/v2/${R}/blobs/${f.blobDigest}`, headers: { range: 'bytes=999999-' },
    status: 416, code: ['RANGE_INVALID', 'BLOB_UPLOAD_INVALID'], resHeaders: (f) => ({ 'content-range': `bytes */${f.blob.length}` }) },
  // RFC 9110 §14.1.1: a suffix-length of 0 is syntactically valid and unsatisfiable.
  { desc: 'end-2 Range bytes=-0 → 416', method: 'GET', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`, headers: { range: 'bytes=-0' },
    status: 416, code: ['RANGE_INVALID', 'BLOB_UPLOAD_INVALID'], resHeaders: (f) => ({ 'content-range': `bytes */${f.blob.length}` }) },
  // RFC 9110 §14.2: an invalid ranges-specifier MAY be ignored (200, whole body) or rejected (416); never 206/5xx.
  ...['bytes=5-2', 'bytes=abc', 'garbage', 'bytes=--1'].map((range): Row => ({
    desc: `end-2 Range ${range} (invalid) → 200 whole blob or 416`, method: 'GET', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`,
    headers: { range }, status: [200, 416],
    check: (res, f) => { if (res.status === 200) assert.deepEqual(res.body, f.blob); } })),
  // RFC 9110 §14.2: "An origin server MUST ignore a Range header field that contains a range unit it does not understand."
  { desc: 'end-2 Range items=0-1 (unknown unit) → 200', method: 'GET', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`,
    headers: { range: 'items=0-1' }, status: 200, check: (res, f) => assert.deepEqual(res.body, f.blob) },

  // end-3 manifests
  { desc: 'end-3 GET manifest by tag', method: 'GET', path: `/v2/${R}/manifests/v1`, headers: { accept: MT.ociManifest }, status: 200,
    resHeaders: (f) => ({ 'content-type': MT.ociManifest, 'docker-content-digest': f.img.digest,
      'content-length': String(f.img.bytes.length), etag: `"${f.img.digest}"` }),
    check: (res, f) => assert.deepEqual(res.body, f.img.bytes) },
  { desc: 'end-3 HEAD manifest by digest', method: 'HEAD', path: (f) => `/v2/${R}/manifests/${f.img.digest}`, headers: { accept: MT.ociManifest },
    status: 200, resHeaders: (f) => ({ 'content-type': MT.ociManifest, 'docker-content-digest': f.img.digest, 'content-length': String(f.img.bytes.length) }) },
  { desc: 'end-3 GET manifest If-None-Match: ETag → 304', method: 'GET', path: `/v2/${R}/manifests/v1`,
    headers: (f) => ({ accept: MT.ociManifest, 'if-none-match': f.etags.manifest }), status: 304, check: (res) => assert.equal(res.body.length, 0) },
  { desc: 'end-3 GET unknown tag', method: 'GET', path: `/v2/${R}/manifests/nope`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { desc: 'end-3 GET unknown digest', method: 'GET', path: `/v2/${R}/manifests/${UNKNOWN}`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { desc: 'end-3 HEAD unknown tag', method: 'HEAD', path: `/v2/${R}/manifests/nope`, status: 404 },
  { desc: 'end-3 GET manifest in unknown repo', method: 'GET', path: `/v2/t/nothere/manifests/v1`, status: 404, code: ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'] },

  // end-4a / end-4b
  { desc: 'end-4a POST upload', method: 'POST', path: `/v2/${R}/blobs/uploads/`, status: 202,
    resHeaders: { location: new RegExp(`/v2/${R}/blobs/uploads/[^/?]+`), 'docker-upload-uuid': /.+/ } },
  { desc: 'end-4b POST ?digest= monolithic (201; 202 allowed when unsupported)', method: 'POST',
    path: () => `/v2/${R}/blobs/uploads/?digest=${sha256('mono-4b')}`, headers: octet, body: 'mono-4b', status: [201, 202],
    check: async (res, f) => { if (res.status === 201) assert.equal(locationPath(f.base, res), `/v2/${R}/blobs/${sha256('mono-4b')}`); } },
  { desc: 'end-4b POST ?digest= mismatching body → 400 DIGEST_INVALID (202 if unsupported)', method: 'POST',
    path: `/v2/${R}/blobs/uploads/?digest=${sha256('claimed-4b')}`, headers: octet, body: 'actual-4b', status: [400, 202], code: 'DIGEST_INVALID',
    check: async (_r, f) => {
      for (const d of [sha256('claimed-4b'), sha256('actual-4b')]) assert.equal((await request(`${f.base}/v2/${R}/blobs/${d}`, { method: 'HEAD' })).status, 404);
    } },

  // end-5 PATCH
  { desc: 'end-5 PATCH first chunk', setup: upload, method: 'PATCH', path: (_f, s) => s.loc,
    headers: { ...octet, 'content-range': '0-3' }, body: 'abcd', status: 202,
    resHeaders: { range: '0-3', location: new RegExp(`/v2/${R}/blobs/uploads/`), 'docker-upload-uuid': /.+/ } },
  { desc: 'end-5 PATCH streamed (no Content-Range)', setup: upload, method: 'PATCH', path: (_f, s) => s.loc,
    headers: octet, body: 'abcdef', status: 202, resHeaders: { range: '0-5' } },
  { desc: 'end-5 PATCH out of order → 416 with Range', setup: uploadWith('abcd'), method: 'PATCH', path: (_f, s) => s.loc,
    headers: { ...octet, 'content-range': '10-13' }, body: 'efgh', status: 416, code: 'BLOB_UPLOAD_INVALID', resHeaders: { range: '0-3' } },
  { desc: 'end-5 PATCH overlapping chunk (starts before the offset) → 416', setup: uploadWith('abcd'), method: 'PATCH', path: (_f, s) => s.loc,
    headers: { ...octet, 'content-range': '2-5' }, body: 'cdef', status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { desc: 'end-5 PATCH Content-Range length ≠ Content-Length → 400 SIZE_INVALID', setup: upload, method: 'PATCH', path: (_f, s) => s.loc,
    headers: { ...octet, 'content-range': '0-9' }, body: 'abcd', status: 400, code: 'SIZE_INVALID' },
  { desc: 'end-5 PATCH malformed Content-Range → 400 BLOB_UPLOAD_INVALID (or 416)', setup: upload, method: 'PATCH', path: (_f, s) => s.loc,
    headers: { ...octet, 'content-range': 'bytes=zz' }, body: 'abcd', status: [400, 416], code: 'BLOB_UPLOAD_INVALID' },
  { desc: 'end-5 PATCH unknown session', method: 'PATCH', path: `/v2/${R}/blobs/uploads/00000000-0000-4000-8000-000000000000`,
    headers: octet, body: 'x', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { desc: 'end-5 PATCH session of another repository → 404', setup: upload, method: 'PATCH',
    path: (_f, s) => s.loc.replace(`/v2/${R}/`, '/v2/t/other/'), headers: octet, body: 'x', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },

  // end-6 PUT
  { desc: 'end-6 PUT ?digest= (monolithic body)', setup: upload, method: 'PUT', path: (_f, s) => withQuery(s.loc, { digest: sha256('end-6 body') }),
    headers: octet, body: 'end-6 body', status: 201,
    resHeaders: { location: new RegExp(`/v2/${R}/blobs/${sha256('end-6 body')}$`), 'docker-content-digest': sha256('end-6 body') } },
  { desc: 'end-6 PUT ?digest= closing a chunked upload, no body', setup: uploadWith('chunk'), method: 'PUT',
    path: (_f, s) => withQuery(s.loc, { digest: sha256('chunk') }), status: 201, resHeaders: { 'docker-content-digest': sha256('chunk') } },
  { desc: 'end-6 PUT without ?digest= → 400 DIGEST_INVALID', setup: uploadWith('nodigest'), method: 'PUT', path: (_f, s) => s.loc,
    status: 400, code: 'DIGEST_INVALID' },
  { desc: 'end-6 PUT digest mismatch → 400 DIGEST_INVALID, and neither digest is visible afterwards', setup: upload, method: 'PUT',
    path: (_f, s) => withQuery(s.loc, { digest: sha256('what I claim') }), headers: octet, body: 'what I send', status: 400, code: 'DIGEST_INVALID',
    check: async (_r, f) => {
      for (const d of [sha256('what I claim'), sha256('what I send')]) {
        const h = await request(`${f.base}/v2/${R}/blobs/${d}`, { method: 'HEAD' });
        assert.equal(h.status, 404, `blob ${d} visible after a digest mismatch`);
      }
    } },
  ...[['bad hex', `sha256:${'z'.repeat(64)}`], ['short', 'sha256:abc'], ['uppercase hex', `sha256:${'A'.repeat(64)}`],
    ['unknown algorithm', `md5:${'a'.repeat(32)}`], ['no algorithm', HEX64], ['empty', '']].map(([what, digest]): Row => ({
    desc: `end-6 PUT ?digest= ${what} → 400 DIGEST_INVALID`, setup: upload, method: 'PUT', path: (_f, s) => withQuery(s.loc, { digest }),
    headers: octet, body: 'x', status: 400, code: 'DIGEST_INVALID' })),
  { desc: 'end-6 PUT unknown session', method: 'PUT', path: `/v2/${R}/blobs/uploads/00000000-0000-4000-8000-000000000000?digest=${sha256('x')}`,
    headers: octet, body: 'x', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },

  // end-7 PUT manifest
  { desc: 'end-7 PUT manifest by tag', method: 'PUT', path: `/v2/${R}/manifests/v2`, headers: { 'content-type': MT.ociManifest },
    body: (f) => f.img.bytes, status: 201, resHeaders: (f) => ({ location: new RegExp(`/v2/${R}/manifests/(v2|${f.img.digest})$`), 'docker-content-digest': f.img.digest }) },
  { desc: 'end-7 PUT manifest by digest', method: 'PUT', path: (f) => `/v2/${R}/manifests/${f.img.digest}`, headers: { 'content-type': MT.ociManifest },
    body: (f) => f.img.bytes, status: 201, resHeaders: (f) => ({ location: `/v2/${R}/manifests/${f.img.digest}`, 'docker-content-digest': f.img.digest }) },
  { desc: 'end-7 PUT manifest with subject → OCI-Subject', method: 'PUT', path: `/v2/${R}/manifests/with-subject`,
    headers: { 'content-type': MT.ociManifest },
    body: (f) => JSON.stringify(makeImageManifest({ config: f.img.config, layers: [f.img.layer], subject: descriptor(MT.ociManifest, f.img.bytes), artifactType: 'application/vnd.example.t' })),
    status: 201, resHeaders: (f) => ({ 'oci-subject': f.img.digest }) },
  { desc: 'end-7 PUT manifest ?tag= → OCI-Tag', method: 'PUT', path: (f) => `/v2/${R}/manifests/${f.img.digest}?tag=qt`,
    headers: { 'content-type': MT.ociManifest }, body: (f) => f.img.bytes, status: 201, resHeaders: { 'oci-tag': 'qt' } },
  { desc: 'end-7 PUT invalid JSON → MANIFEST_INVALID', method: 'PUT', path: `/v2/${R}/manifests/bad`, headers: { 'content-type': MT.ociManifest },
    body: '{"schemaVersion":', status: 400, code: 'MANIFEST_INVALID' },
  { desc: 'end-7 PUT empty body → MANIFEST_INVALID', method: 'PUT', path: `/v2/${R}/manifests/bad`, headers: { 'content-type': MT.ociManifest },
    body: '', status: 400, code: 'MANIFEST_INVALID' },
  { desc: 'end-7 PUT Content-Type ≠ body mediaType → MANIFEST_INVALID', method: 'PUT', path: `/v2/${R}/manifests/bad`,
    headers: { 'content-type': MT.ociIndex }, body: (f) => f.img.bytes, status: 400, code: 'MANIFEST_INVALID' },
  { desc: 'end-7 PUT referencing a missing layer → MANIFEST_BLOB_UNKNOWN', method: 'PUT', path: `/v2/${R}/manifests/bad`,
    headers: { 'content-type': MT.ociManifest },
    body: (f) => JSON.stringify(makeImageManifest({ config: f.img.config, layers: [{ mediaType: MT.ociLayer, digest: UNKNOWN, size: 1 }] })),
    status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { desc: 'end-7 PUT by digest, body hashes differently → DIGEST_INVALID', method: 'PUT', path: `/v2/${R}/manifests/${UNKNOWN}`,
    headers: { 'content-type': MT.ociManifest }, body: (f) => f.img.bytes, status: 400, code: 'DIGEST_INVALID',
    check: headIs(404, () => `/v2/${R}/manifests/${UNKNOWN}`) },
  { desc: 'end-7 PUT tag of 129 chars → TAG_INVALID', method: 'PUT', path: `/v2/${R}/manifests/${'t'.repeat(129)}`,
    headers: { 'content-type': MT.ociManifest }, body: (f) => f.img.bytes, status: 400, code: 'TAG_INVALID' },
  { desc: 'end-7 PUT tag of 128 chars → 201', method: 'PUT', path: `/v2/${R}/manifests/${'t'.repeat(128)}`,
    headers: { 'content-type': MT.ociManifest }, body: (f) => f.img.bytes, status: 201 },
  // Spec: "Client and registry implementations SHOULD expect to be able to support manifest pushes of at least 4 megabytes."
  { desc: 'end-7 PUT manifest of exactly 4 MiB → 201', method: 'PUT', path: `/v2/${R}/manifests/four-mib`, headers: { 'content-type': MT.ociManifest },
    body: (f) => padManifest(f, 4 * 1024 * 1024), status: 201,
    check: async (_r, f) => assert.equal((await request(`${f.base}/v2/${R}/manifests/four-mib`, { method: 'HEAD', headers: { accept: MT.ociManifest } })).headers['content-length'], String(4 * 1024 * 1024)) },
  { desc: 'end-7 PUT manifest > 4 MiB streamed without Content-Length → 413 (cap enforced while reading)', method: 'PUT',
    path: `/v2/${R}/manifests/huge-chunked`, headers: { 'content-type': MT.ociManifest },
    body: (f) => Readable.from([padManifest(f, 4 * 1024 * 1024 + 1)].flatMap((b) => [b.subarray(0, 1 << 20), b.subarray(1 << 20)])),
    status: 413, code: ['MANIFEST_INVALID', 'SIZE_INVALID'], check: headIs(404, () => `/v2/${R}/manifests/huge-chunked`) },
  { desc: 'end-7 PUT manifest > 4 MiB → 413', method: 'PUT', path: `/v2/${R}/manifests/huge`, headers: { 'content-type': MT.ociManifest },
    body: (f) => JSON.stringify({ ...f.img.manifest, annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } }),
    status: 413, code: ['MANIFEST_INVALID', 'SIZE_INVALID'], check: headIs(404, () => `/v2/${R}/manifests/huge`) },

  // end-8a / end-8b
  { desc: 'end-8a GET tags/list', method: 'GET', path: `/v2/${R}/tags/list`, status: 200,
    resHeaders: { 'content-type': /^application\/json/ },
    check: (res) => { const b = res.json(); assert.equal(b.name, R); assert.ok(b.tags.includes('v1')); assert.deepEqual(b.tags, [...b.tags].sort()); } },
  { desc: 'end-8b GET tags/list?n=1 → one tag and Link rel="next"', method: 'GET', path: `/v2/${R}/tags/list?n=1`, status: 200,
    resHeaders: { link: new RegExp(`^</v2/${R}/tags/list\\?(n=1&last=[^&>]+|last=[^&>]+&n=1)>; rel="next"$`) },
    check: (res) => assert.equal(res.json().tags.length, 1) },
  { desc: 'end-8b GET tags/list?last=zzzz → empty list, no Link', method: 'GET', path: `/v2/${R}/tags/list?last=zzzz`, status: 200,
    resHeaders: { link: null }, check: (res) => assert.deepEqual(res.json().tags ?? [], []) },
  { desc: 'end-8a GET tags/list of unknown repo', method: 'GET', path: '/v2/t/nothere/tags/list', status: 404, code: 'NAME_UNKNOWN' },

  // end-9 DELETE manifest
  { desc: 'end-9 DELETE manifest by digest', setup: async (f) => ({ img: await pushImage(f.base, R, 'del-me') }), method: 'DELETE',
    path: (_f, s) => `/v2/${R}/manifests/${s.img.digest}`, status: 202, check: headIs(404, (_f, s) => `/v2/${R}/manifests/${s.img.digest}`) },
  { desc: 'end-9 DELETE manifest by tag', setup: async (f) => ({ img: await pushImage(f.base, R, 'del-tag') }), method: 'DELETE',
    path: `/v2/${R}/manifests/del-tag`, status: 202, check: headIs(404, () => `/v2/${R}/manifests/del-tag`) },
  { desc: 'end-9 DELETE unknown manifest digest', method: 'DELETE', path: `/v2/${R}/manifests/${UNKNOWN}`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { desc: 'end-9 DELETE unknown tag', method: 'DELETE', path: `/v2/${R}/manifests/no-such-tag`, status: 404, code: 'MANIFEST_UNKNOWN' },

  // end-10 DELETE blob
  { desc: 'end-10 DELETE blob', setup: async (f) => ({ d: await pushBlob(f.base, R, 'delete this blob') }), method: 'DELETE',
    path: (_f, s) => `/v2/${R}/blobs/${s.d}`, status: 202,
    check: async (_r, f, s) => assert.equal((await request(`${f.base}/v2/${R}/blobs/${s.d}`, { method: 'HEAD' })).status, 404) },
  { desc: 'end-10 DELETE unknown blob', method: 'DELETE', path: `/v2/${R}/blobs/${UNKNOWN}`, status: 404, code: 'BLOB_UNKNOWN' },

  // end-11 mount
  { desc: 'end-11 POST mount from a repo holding the blob → 201', method: 'POST',
    path: (f) => `/v2/t/mounted/blobs/uploads/?mount=${f.blobDigest}&from=${R}`, status: 201,
    resHeaders: (f) => ({ location: new RegExp(`/v2/t/mounted/blobs/${f.blobDigest}$`), 'docker-content-digest': f.blobDigest }) },
  { desc: 'end-11 POST mount of a blob missing in from → 202 session', method: 'POST',
    path: `/v2/t/mounted/blobs/uploads/?mount=${UNKNOWN}&from=${R}`, status: 202, resHeaders: { location: /\/v2\/t\/mounted\/blobs\/uploads\// } },
  { desc: 'end-11 POST mount with hostile from= → 202 session or 400 NAME_INVALID; never mounts', method: 'POST',
    path: (f) => `/v2/t/mounted2/blobs/uploads/?mount=${f.blobDigest}&from=${encodeURIComponent('t/../t/repo')}`,
    status: [202, 400], code: 'NAME_INVALID', check: async (_r, f) => assert.equal((await request(`${f.base}/v2/t/mounted2/blobs/${f.blobDigest}`, { method: 'HEAD' })).status, 404) },

  // end-12a / end-12b
  { desc: 'end-12a GET referrers', method: 'GET', path: (f) => `/v2/${R}/referrers/${f.img.digest}`, status: 200,
    resHeaders: { 'content-type': MT.ociIndex }, check: (res) => assert.equal(res.json().schemaVersion, 2) },
  { desc: 'end-12b GET referrers?artifactType= → OCI-Filters-Applied', method: 'GET',
    path: (f) => `/v2/${R}/referrers/${f.img.digest}?artifactType=application%2Fvnd.example.t`, status: 200,
    resHeaders: { 'content-type': MT.ociIndex, 'oci-filters-applied': 'artifactType' } },
  { desc: 'end-12a GET referrers of unknown subject → 200 empty', method: 'GET', path: `/v2/${R}/referrers/${UNKNOWN}`, status: 200,
    check: (res) => assert.deepEqual(res.json().manifests, []) },
  { desc: 'end-12a GET referrers with invalid digest → 400', method: 'GET', path: `/v2/${R}/referrers/sha256:xyz`, status: 400, code: 'DIGEST_INVALID' },

  // end-13 upload status (+ cancel, Docker Registry API v2)
  { desc: 'end-13 GET upload status', setup: uploadWith('12345'), method: 'GET', path: (_f, s) => s.loc, status: 204,
    resHeaders: { range: '0-4', location: new RegExp(`/v2/${R}/blobs/uploads/`), 'docker-upload-uuid': /.+/ } },
  { desc: 'end-13 GET unknown upload', method: 'GET', path: `/v2/${R}/blobs/uploads/00000000-0000-4000-8000-000000000000`,
    status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { desc: 'DELETE upload (cancel) → 204', setup: upload, method: 'DELETE', path: (_f, s) => s.loc, status: 204,
    check: async (_r, f, s) => assert.equal((await request(`${f.base}${s.loc}`)).status, 404) },

  // _catalog (Docker Registry API v2; not in the OCI spec)
  { desc: '_catalog GET', method: 'GET', path: '/v2/_catalog', status: 200,
    check: (res) => { const r = res.json().repositories; assert.ok(r.includes(R)); assert.deepEqual(r, [...r].sort()); } },
  { desc: '_catalog n=1 → Link rel="next"', setup: async (f) => ({ img: await pushImage(f.base, 't/zz', 'v') }), method: 'GET', path: '/v2/_catalog?n=1', status: 200,
    resHeaders: { link: /^<\/v2\/_catalog\?(n=1&last=[^&>]+|last=[^&>]+&n=1)>; rel="next"$/ } },
  { desc: '_catalog n=0 → empty list', method: 'GET', path: '/v2/_catalog?n=0', status: 200,
    check: (res) => assert.deepEqual(res.json().repositories, []) },
  { desc: '_catalog n=1001 → 400 PAGINATION_NUMBER_INVALID', method: 'GET', path: '/v2/_catalog?n=1001', status: 400, code: 'PAGINATION_NUMBER_INVALID' },
  // Not specified anywhere: Distribution 2.8 ignores junk n; a 400 is the stricter acceptable answer.
  ...['-1', 'abc', '1e3'].map((n): Row => ({ desc: `_catalog n=${n} → 400 PAGINATION_NUMBER_INVALID or ignored`, method: 'GET',
    path: `/v2/_catalog?n=${n}`, status: [200, 400], code: 'PAGINATION_NUMBER_INVALID' })),

  // Unsupported methods / unknown routes under /v2: always the JSON envelope and the version header.
  { desc: 'PATCH on a manifest → 405 UNSUPPORTED', method: 'PATCH', path: `/v2/${R}/manifests/v1`, body: 'x', status: 405, code: 'UNSUPPORTED' },
  { desc: 'POST on a blob → 405 UNSUPPORTED', method: 'POST', path: (f) => `/v2/${R}/blobs/${f.blobDigest}`, status: 405, code: 'UNSUPPORTED' },
  { desc: 'unknown route under /v2 → 404 with an OCI envelope', method: 'GET', path: `/v2/${R}/nonsense`, status: 404, code: ALL_CODES },
];

// ───────────────────────────── hostile input ─────────────────────────────
const up = (name: string) => `/v2/${name}/blobs/uploads/`;
const climb = '../../../../../..';   // from <root>/docker/registry/v2/repositories/a up to the root's parent
// A name that cannot be parsed at all may be answered 404 by the router; anything parseable and invalid
// must be 400 NAME_INVALID. Never 2xx, never 5xx.
const NAME_BAD = { status: [400, 404], code: ['NAME_INVALID', 'NAME_UNKNOWN', 'BLOB_UNKNOWN', 'MANIFEST_UNKNOWN'] };
const hostileNames: [string, string, typeof NAME_BAD | { status: number; code: string }][] = [
  ['raw ..', `a/${climb}/escape`, NAME_BAD],
  ['%2e%2e', `a/${climb.replaceAll('..', '%2e%2e')}/escape`, NAME_BAD],
  ['%2E%2E upper', `a/${climb.replaceAll('..', '%2E%2E')}/escape`, NAME_BAD],
  ['%2F separators', `a${('/' + climb + '/escape').replaceAll('/', '%2F')}`, NAME_BAD],
  ['. component', 'a/./escape', NAME_BAD],
  ['empty component', 'a//escape', NAME_BAD],
  ['uppercase', 'Escape/Upper', { status: 400, code: 'NAME_INVALID' }],
  ['256 chars', `${'a'.repeat(127)}/${'b'.repeat(128)}`, { status: 400, code: 'NAME_INVALID' }],
  ['NUL', 'esc%00ape', NAME_BAD],
  ['backslash', 'a%5C..%5C..%5Cescape', NAME_BAD],
  ['leading separator', '-escape', NAME_BAD],
  ['_underscore dir', '_uploads/escape', NAME_BAD],
];
const hostileRows: Row[] = [
  ...hostileNames.flatMap(([what, name, exp]): Row[] => [
    { desc: `hostile name (${what}): POST upload`, method: 'POST', path: up(name), ...exp },
    { desc: `hostile name (${what}): POST ?digest= monolithic`, method: 'POST', path: `${up(name)}?digest=${sha256('hostile')}`,
      headers: octet, body: 'hostile', ...exp },
    { desc: `hostile name (${what}): POST mount`, method: 'POST', path: (f) => `${up(name)}?mount=${f.blobDigest}&from=${R}`, ...exp },
    { desc: `hostile name (${what}): PUT manifest`, method: 'PUT', path: `/v2/${name}/manifests/latest`,
      headers: { 'content-type': MT.ociManifest }, body: (f) => f.img.bytes, ...exp },
    { desc: `hostile name (${what}): GET tags/list`, method: 'GET', path: `/v2/${name}/tags/list`, ...exp },
  ]),
  { desc: 'hostile mount from= climbing out', method: 'POST',
    path: (f) => `/v2/t/victim/blobs/uploads/?mount=${f.blobDigest}&from=${encodeURIComponent(`a/${climb}/docker/registry/v2/repositories/${R}`)}`,
    status: [202, 400], code: 'NAME_INVALID' },
  ...[['..', [400, 404]], ['%2e%2e', [400, 404]], ['a%2Fb', [400, 404]], ['a%00b', [400, 404]], ['.hidden', [400, 404]], ['x'.repeat(129), [400, 404]]]
    .map(([tag, status]): Row => ({ desc: `hostile tag ${String(tag).slice(0, 20)}: PUT → 400 TAG_INVALID`, method: 'PUT',
      path: `/v2/${R}/manifests/${tag}`, headers: { 'content-type': MT.ociManifest }, body: (f) => f.img.bytes,
      status: status as number[], code: ['TAG_INVALID', 'MANIFEST_UNKNOWN', 'DIGEST_INVALID'] })),
  // A pull's reference that is neither a tag nor a digest is 404 MANIFEST_UNKNOWN (issue 15 point 1; PUT keeps TAG_INVALID).
  ...[['129 chars', 'x'.repeat(129)], ['leading dot', '.INVALID_MANIFEST_NAME'], ['leading dash', '-x']].flatMap(([what, tag]): Row[] =>
    (['GET', 'HEAD'] as const).map((method) => ({ desc: `invalid tag (${what}): ${method} → 404 MANIFEST_UNKNOWN`, method,
      path: `/v2/${R}/manifests/${tag}`, status: 404, code: 'MANIFEST_UNKNOWN' }))),
  ...[['bad hex', `sha256:${'g'.repeat(64)}`], ['short', 'sha256:abc'], ['long', `sha256:${HEX64}00`], ['unknown algorithm', `sha999:${HEX64}`],
    ['uppercase hex', `sha256:${'A'.repeat(64)}`], ['traversal', `sha256:..%2F..%2F..%2F${HEX64.slice(9)}`], ['empty hex', 'sha256:']]
    .flatMap(([what, d]): Row[] => [
      // The spec's end-2/end-3 failure column is 404; Distribution answers 400 DIGEST_INVALID for a malformed digest.
      { desc: `hostile digest (${what}): GET blob`, method: 'GET', path: `/v2/${R}/blobs/${d}`, status: [400, 404], code: ['DIGEST_INVALID', 'BLOB_UNKNOWN'] },
      { desc: `hostile digest (${what}): GET manifest → 404 MANIFEST_UNKNOWN`, method: 'GET', path: `/v2/${R}/manifests/${d}`, status: 404,
        code: 'MANIFEST_UNKNOWN' },
      { desc: `hostile digest (${what}): DELETE blob`, method: 'DELETE', path: `/v2/${R}/blobs/${d}`, status: [400, 404], code: ['DIGEST_INVALID', 'BLOB_UNKNOWN'] },
      { desc: `hostile digest (${what}): mount`, method: 'POST', path: `/v2/t/victim/blobs/uploads/?mount=${d}&from=${R}`, status: [202, 400], code: 'DIGEST_INVALID' },
    ]),
  ...['..%2F..%2F..%2F..%2Fescape', '%2e%2e', 'x%00y', '..', 'a'.repeat(300)].map((id): Row => ({
    desc: `hostile upload id ${id.slice(0, 24)}: PATCH → 404 BLOB_UPLOAD_UNKNOWN (or 400)`, method: 'PATCH', path: `/v2/${R}/blobs/uploads/${id}`,
    headers: octet, body: 'hostile', status: [400, 404], code: ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'NAME_INVALID'] })),
];

async function runRow(row: Row, f: Fixture): Promise<void> {
  const s = row.setup ? await row.setup(f) : {};
  const path = val(row.path, f, s)!;
  const res = await request(`${f.base}${path}`, { method: row.method, headers: val(row.headers, f, s), body: val(row.body, f, s) });
  const what = `${row.method} ${path.slice(0, 120)}`;
  expectApiVersion(res, what);
  const statuses = Array.isArray(row.status) ? row.status : [row.status];
  assert.ok(statuses.includes(res.status), `${what}: expected ${statuses.join('|')}, got ${res.status} ${res.text().slice(0, 300)}`);
  if (row.method === 'HEAD') assert.equal(res.body.length, 0, `${what}: HEAD with a body`);
  else if (res.status >= 400) expectOciError(res, res.status, row.code ?? ALL_CODES, what);
  for (const [k, want] of Object.entries(val(row.resHeaders, f, s) ?? {})) {
    if (res.status >= 400 && statuses.length > 1) continue;          // optional-error branch: headers are for success
    let got = res.headers[k];
    if (k === 'location' && typeof got === 'string') got = locationPath(f.base, res);   // may be absolute or relative
    if (want === null) assert.equal(got, undefined, `${what}: header ${k} must be absent`);
    else if (want instanceof RegExp) assert.match(String(got ?? ''), want, `${what}: header ${k}`);
    else assert.equal(got, want, `${what}: header ${k}`);
  }
  await row.check?.(res, f, s);
}

async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    out.push(rel);
    if (e.isDirectory()) out.push(...await listTree(join(dir, e.name), rel));
  }
  return out;
}

describe('protocol table (every endpoint, every error code, hostile input)', () => {
  let parent: string; let reg: TestRegistry; const f = {} as Fixture;
  before(async () => {
    // Our own parent directory, so "nothing written beside the root" is checkable without other tests' noise.
    parent = await mkdtemp(join(tmpdir(), 'berth-proto-'));
    reg = await startRegistry({ root: join(parent, 'root'), deleteEnabled: true });
    f.base = reg.url;
    f.img = await pushImage(f.base, R, 'v1');
    f.blob = Buffer.from('the fixture blob, 40 bytes long........');
    f.blobDigest = await pushBlob(f.base, R, f.blob);
    f.etags = {
      blob: String((await request(`${f.base}/v2/${R}/blobs/${f.blobDigest}`, { method: 'HEAD' })).headers.etag ?? '"none"'),
      manifest: String((await request(`${f.base}/v2/${R}/manifests/v1`, { method: 'HEAD', headers: { accept: MT.ociManifest } })).headers.etag ?? '"none"'),
    };
  });
  after(async () => { await reg.close(); await rm(parent, { recursive: true, force: true }); });

  describe('spec endpoints', () => {
    for (const row of endpointRows) it(row.desc, () => runRow(row, f));
  });

  describe('hostile input', () => {
    for (const row of hostileRows) it(row.desc, () => runRow(row, f));

    it('nothing was written outside the storage root, and nothing hostile inside it', async () => {
      assert.deepEqual(await readdir(parent), ['root'], 'files appeared beside the storage root');
      const tree = await listTree(join(parent, 'root'));
      const outside = tree.filter((p) => !(p === 'docker' || p === 'docker/registry' || p === 'docker/registry/v2' || p.startsWith('docker/registry/v2/')));
      assert.deepEqual(outside, [], 'paths outside docker/registry/v2');
      const v2 = tree.filter((p) => p.startsWith('docker/registry/v2/')).map((p) => p.slice('docker/registry/v2/'.length));
      assert.deepEqual(v2.filter((p) => !/^(blobs|repositories|_berth)(\/|$)/.test(p)), [], 'unexpected top-level entries under v2');
      const repoDirs = v2.filter((p) => p.startsWith('repositories/')).map((p) => p.split('/').slice(1));
      for (const parts of repoDirs) {
        for (const c of parts) assert.match(c, /^[A-Za-z0-9._-]+$/, `odd path component ${JSON.stringify(c)} in ${parts.join('/')}`);
        assert.ok(!parts.includes('escape') && !parts.some((c) => /^\.+$/.test(c)), `hostile repository written: ${parts.join('/')}`);
        assert.ok(!parts.some((c) => /[A-Z]/.test(c) && !parts.includes('_manifests')), `uppercase repository: ${parts.join('/')}`);
      }
      const repos = new Set(repoDirs.map((p) => p.findIndex((c) => c.startsWith('_'))).map((i, k) => (i > 0 ? repoDirs[k].slice(0, i).join('/') : '')).filter(Boolean));
      assert.ok([...repos].every((r) => /^t\//.test(r)), `unexpected repositories: ${[...repos].join(', ')}`);
    });
  });
});
