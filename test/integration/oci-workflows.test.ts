// The OCI distribution-spec (v1.1) "Workflow categories" — Pull, Push, Content Discovery, Content
// Management — written from the spec text against the embedded registry, in the manner of the OCI
// conformance suite. Where the spec leaves a choice (MAY/SHOULD, "400 or 405"), the assertion accepts
// every allowed answer and a comment says so; berth-specific (Distribution-compatible) extras are marked.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import {
  MT, descriptor, expectApiVersion, expectOciError, locationPath, makeImageManifest, makeIndex, manifestBytes,
  parseNextLink, pushBlob, pushImage, pushManifest, putManifest, randomBlob, sha256, startUpload, withQuery,
  type PushedImage,
} from '../support/oci-client.js';
import { request } from '../support/http.js';
import { s3Skip } from '../support/s3.js';

const UNKNOWN_DIGEST = sha256('this blob was never pushed');

// Every workflow runs once per storage driver (Distribution's pattern: one suite, every implementation).
// s3 runs on the Ceph RGW of test/support/s3.ts (skipped outside CI when it cannot start; never under CI=true).
const s3skip = await s3Skip();
for (const driver of ['filesystem', 'inmemory', 's3'] as const) {
  if (driver === 's3' && s3skip) { describe('[s3] OCI workflows', { skip: s3skip }, () => {}); continue; }
  const start = (o: Parameters<typeof startRegistry>[0] = {}) => startRegistry({ driver, ...o });

  describe(`[${driver}] pull (spec: "Pulling manifests", "Pulling blobs")`, () => {
    let reg: TestRegistry; let base: string; let img: PushedImage;
    before(async () => {
      reg = await start(); base = reg.url;
      img = await pushImage(base, 'wf/pull', 'v1');
    });
    after(() => reg.close());

    it('end-1 GET /v2/ → 200 with Docker-Distribution-Api-Version', async () => {
      const res = await request(`${base}/v2/`);
      assert.equal(res.status, 200);
      expectApiVersion(res);
    });

    for (const by of ['tag', 'digest'] as const) {
      it(`end-3 GET manifest by ${by} → 200, body, Content-Type = mediaType, Docker-Content-Digest`, async () => {
        const ref = by === 'tag' ? 'v1' : img.digest;
        const res = await request(`${base}/v2/wf/pull/manifests/${ref}`, { headers: { accept: `${MT.ociManifest}, ${MT.ociIndex}` } });
        assert.equal(res.status, 200, res.text());
        expectApiVersion(res);
        assert.deepEqual(res.body, img.bytes, 'manifest bytes must be returned byte for byte');
        assert.equal(res.headers['content-type'], MT.ociManifest);
        assert.equal(res.headers['docker-content-digest'], img.digest);
        assert.equal(res.headers['content-length'], String(img.bytes.length));
      });

      it(`end-3 HEAD manifest by ${by} → 200, Content-Length, no body`, async () => {
        const ref = by === 'tag' ? 'v1' : img.digest;
        const res = await request(`${base}/v2/wf/pull/manifests/${ref}`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
        assert.equal(res.status, 200);
        expectApiVersion(res);
        assert.equal(res.body.length, 0);
        assert.equal(res.headers['content-length'], String(img.bytes.length));
        assert.equal(res.headers['docker-content-digest'], img.digest);
        assert.equal(res.headers['content-type'], MT.ociManifest);
      });
    }

    it('end-2 GET blob → 200 with the bytes; HEAD → 200 with Content-Length and no body', async () => {
      const get = await request(`${base}/v2/wf/pull/blobs/${img.layer.digest}`);
      assert.equal(get.status, 200);
      assert.deepEqual(get.body, img.layerBytes);
      assert.equal(get.headers['content-length'], String(img.layerBytes.length));
      // Docker-Content-Digest on blobs: Docker Registry API v2 (Distribution), kept by berth.
      assert.equal(get.headers['docker-content-digest'], img.layer.digest);
      const head = await request(`${base}/v2/wf/pull/blobs/${img.layer.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      expectApiVersion(head);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers['content-length'], String(img.layerBytes.length));
      assert.equal(head.headers['docker-content-digest'], img.layer.digest);
    });

    // Spec: "A registry SHOULD support the Range request header in accordance with RFC 9110".
    const size = 512;
    for (const [range, start, end] of [['bytes=0-9', 0, 9], ['bytes=500-', 500, 511], ['bytes=-5', 507, 511], ['bytes=10-10000', 10, 511]] as const) {
      it(`end-2 GET blob with Range: ${range} → 206 Content-Range bytes ${start}-${end}/${size}`, async () => {
        const res = await request(`${base}/v2/wf/pull/blobs/${img.layer.digest}`, { headers: { range } });
        assert.equal(res.status, 206, res.text());
        assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${size}`);
        assert.equal(res.headers['content-length'], String(end - start + 1));
        assert.deepEqual(res.body, img.layerBytes.subarray(start, end + 1));
      });
    }

    it('end-2 GET blob with an unsatisfiable Range → 416 with Content-Range: bytes */size (RFC 9110 §15.5.17 SHOULD)', async () => {
      const res = await request(`${base}/v2/wf/pull/blobs/${img.layer.digest}`, { headers: { range: 'bytes=512-' } });
      assert.equal(res.status, 416);
      expectApiVersion(res);
      assert.equal(res.headers['content-range'], `bytes */${size}`);
    });

    it('unknown manifest (tag and digest) → 404 MANIFEST_UNKNOWN; HEAD → 404 without body', async () => {
      expectOciError(await request(`${base}/v2/wf/pull/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await request(`${base}/v2/wf/pull/manifests/${UNKNOWN_DIGEST}`), 404, 'MANIFEST_UNKNOWN');
      const head = await request(`${base}/v2/wf/pull/manifests/nope`, { method: 'HEAD' });
      assert.equal(head.status, 404);
      assert.equal(head.body.length, 0);
      expectApiVersion(head);
    });

    it('a reference that is neither a tag nor a digest (conformance: .INVALID_MANIFEST_NAME) → 404 MANIFEST_UNKNOWN; HEAD → 404', async () => {
      expectOciError(await request(`${base}/v2/wf/pull/manifests/.INVALID_MANIFEST_NAME`), 404, 'MANIFEST_UNKNOWN');
      const head = await request(`${base}/v2/wf/pull/manifests/.INVALID_MANIFEST_NAME`, { method: 'HEAD' });
      assert.equal(head.status, 404);
      assert.equal(head.body.length, 0);
    });

    it('unknown blob → 404 BLOB_UNKNOWN; a blob of another repository is not visible (repo scoping)', async () => {
      expectOciError(await request(`${base}/v2/wf/pull/blobs/${UNKNOWN_DIGEST}`), 404, 'BLOB_UNKNOWN');
      const head = await request(`${base}/v2/wf/pull/blobs/${UNKNOWN_DIGEST}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
      assert.equal(head.body.length, 0);
      await pushBlob(base, 'wf/other', 'private to wf/other');
      expectOciError(await request(`${base}/v2/wf/pull/blobs/${sha256('private to wf/other')}`), 404, 'BLOB_UNKNOWN');
    });

    it('unknown repository → 404 (NAME_UNKNOWN or MANIFEST_UNKNOWN/BLOB_UNKNOWN: the spec only fixes the status)', async () => {
      expectOciError(await request(`${base}/v2/wf/nothere/manifests/v1`), 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN']);
      expectOciError(await request(`${base}/v2/wf/nothere/blobs/${img.layer.digest}`), 404, ['NAME_UNKNOWN', 'BLOB_UNKNOWN']);
    });
  });

  describe(`[${driver}] push (spec: "Pushing blobs", "Pushing manifests")`, () => {
    let reg: TestRegistry; let base: string;
    before(async () => { reg = await start(); base = reg.url; });
    after(() => reg.close());

    it('end-4a + end-6 monolithic POST then PUT → 202 Location, then 201 Location of the blob', async () => {
      const bytes = randomBlob(1000); const digest = sha256(bytes);
      const post = await request(`${base}/v2/wf/push/blobs/uploads/`, { method: 'POST' });
      assert.equal(post.status, 202, post.text());
      expectApiVersion(post);
      const loc = locationPath(base, post);
      assert.match(loc, /^\/v2\/wf\/push\/blobs\/uploads\/[^/?]+/);
      // Docker-Upload-UUID: Docker Registry API v2 (not OCI); berth keeps it for Distribution clients.
      assert.ok(post.headers['docker-upload-uuid'], 'Docker-Upload-UUID missing');
      const put = await request(`${base}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
      assert.equal(put.status, 201, put.text());
      expectApiVersion(put);
      assert.equal(locationPath(base, put), `/v2/wf/push/blobs/${digest}`);
      assert.equal(put.headers['docker-content-digest'], digest);
      const get = await request(`${base}/v2/wf/push/blobs/${digest}`);
      assert.deepEqual(get.body, bytes);
    });

    it('end-4b POST ?digest= single-request monolithic upload → 201 (or 202 if unsupported: spec MAY)', async () => {
      const bytes = randomBlob(777); const digest = sha256(bytes);
      const post = await request(`${base}/v2/wf/push/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' }, body: bytes,
      });
      assert.ok(post.status === 201 || post.status === 202, `${post.status} ${post.text()}`);
      expectApiVersion(post);
      if (post.status === 201) {
        assert.equal(locationPath(base, post), `/v2/wf/push/blobs/${digest}`);
      } else {
        const put = await request(`${base}${withQuery(locationPath(base, post), { digest })}`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
        assert.equal(put.status, 201);
      }
      assert.deepEqual((await request(`${base}/v2/wf/push/blobs/${digest}`)).body, bytes);
    });

    it('end-5 chunked PATCH with Content-Range, out-of-order → 416, end-13 status, end-6 final chunk in PUT', async () => {
      const bytes = randomBlob(3000); const digest = sha256(bytes);
      const [c1, c2, c3] = [bytes.subarray(0, 1000), bytes.subarray(1000, 2000), bytes.subarray(2000)];
      let loc = await startUpload(base, 'wf/chunked');
      const p1 = await request(`${base}${loc}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': '0-999' }, body: c1,
      });
      assert.equal(p1.status, 202, p1.text());
      expectApiVersion(p1);
      assert.equal(p1.headers.range, '0-999');
      assert.ok(p1.headers['docker-upload-uuid']);
      loc = locationPath(base, p1);

      // "If a chunk is uploaded out of order, the registry MUST respond with a 416". The code and the Range
      // header (current offset, so the client can resync) are berth's contract; the spec fixes only 416.
      const ooo = await request(`${base}${loc}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': '1500-2499' }, body: bytes.subarray(1500, 2500),
      });
      expectOciError(ooo, 416, 'BLOB_UPLOAD_INVALID', 'out-of-order PATCH');
      assert.equal(ooo.headers.range, '0-999');

      const status = await request(`${base}${loc}`);
      assert.equal(status.status, 204);
      expectApiVersion(status);
      assert.equal(status.headers.range, '0-999');
      assert.equal(status.body.length, 0);
      loc = locationPath(base, status);

      const p2 = await request(`${base}${loc}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': '1000-1999' }, body: c2,
      });
      assert.equal(p2.status, 202, p2.text());
      assert.equal(p2.headers.range, '0-1999');
      loc = locationPath(base, p2);

      const put = await request(`${base}${withQuery(loc, { digest })}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-range': '2000-2999' }, body: c3,
      });
      assert.equal(put.status, 201, put.text());
      assert.equal(locationPath(base, put), `/v2/wf/chunked/blobs/${digest}`);
      assert.equal(put.headers['docker-content-digest'], digest);
      assert.deepEqual((await request(`${base}/v2/wf/chunked/blobs/${digest}`)).body, bytes);
      // The session is gone after commit.
      expectOciError(await request(`${base}${loc}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('end-5 streamed PATCH (no Content-Range, no Content-Length) → 202 Range, then PUT ?digest= → 201', async () => {
      const parts = [randomBlob(70_000), randomBlob(1), randomBlob(33_333)];
      const all = Buffer.concat(parts); const digest = sha256(all);
      let loc = await startUpload(base, 'wf/streamed');
      const patch = await request(`${base}${loc}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: Readable.from(parts) });
      assert.equal(patch.status, 202, patch.text());
      assert.equal(patch.headers.range, `0-${all.length - 1}`);
      loc = locationPath(base, patch);
      const put = await request(`${base}${withQuery(loc, { digest })}`, { method: 'PUT' });
      assert.equal(put.status, 201, put.text());
      assert.deepEqual((await request(`${base}/v2/wf/streamed/blobs/${digest}`)).body, all);
    });

    it('DELETE upload session → 204, then the session is unknown (Docker Registry API v2 "cancel")', async () => {
      const loc = await startUpload(base, 'wf/cancel');
      const del = await request(`${base}${loc}`, { method: 'DELETE' });
      assert.equal(del.status, 204);
      expectApiVersion(del);
      expectOciError(await request(`${base}${loc}`), 404, 'BLOB_UPLOAD_UNKNOWN');
      expectOciError(await request(`${base}${loc}`, { method: 'PATCH', body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('end-11 cross-repository mount: from= holding the blob → 201; blob missing in from → 202 upload session', async () => {
      const bytes = randomBlob(100);
      const digest = await pushBlob(base, 'wf/mount-src', bytes);
      const ok = await request(`${base}/v2/wf/mount-dst/blobs/uploads/?mount=${digest}&from=wf/mount-src`, { method: 'POST' });
      assert.equal(ok.status, 201, ok.text());
      expectApiVersion(ok);
      assert.equal(locationPath(base, ok), `/v2/wf/mount-dst/blobs/${digest}`);
      assert.equal(ok.headers['docker-content-digest'], digest);
      assert.deepEqual((await request(`${base}/v2/wf/mount-dst/blobs/${digest}`)).body, bytes);

      // "If the registry ... is unable to mount the requested blob, it SHOULD return a 202" (an upload session).
      const miss = await request(`${base}/v2/wf/mount-dst2/blobs/uploads/?mount=${UNKNOWN_DIGEST}&from=wf/mount-src`, { method: 'POST' });
      assert.equal(miss.status, 202, miss.text());
      assert.match(locationPath(base, miss), /^\/v2\/wf\/mount-dst2\/blobs\/uploads\/[^/?]+/);
      const fromUnknownRepo = await request(`${base}/v2/wf/mount-dst2/blobs/uploads/?mount=${digest}&from=wf/no-such-repo`, { method: 'POST' });
      assert.equal(fromUnknownRepo.status, 202, fromUnknownRepo.text());
    });

    it('end-11 mount without from= → 202 (or 201: "the registry MAY attempt to mount from any repository")', async () => {
      const digest = await pushBlob(base, 'wf/mount-src', randomBlob(50));
      const res = await request(`${base}/v2/wf/mount-nofrom/blobs/uploads/?mount=${digest}`, { method: 'POST' });
      assert.ok(res.status === 202 || res.status === 201, `${res.status} ${res.text()}`);
      if (res.status === 202) assert.match(locationPath(base, res), /^\/v2\/wf\/mount-nofrom\/blobs\/uploads\//);
      else assert.equal(locationPath(base, res), `/v2/wf/mount-nofrom/blobs/${digest}`);
    });

    it('end-7 PUT manifest by tag → 201 with Location and Docker-Content-Digest; readable by tag and digest', async () => {
      const img = await pushImage(base, 'wf/manifest', 'sometag');
      const { res } = await putManifest(base, 'wf/manifest', 'other', img.bytes);
      assert.equal(res.status, 201, res.text());
      expectApiVersion(res);
      assert.equal(res.headers['docker-content-digest'], img.digest);
      assert.match(locationPath(base, res), new RegExp(`^/v2/wf/manifest/manifests/(other|${img.digest})$`));
      for (const ref of ['sometag', 'other', img.digest]) {
        const get = await request(`${base}/v2/wf/manifest/manifests/${ref}`, { headers: { accept: MT.ociManifest } });
        assert.equal(get.status, 200);
        assert.deepEqual(get.body, img.bytes);
      }
    });

    it('end-7 PUT an image index (referenced manifests present) → 201; Docker schema2 manifest → 201', async () => {
      const a = await pushImage(base, 'wf/index');
      const b = await pushImage(base, 'wf/index');
      const idx = makeIndex([descriptor(MT.ociManifest, a.bytes), descriptor(MT.ociManifest, b.bytes)]);
      const d = await pushManifest(base, 'wf/index', 'multi', idx, MT.ociIndex);
      const get = await request(`${base}/v2/wf/index/manifests/multi`, { headers: { accept: MT.ociIndex } });
      assert.equal(get.headers['content-type'], MT.ociIndex);
      assert.equal(get.headers['docker-content-digest'], d);

      const cfg = Buffer.from('{"architecture":"arm64","os":"linux"}'); const layer = randomBlob(64);
      await pushBlob(base, 'wf/index', cfg); await pushBlob(base, 'wf/index', layer);
      const docker = makeImageManifest({ mediaType: MT.dockerManifest, config: descriptor(MT.dockerConfig, cfg), layers: [descriptor(MT.dockerLayer, layer)] });
      await pushManifest(base, 'wf/index', 'docker', docker, MT.dockerManifest);
      const dget = await request(`${base}/v2/wf/index/manifests/docker`, { headers: { accept: MT.dockerManifest } });
      assert.equal(dget.headers['content-type'], MT.dockerManifest);
    });

    it('end-7 failures: invalid JSON / schema → MANIFEST_INVALID, missing blob → MANIFEST_BLOB_UNKNOWN, digest ref mismatch → DIGEST_INVALID, bad tag → TAG_INVALID, >4 MiB → 413', async () => {
      const img = await pushImage(base, 'wf/bad', 'ok');
      expectOciError((await putManifest(base, 'wf/bad', 't', '{not json')).res, 400, 'MANIFEST_INVALID', 'invalid JSON');
      expectOciError((await putManifest(base, 'wf/bad', 't', { ...img.manifest, schemaVersion: 1 })).res, 400, 'MANIFEST_INVALID', 'schemaVersion 1');
      expectOciError((await putManifest(base, 'wf/bad', 't', { ...img.manifest, config: undefined })).res, 400, 'MANIFEST_INVALID', 'no config');
      // mediaType in the body differs from Content-Type.
      expectOciError((await putManifest(base, 'wf/bad', 't', img.bytes, MT.dockerManifest)).res, 400, 'MANIFEST_INVALID', 'Content-Type mismatch');
      // "Registries MAY reject a manifest ... if it references manifests or blobs that do not exist": berth does
      // (as Distribution), with MANIFEST_BLOB_UNKNOWN.
      const missingLayer = makeImageManifest({ config: img.config, layers: [{ mediaType: MT.ociLayer, digest: UNKNOWN_DIGEST, size: 10 }] });
      expectOciError((await putManifest(base, 'wf/bad', 't', missingLayer)).res, 400, 'MANIFEST_BLOB_UNKNOWN', 'missing layer');
      const missingChild = makeIndex([{ mediaType: MT.ociManifest, digest: UNKNOWN_DIGEST, size: 10 }]);
      expectOciError((await putManifest(base, 'wf/bad', 't', missingChild, MT.ociIndex)).res, 400, 'MANIFEST_BLOB_UNKNOWN', 'missing index child');
      // PUT by digest whose body hashes differently.
      expectOciError((await putManifest(base, 'wf/bad', UNKNOWN_DIGEST, img.bytes)).res, 400, 'DIGEST_INVALID', 'digest ref mismatch');
      expectOciError((await putManifest(base, 'wf/bad', 'x'.repeat(129), img.bytes)).res, 400, 'TAG_INVALID', 'tag > 128 chars');
      expectOciError((await putManifest(base, 'wf/bad', '-leadingdash', img.bytes)).res, 400, 'TAG_INVALID', 'tag with leading dash');
      // Spec: a registry MAY limit manifest size and then answers 413. berth's cap is 4 MiB.
      const huge = { ...img.manifest, annotations: { pad: 'x'.repeat(4 * 1024 * 1024 + 1) } };
      const big = await putManifest(base, 'wf/bad', 'huge', huge);
      expectOciError(big.res, 413, ['MANIFEST_INVALID', 'SIZE_INVALID'], 'manifest > 4 MiB');
      for (const t of ['t', 'huge']) expectOciError(await request(`${base}/v2/wf/bad/manifests/${t}`), 404, 'MANIFEST_UNKNOWN', `tag ${t} after failures`);
    });

    it('end-7 manifest with subject → 201 and OCI-Subject; a subject that does not exist is accepted (MUST)', async () => {
      const subj = await pushImage(base, 'wf/subject', 'base');
      const art = await pushImage(base, 'wf/subject', undefined, { subject: descriptor(MT.ociManifest, subj.bytes), artifactType: 'application/vnd.example.sbom' });
      const again = await putManifest(base, 'wf/subject', art.digest, art.bytes);
      assert.equal(again.res.status, 201);
      assert.equal(again.res.headers['oci-subject'], subj.digest);
      // "The registry MUST accept an otherwise valid manifest with a subject field that references a manifest that does not exist"
      const dangling = makeImageManifest({ config: art.config, layers: [art.layer], subject: { mediaType: MT.ociManifest, digest: UNKNOWN_DIGEST, size: 123 } });
      const d = await putManifest(base, 'wf/subject', 'dangling', dangling);
      assert.equal(d.res.status, 201, d.res.text());
      assert.equal(d.res.headers['oci-subject'], UNKNOWN_DIGEST);
    });

    it('end-7 PUT by digest with ?tag=a&tag=b → 201, OCI-Tag lists both, both tags resolve', async () => {
      const img = await pushImage(base, 'wf/multitag');
      const res = await request(`${base}/v2/wf/multitag/manifests/${img.digest}?tag=alpha&tag=beta`, {
        method: 'PUT',
        headers: { 'content-type': MT.ociManifest }, body: img.bytes,
      });
      assert.equal(res.status, 201, res.text());
      const tags = String(res.headers['oci-tag'] ?? '').split(/,\s*/).filter(Boolean).sort();
      assert.deepEqual(tags, ['alpha', 'beta']);
      for (const t of ['alpha', 'beta']) {
        const get = await request(`${base}/v2/wf/multitag/manifests/${t}`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
        assert.equal(get.status, 200);
        assert.equal(get.headers['docker-content-digest'], img.digest);
      }
      const bad = await request(`${base}/v2/wf/multitag/manifests/${img.digest}?tag=ok&tag=${'-bad'}`, {
        method: 'PUT',
        headers: { 'content-type': MT.ociManifest }, body: img.bytes,
      });
      expectOciError(bad, 400, 'TAG_INVALID', '?tag= invalid');
    });
  });

  describe(`[${driver}] content discovery (spec: "Listing Tags", "Listing Referrers", catalog)`, () => {
    let reg: TestRegistry; let base: string;
    before(async () => { reg = await start(); base = reg.url; });
    after(() => reg.close());

    it('end-8a/8b tags/list: lexical order, n/last, Link rel="next"', async () => {
      const img = await pushImage(base, 'wf/tags');
      // Spec: "the tags MUST be in lexical order (i.e. case-insensitive alphanumeric order)". Byte order and
      // case-insensitive order disagree on mixed case, so the tags here are lowercase: both readings agree.
      for (const t of ['c', 'a1', 'd', 'b', 'a']) await pushManifest(base, 'wf/tags', t, img.bytes);
      const all = await request(`${base}/v2/wf/tags/tags/list`);
      assert.equal(all.status, 200);
      expectApiVersion(all);
      assert.match(String(all.headers['content-type']), /^application\/json/);
      assert.deepEqual(all.json(), { name: 'wf/tags', tags: ['a', 'a1', 'b', 'c', 'd'] });
      assert.equal(all.headers.link, undefined);

      const p1 = await request(`${base}/v2/wf/tags/tags/list?n=2`);
      assert.deepEqual(p1.json(), { name: 'wf/tags', tags: ['a', 'a1'] });
      const next = parseNextLink(p1);
      assert.ok(next, 'Link rel="next" expected when more tags exist');
      assert.equal(next.path, '/v2/wf/tags/tags/list');
      assert.equal(next.params.get('n'), '2');
      assert.equal(next.params.get('last'), 'a1');
      const p2 = await request(`${base}${next.path}?${next.params}`);
      assert.deepEqual(p2.json().tags, ['b', 'c']);
      const p3 = await request(`${base}/v2/wf/tags/tags/list?n=2&last=c`);
      assert.deepEqual(p3.json().tags, ['d']);
      assert.equal(p3.headers.link, undefined, 'no Link on the last page');
      const afterLast = await request(`${base}/v2/wf/tags/tags/list?last=b`);
      assert.deepEqual(afterLast.json().tags, ['c', 'd']);
    });

    it('end-8a tags/list of an unknown repository → 404 NAME_UNKNOWN', async () => {
      expectOciError(await request(`${base}/v2/wf/never/tags/list`), 404, 'NAME_UNKNOWN');
    });

    it('end-12a/12b referrers: descriptors with artifactType/annotations, artifactType filter, OCI-Filters-Applied', async () => {
      const subject = await pushImage(base, 'wf/ref', 'subject');
      const sd = descriptor(MT.ociManifest, subject.bytes);
      const sbom = await pushImage(base, 'wf/ref', undefined, { subject: sd, artifactType: 'application/vnd.example.sbom', annotations: { 'org.example.k': 'v' } });
      const sig = await pushImage(base, 'wf/ref', undefined, { subject: sd, artifactType: 'application/vnd.example.sig' });
      // No artifactType: the descriptor's artifactType is the config mediaType (spec, "Listing Referrers").
      const cfgTyped = await pushImage(base, 'wf/ref', undefined, { subject: sd, configMediaType: 'application/vnd.example.cfg' });
      const idx = makeIndex([descriptor(MT.ociManifest, sig.bytes)], { artifactType: 'application/vnd.example.idx', subject: sd });
      const idxDigest = await pushManifest(base, 'wf/ref', sha256(manifestBytes(idx)), idx, MT.ociIndex);
      await pushImage(base, 'wf/ref', 'unrelated');

      const res = await request(`${base}/v2/wf/ref/referrers/${subject.digest}`);
      assert.equal(res.status, 200, res.text());
      expectApiVersion(res);
      assert.equal(res.headers['content-type'], MT.ociIndex);
      const body = res.json();
      assert.equal(body.schemaVersion, 2);
      assert.equal(body.mediaType, MT.ociIndex);
      const byDigest = new Map<string, any>(body.manifests.map((m: any) => [m.digest, m]));
      assert.deepEqual([...byDigest.keys()].sort(), [sbom.digest, sig.digest, cfgTyped.digest, idxDigest].sort());
      assert.deepEqual(byDigest.get(sbom.digest), {
        mediaType: MT.ociManifest, digest: sbom.digest, size: sbom.bytes.length,
        artifactType: 'application/vnd.example.sbom', annotations: { 'org.example.k': 'v' },
      });
      assert.equal(byDigest.get(sig.digest).artifactType, 'application/vnd.example.sig');
      assert.equal(byDigest.get(cfgTyped.digest).artifactType, 'application/vnd.example.cfg');
      assert.equal(byDigest.get(idxDigest).mediaType, MT.ociIndex);
      assert.equal(byDigest.get(idxDigest).artifactType, 'application/vnd.example.idx');

      const filtered = await request(`${base}/v2/wf/ref/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
      assert.equal(filtered.status, 200);
      assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
      assert.deepEqual(filtered.json().manifests.map((m: any) => m.digest), [sbom.digest]);
      const none = await request(`${base}/v2/wf/ref/referrers/${subject.digest}?artifactType=application%2Fvnd.example.none`);
      assert.deepEqual(none.json().manifests, []);
      assert.equal(none.headers['oci-filters-applied'], 'artifactType');
    });

    it('end-12a referrers are scoped to the repository', async () => {
      const subject = await pushImage(base, 'wf/refa', 'subject');
      const cfg = Buffer.from('{}'); await pushBlob(base, 'wf/refb', cfg);
      const art = makeImageManifest({ config: descriptor(MT.ociEmpty, cfg), layers: [descriptor(MT.ociEmpty, cfg)],
        subject: descriptor(MT.ociManifest, subject.bytes), artifactType: 'application/vnd.example.b' });
      await pushManifest(base, 'wf/refb', sha256(manifestBytes(art)), art);
      assert.deepEqual((await request(`${base}/v2/wf/refa/referrers/${subject.digest}`)).json().manifests, []);
      assert.equal((await request(`${base}/v2/wf/refb/referrers/${subject.digest}`)).json().manifests.length, 1);
    });

    it('end-12a referrers of an unknown subject or repository → 200 empty index (MUST NOT 404); bad digest → 400', async () => {
      for (const path of [`/v2/wf/ref2/referrers/${UNKNOWN_DIGEST}`, `/v2/wf/no-such-repo/referrers/${UNKNOWN_DIGEST}`]) {
        const res = await request(`${base}${path}`);
        assert.equal(res.status, 200, `${path}: ${res.text()}`);
        assert.equal(res.headers['content-type'], MT.ociIndex);
        const body = res.json();
        assert.equal(body.schemaVersion, 2);
        assert.equal(body.mediaType, MT.ociIndex);
        assert.deepEqual(body.manifests, []);
      }
      const bad = await request(`${base}/v2/wf/ref2/referrers/sha256:xyz`);
      assert.equal(bad.status, 400);
      expectOciError(bad, 400, 'DIGEST_INVALID');
    });

    it('_catalog: lexical order, n/last paging with Link, n>1000 → 400 PAGINATION_NUMBER_INVALID, n=0 → empty', async () => {
      const cat = await start();
      try {
        const names = ['zeta', 'alpha/one', 'alpha/two', 'mid-dle', 'alpha'];
        for (const n of names) await pushImage(cat.url, n, 'latest');
        const all = await request(`${cat.url}/v2/_catalog`);
        assert.equal(all.status, 200);
        expectApiVersion(all);
        assert.deepEqual(all.json(), { repositories: [...names].sort() });
        const p1 = await request(`${cat.url}/v2/_catalog?n=2`);
        assert.deepEqual(p1.json().repositories, ['alpha', 'alpha/one']);
        const next = parseNextLink(p1);
        assert.ok(next);
        assert.equal(next.path, '/v2/_catalog');
        assert.equal(next.params.get('n'), '2');
        assert.equal(next.params.get('last'), 'alpha/one');
        const p2 = await request(`${cat.url}${next.path}?${next.params}`);
        assert.deepEqual(p2.json().repositories, ['alpha/two', 'mid-dle']);
        const p3 = await request(`${cat.url}/v2/_catalog?n=2&last=mid-dle`);
        assert.deepEqual(p3.json().repositories, ['zeta']);
        assert.equal(p3.headers.link, undefined);
        expectOciError(await request(`${cat.url}/v2/_catalog?n=1001`), 400, 'PAGINATION_NUMBER_INVALID');
        const zero = await request(`${cat.url}/v2/_catalog?n=0`);
        assert.equal(zero.status, 200);
        assert.deepEqual(zero.json(), { repositories: [] });
      } finally { await cat.close(); }
    });
  });

  describe(`[${driver}] content management (spec: "Deleting tags", "Deleting manifests", "Deleting blobs")`, () => {
    let reg: TestRegistry; let base: string;
    before(async () => { reg = await start({ deleteEnabled: true }); base = reg.url; });
    after(() => reg.close());

    it('end-9 DELETE manifest by digest → 202; then the digest and its tags are 404 MANIFEST_UNKNOWN', async () => {
      const img = await pushImage(base, 'wf/del', 'gone');
      const del = await request(`${base}/v2/wf/del/manifests/${img.digest}`, { method: 'DELETE' });
      assert.equal(del.status, 202, del.text());
      expectApiVersion(del);
      expectOciError(await request(`${base}/v2/wf/del/manifests/${img.digest}`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await request(`${base}/v2/wf/del/manifests/gone`), 404, 'MANIFEST_UNKNOWN');
      expectOciError(await request(`${base}/v2/wf/del/manifests/${img.digest}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
    });

    it('end-9 DELETE manifest by tag → 202; the tag is gone, the manifest stays readable by digest', async () => {
      const img = await pushImage(base, 'wf/deltag', 'doomed');
      await pushManifest(base, 'wf/deltag', 'keep', img.bytes);
      const del = await request(`${base}/v2/wf/deltag/manifests/doomed`, { method: 'DELETE' });
      assert.equal(del.status, 202, del.text());
      expectOciError(await request(`${base}/v2/wf/deltag/manifests/doomed`), 404, 'MANIFEST_UNKNOWN');
      assert.equal((await request(`${base}/v2/wf/deltag/manifests/${img.digest}`, { headers: { accept: MT.ociManifest } })).status, 200);
      assert.deepEqual((await request(`${base}/v2/wf/deltag/tags/list`)).json().tags, ['keep']);
      expectOciError(await request(`${base}/v2/wf/deltag/manifests/doomed`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
    });

    it('end-9 deleting a referrer removes it from the referrers list', async () => {
      const subj = await pushImage(base, 'wf/delref', 's');
      const art = await pushImage(base, 'wf/delref', undefined, { subject: descriptor(MT.ociManifest, subj.bytes), artifactType: 'application/vnd.example.x' });
      assert.equal((await request(`${base}/v2/wf/delref/referrers/${subj.digest}`)).json().manifests.length, 1);
      assert.equal((await request(`${base}/v2/wf/delref/manifests/${art.digest}`, { method: 'DELETE' })).status, 202);
      assert.deepEqual((await request(`${base}/v2/wf/delref/referrers/${subj.digest}`)).json().manifests, []);
    });

    it('end-10 DELETE blob → 202; then HEAD/GET 404 BLOB_UNKNOWN; deleting again → 404', async () => {
      const digest = await pushBlob(base, 'wf/delblob', randomBlob(10));
      const del = await request(`${base}/v2/wf/delblob/blobs/${digest}`, { method: 'DELETE' });
      assert.equal(del.status, 202, del.text());
      expectApiVersion(del);
      const head = await request(`${base}/v2/wf/delblob/blobs/${digest}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
      expectOciError(await request(`${base}/v2/wf/delblob/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
      expectOciError(await request(`${base}/v2/wf/delblob/blobs/${digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
    });

    it('deletes disabled → "400 Bad Request or 405 Method Not Allowed" (spec) with UNSUPPORTED; nothing deleted', async () => {
      const off = await start({ deleteEnabled: false });
      try {
        const img = await pushImage(off.url, 'wf/nodel', 'v');
        for (const path of [`/v2/wf/nodel/manifests/${img.digest}`, '/v2/wf/nodel/manifests/v', `/v2/wf/nodel/blobs/${img.layer.digest}`]) {
          expectOciError(await request(`${off.url}${path}`, { method: 'DELETE' }), [400, 405], 'UNSUPPORTED', `DELETE ${path}`);
        }
        assert.equal((await request(`${off.url}/v2/wf/nodel/manifests/v`, { method: 'HEAD', headers: { accept: MT.ociManifest } })).status, 200);
        assert.equal((await request(`${off.url}/v2/wf/nodel/blobs/${img.layer.digest}`, { method: 'HEAD' })).status, 200);
      } finally { await off.close(); }
    });

    // Readonly needs a second app over the same content, i.e. a filesystem root (registered, not skipped:
    // under CI=true no test may skip).
    if (driver === 'filesystem') it('readonly mode: reads work, every write → 405 UNSUPPORTED', async () => {
      const rw = await startRegistry({ driver: 'filesystem' });
      const img = await pushImage(rw.url, 'wf/ro', 'v');
      const loc = await startUpload(rw.url, 'wf/ro');
      const ro = await startRegistry({ root: rw.root, readonly: true });
      try {
        assert.equal((await request(`${ro.url}/v2/wf/ro/manifests/v`, { headers: { accept: MT.ociManifest } })).status, 200);
        assert.equal((await request(`${ro.url}/v2/wf/ro/blobs/${img.layer.digest}`)).status, 200);
        assert.deepEqual((await request(`${ro.url}/v2/wf/ro/tags/list`)).json().tags, ['v']);
        const writes: [string, string, Buffer | undefined][] = [
          ['POST', '/v2/wf/ro/blobs/uploads/', undefined],
          ['POST', `/v2/wf/ro2/blobs/uploads/?mount=${img.layer.digest}&from=wf/ro`, undefined],
          ['PATCH', loc, Buffer.from('abc')],
          ['PUT', withQuery(loc, { digest: sha256('') }), undefined],
          ['DELETE', loc, undefined],
          ['PUT', '/v2/wf/ro/manifests/other', img.bytes],
          ['DELETE', `/v2/wf/ro/manifests/${img.digest}`, undefined],
          ['DELETE', `/v2/wf/ro/blobs/${img.layer.digest}`, undefined],
        ];
        for (const [method, path, body] of writes) {
          expectOciError(await request(`${ro.url}${path}`, { method: method, body, headers: { 'content-type': MT.ociManifest } }), 405, 'UNSUPPORTED', `${method} ${path}`);
        }
        assert.equal((await request(`${ro.url}/v2/wf/ro/manifests/v`, { headers: { accept: MT.ociManifest } })).status, 200);
      } finally { await ro.close(); await rw.close(); }
    });
  });
}
