// Focused HTTP tests of the registry's own logic against a real server (filesystem driver in a temp
// dir; integration, not unit: it listens on a socket): upload state machine, resume after restart, concurrency, disconnects, manifests, referrers,
// deletes, read-only mode, pagination and hostile paths. The full protocol table lives elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type HttpResponse } from '../support/http.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { withDeadline } from '../support/wait.js';

const sha = (b: Buffer | string, alg: 'sha256' | 'sha512' = 'sha256') => `${alg}:${createHash(alg).update(b).digest('hex')}`;
const OCI_M = 'application/vnd.oci.image.manifest.v1+json';

/** The first OCI error code of a response, undefined when the body is not an error envelope. */
const code = (res: HttpResponse) => { try { return res.json()?.errors?.[0]?.code; } catch { return undefined; } };

async function pushBlob(r: TestRegistry, name: string, data: Buffer | string): Promise<string> {
  const d = sha(data);
  const res = await request(`${r.url}/v2/${name}/blobs/uploads/?digest=${d}`, { method: 'POST', body: data });
  assert.equal(res.status, 201);
  return d;
}

function imageManifest(cfg: string, layers: [string, number][], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_M,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: 2 },
    layers: layers.map(([digest, size]) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size })),
    ...extra,
  }));
}

async function withRegistry(t: { after(fn: () => Promise<void>): void }, o: Parameters<typeof startRegistry>[0] = {}) {
  const r = await startRegistry(o);
  t.after(() => r.close());
  return r;
}

test('chunked upload: out-of-order 416, length mismatch 400, status, PUT with final chunk', async (t) => {
  const r = await withRegistry(t);
  const start = await request(`${r.url}/v2/a/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
  assert.equal(start.status, 202);
  assert.equal(start.headers.range, '0-0');
  const loc = start.headers.location as string;
  assert.match(loc, /^\/v2\/a\/blobs\/uploads\/[0-9a-f-]{36}$/);
  assert.equal(start.headers['docker-upload-uuid'], loc.split('/').pop());

  let res = await request(`${r.url}${loc}`, { method: 'PATCH', body: 'abc', headers: { 'content-range': '0-2', 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 202);
  assert.equal(res.headers.range, '0-2');
  res = await request(`${r.url}${loc}`, { method: 'PATCH', body: 'def', headers: { 'content-range': '5-7' } });
  assert.equal(res.status, 416);
  assert.equal(code(res), 'BLOB_UPLOAD_INVALID');
  assert.equal(res.headers.range, '0-2');
  assert.equal(res.headers.location, loc);
  res = await request(`${r.url}${loc}`, { method: 'PATCH', body: 'def', headers: { 'content-range': '3-9' } });
  assert.equal(res.status, 400);
  assert.equal(code(res), 'SIZE_INVALID');
  res = await request(`${r.url}${loc}`, { method: 'PATCH', body: 'def' });                    // streamed, no Content-Range
  assert.equal(res.status, 202);
  assert.equal(res.headers.range, '0-5');
  res = await request(`${r.url}${loc}`);
  assert.equal(res.status, 204);
  assert.equal(res.headers.range, '0-5');
  const all = 'abcdefgh';
  res = await request(`${r.url}${loc}?digest=${sha(all)}`, { method: 'PUT', body: 'gh', headers: { 'content-range': '6-7' } });
  assert.equal(res.status, 201);
  assert.equal(res.headers['docker-content-digest'], sha(all));
  assert.equal(res.headers.location, `/v2/a/blobs/${sha(all)}`);
  res = await request(`${r.url}${loc}`);
  assert.equal(res.status, 404);
  assert.equal(code(res), 'BLOB_UPLOAD_UNKNOWN');
  res = await request(`${r.url}/v2/a/blobs/${sha(all)}`);
  assert.equal(res.body.toString(), all);
  // On Distribution's layout
  const hex = sha(all).slice(7);
  assert.equal(await readFile(join(r.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'), 'utf8'), all);
  assert.equal(await readFile(join(r.root, 'docker/registry/v2/repositories/a/_layers/sha256', hex, 'link'), 'utf8'), sha(all));
});

test('digest mismatch on PUT → 400 DIGEST_INVALID, nothing visible, session gone', async (t) => {
  const r = await withRegistry(t);
  const loc = (await request(`${r.url}/v2/a/blobs/uploads/`, { method: 'POST' })).headers.location as string;
  await request(`${r.url}${loc}`, { method: 'PATCH', body: 'xyz' });
  const wrong = sha('other');
  let res = await request(`${r.url}${loc}?digest=${wrong}`, { method: 'PUT' });
  assert.equal(res.status, 400);
  assert.equal(code(res), 'DIGEST_INVALID');
  assert.equal((await request(`${r.url}/v2/a/blobs/${wrong}`, { method: 'HEAD' })).status, 404);
  assert.equal((await request(`${r.url}/v2/a/blobs/${sha('xyz')}`, { method: 'HEAD' })).status, 404);
  assert.equal((await request(`${r.url}${loc}`)).status, 404);
  res = await request(`${r.url}/v2/a/blobs/uploads/?digest=sha256:zz`, { method: 'POST', body: 'x' });
  assert.equal(code(res), 'DIGEST_INVALID');
  res = await request(`${r.url}/v2/a/blobs/uploads/?digest=${sha('nope')}`, { method: 'POST', body: 'x' });
  assert.equal(res.status, 400);
  assert.equal(code(res), 'DIGEST_INVALID');
  const loc2 = (await request(`${r.url}/v2/a/blobs/uploads/`, { method: 'POST' })).headers.location as string;
  assert.equal(code(await request(`${r.url}${loc2}`, { method: 'PUT' })), 'DIGEST_INVALID');        // digest param required
});

test('DELETE upload → 204 then 404; unknown or hostile upload ids → 404', async (t) => {
  const r = await withRegistry(t);
  const loc = (await request(`${r.url}/v2/a/blobs/uploads/`, { method: 'POST' })).headers.location as string;
  assert.equal((await request(`${r.url}${loc}`, { method: 'DELETE' })).status, 204);
  assert.equal(code(await request(`${r.url}${loc}`, { method: 'DELETE' })), 'BLOB_UPLOAD_UNKNOWN');
  assert.equal(code(await request(`${r.url}${loc}`, { method: 'PATCH', body: 'x' })), 'BLOB_UPLOAD_UNKNOWN');
  for (const id of ['nope', '..', '.x', '%2e%2e']) {
    const res = await request(`${r.url}/v2/a/blobs/uploads/${id}`);
    assert.equal(res.status, 404, id);
  }
});

test('sha512 blobs, ranges, HEAD, ETag/304 and repository scoping', async (t) => {
  const r = await withRegistry(t);
  const data = Buffer.from('0123456789');
  const d512 = sha(data, 'sha512');
  assert.equal((await request(`${r.url}/v2/a/blobs/uploads/?digest=${d512}`, { method: 'POST', body: data })).status, 201);
  let res = await request(`${r.url}/v2/a/blobs/${d512}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers['docker-content-digest'], d512);
  assert.equal(res.headers['content-type'], 'application/octet-stream');
  assert.equal(res.headers['accept-ranges'], 'bytes');
  assert.equal(res.headers.etag, `"${d512}"`);
  res = await request(`${r.url}/v2/a/blobs/${d512}`, { method: 'HEAD' });
  assert.equal(res.headers['content-length'], '10');
  assert.equal(res.body.length, 0);
  res = await request(`${r.url}/v2/a/blobs/${d512}`, { headers: { range: 'bytes=-4' } });
  assert.equal(res.status, 206);
  assert.equal(res.body.toString(), '6789');
  assert.equal(res.headers['content-range'], 'bytes 6-9/10');
  res = await request(`${r.url}/v2/a/blobs/${d512}`, { headers: { range: 'bytes=3-' } });
  assert.equal(res.body.toString(), '3456789');
  res = await request(`${r.url}/v2/a/blobs/${d512}`, { headers: { range: 'bytes=10-' } });
  assert.equal(res.status, 416);
  assert.equal(res.headers['content-range'], 'bytes */10');
  res = await request(`${r.url}/v2/a/blobs/${d512}`, { headers: { range: 'bytes=0-1,4-5' } });
  assert.equal(res.status, 200);
  assert.equal(res.body.length, 10);
  res = await request(`${r.url}/v2/a/blobs/${d512}`, { headers: { 'if-none-match': `"${d512}"` } });
  assert.equal(res.status, 304);
  // Not linked into repository b → 404 even though the data exists
  res = await request(`${r.url}/v2/b/blobs/${d512}`);
  assert.equal(res.status, 404);
  assert.equal(code(res), 'BLOB_UNKNOWN');
  assert.equal(code(await request(`${r.url}/v2/a/blobs/sha256:abc`)), 'DIGEST_INVALID');
  // Large blob with a middle range streams correctly
  const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  big.write('MARK', 2 * 1024 * 1024);
  const bd = await pushBlob(r, 'a', big);
  res = await request(`${r.url}/v2/a/blobs/${bd}`, { headers: { range: `bytes=${2 * 1024 * 1024}-${2 * 1024 * 1024 + 3}` } });
  assert.equal(res.body.toString(), 'MARK');
  res = await request(`${r.url}/v2/a/blobs/${bd}`);
  assert.equal(sha(res.body), bd);
});

test('upload resumes after a restart: new process re-hashes the stored bytes', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-resume-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const r1 = await startRegistry({ root });
  const loc = (await request(`${r1.url}/v2/a/blobs/uploads/`, { method: 'POST' })).headers.location as string;
  assert.equal((await request(`${r1.url}${loc}`, { method: 'PATCH', body: 'first-', headers: { 'content-range': '0-5' } })).status, 202);
  await r1.close();
  const r2 = await startRegistry({ root });
  t.after(() => r2.close());
  assert.equal((await request(`${r2.url}${loc}`)).headers.range, '0-5');
  assert.equal((await request(`${r2.url}${loc}`, { method: 'PATCH', body: 'second', headers: { 'content-range': '6-11' } })).status, 202);
  const res = await request(`${r2.url}${loc}?digest=${sha('first-second')}`, { method: 'PUT' });
  assert.equal(res.status, 201);
  assert.equal((await request(`${r2.url}/v2/a/blobs/${sha('first-second')}`)).body.toString(), 'first-second');
});

test('concurrent PATCHes on one upload never interleave', async (t) => {
  const r = await withRegistry(t);
  const loc = (await request(`${r.url}/v2/a/blobs/uploads/`, { method: 'POST' })).headers.location as string;
  const parts = Array.from({ length: 6 }, (_, i) => Buffer.alloc(256 * 1024, 65 + i));
  const results = await Promise.all(parts.map((p) => request(`${r.url}${loc}`, { method: 'PATCH', body: p })));
  for (const res of results) assert.equal(res.status, 202);
  const status = await request(`${r.url}${loc}`);
  assert.equal(status.headers.range, `0-${6 * 256 * 1024 - 1}`);
  // Each part must appear as one contiguous run; find their order from the stored data.
  const data = await readFile(join(r.root, 'docker/registry/v2/repositories/a/_uploads', loc.split('/').pop()!, 'data'));
  const order: number[] = [];
  for (let off = 0; off < data.length; off += 256 * 1024) {
    const run = data.subarray(off, off + 256 * 1024);
    assert.ok(run.every((b) => b === run[0]), 'chunk interleaved');
    order.push(run[0]);
  }
  assert.equal(new Set(order).size, 6);
  const whole = Buffer.concat(order.map((c) => Buffer.alloc(256 * 1024, c)));
  assert.equal((await request(`${r.url}${loc}?digest=${sha(whole)}`, { method: 'PUT' })).status, 201);
});

test('client disconnect mid-PATCH keeps the session resumable', async (t) => {
  const r = await withRegistry(t);
  const loc = (await request(`${r.url}/v2/a/blobs/uploads/`, { method: 'POST' })).headers.location as string;
  const u = new URL(r.url);
  const first = Buffer.alloc(64 * 1024, 1);
  // A raw request: the client must vanish mid-body, which request() never does.
  await withDeadline(new Promise<void>((resolve) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method: 'PATCH', path: loc, headers: { 'content-length': String(1024 * 1024) } });
    req.on('error', () => resolve());
    req.write(first, () => setImmediate(() => { req.destroy(); }));
    req.on('close', () => resolve());
  }), 10_000, 'the PATCH to be cut off');
  // Whatever reached storage is the new size (status waits for the aborted PATCH to settle).
  const status = await request(`${r.url}${loc}`);
  assert.equal(status.status, 204);
  const end = Number((status.headers.range as string).split('-')[1]);
  const have = end === 0 ? 0 : end + 1;   // "0-0" means empty (Distribution's convention)
  const rest = Buffer.alloc(1000, 2);
  const res = await request(`${r.url}${loc}`, { method: 'PATCH', body: rest, headers: { 'content-range': `${have}-${have + rest.length - 1}` } });
  assert.equal(res.status, 202);
  const whole = Buffer.concat([first.subarray(0, have), rest]);
  assert.equal((await request(`${r.url}${loc}?digest=${sha(whole)}`, { method: 'PUT' })).status, 201);
});

test('cross-repo mount: 201 when linked in from, else a 202 session', async (t) => {
  const r = await withRegistry(t);
  const d = await pushBlob(r, 'src/x', 'shared');
  let res = await request(`${r.url}/v2/dst/blobs/uploads/?mount=${d}&from=src/x`, { method: 'POST' });
  assert.equal(res.status, 201);
  assert.equal(res.headers.location, `/v2/dst/blobs/${d}`);
  assert.equal(res.headers['docker-content-digest'], d);
  assert.equal((await request(`${r.url}/v2/dst/blobs/${d}`)).body.toString(), 'shared');
  for (const q of [`mount=${sha('absent')}&from=src/x`, `mount=${d}`, `mount=${d}&from=BAD..name`, `mount=bogus&from=src/x`]) {
    res = await request(`${r.url}/v2/dst2/blobs/uploads/?${q}`, { method: 'POST' });
    assert.equal(res.status, 202, q);
    assert.match(res.headers.location as string, /^\/v2\/dst2\/blobs\/uploads\//);
  }
});

test('manifests: validation, blob checks, digest PUT, multi-tag, subject, referrers, deletes', async (t) => {
  const r = await withRegistry(t);
  const cfg = await pushBlob(r, 'app', '{}');
  const layer = await pushBlob(r, 'app', 'layer');
  const man = imageManifest(cfg, [[layer, 5]]);
  const md = sha(man);
  // referenced blob missing in THIS repo
  await pushBlob(r, 'other', 'only-there');
  let res = await request(`${r.url}/v2/app/manifests/v1`, { method: 'PUT', body: imageManifest(cfg, [[sha('only-there'), 10]]), headers: { 'content-type': OCI_M } });
  assert.equal(res.status, 400);
  assert.equal(code(res), 'MANIFEST_BLOB_UNKNOWN');
  assert.equal(res.json().errors[0].detail.digest, sha('only-there'));
  // foreign layers are exempt
  res = await request(`${r.url}/v2/app/manifests/foreign`, { method: 'PUT', headers: { 'content-type': OCI_M }, body: Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_M, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: sha('far'), size: 3, urls: ['https://example.com/l'] }] })) });
  assert.equal(res.status, 201);
  // Content-Type mismatch, invalid JSON, schema1
  assert.equal(code(await request(`${r.url}/v2/app/manifests/v1`, { method: 'PUT', body: man, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } })), 'MANIFEST_INVALID');
  assert.equal(code(await request(`${r.url}/v2/app/manifests/v1`, { method: 'PUT', body: '{', headers: { 'content-type': OCI_M } })), 'MANIFEST_INVALID');
  assert.equal(code(await request(`${r.url}/v2/app/manifests/v1`, { method: 'PUT', body: '{"schemaVersion":1}', headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' } })), 'MANIFEST_INVALID');
  // PUT by digest with wrong reference
  assert.equal(code(await request(`${r.url}/v2/app/manifests/${sha('x')}`, { method: 'PUT', body: man, headers: { 'content-type': OCI_M } })), 'DIGEST_INVALID');
  assert.equal(code(await request(`${r.url}/v2/app/manifests/-bad`, { method: 'PUT', body: man, headers: { 'content-type': OCI_M } })), 'TAG_INVALID');
  // PUT by digest with tags
  res = await request(`${r.url}/v2/app/manifests/${md}?tag=v1&tag=latest`, { method: 'PUT', body: man, headers: { 'content-type': OCI_M } });
  assert.equal(res.status, 201);
  assert.equal(res.headers.location, `/v2/app/manifests/${md}`);
  assert.equal(res.headers['docker-content-digest'], md);
  assert.equal(res.headers['oci-tag'], 'v1, latest');
  for (const ref of ['v1', 'latest', md]) {
    res = await request(`${r.url}/v2/app/manifests/${ref}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, man);
    assert.equal(res.headers['content-type'], OCI_M);
    assert.equal(res.headers['docker-content-digest'], md);
    assert.equal(res.headers.etag, `"${md}"`);
  }
  assert.equal((await request(`${r.url}/v2/app/manifests/v1`, { headers: { 'if-none-match': `"${md}"` } })).status, 304);
  assert.equal(code(await request(`${r.url}/v2/app/manifests/nope`)), 'MANIFEST_UNKNOWN');
  assert.equal(code(await request(`${r.url}/v2/ghost/manifests/nope`)), 'NAME_UNKNOWN');
  // subject + referrers
  const ref1 = imageManifest(cfg, [], { artifactType: 'application/x-sig', subject: { mediaType: OCI_M, digest: md, size: man.length }, annotations: { k: 'v' } });
  const ref2 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_M, config: { mediaType: 'application/x-sbom', digest: cfg, size: 2 }, layers: [], subject: { mediaType: OCI_M, digest: md, size: man.length } }));
  res = await request(`${r.url}/v2/app/manifests/${sha(ref1)}`, { method: 'PUT', body: ref1, headers: { 'content-type': OCI_M } });
  assert.equal(res.headers['oci-subject'], md);
  await request(`${r.url}/v2/app/manifests/${sha(ref2)}`, { method: 'PUT', body: ref2, headers: { 'content-type': OCI_M } });
  const subjectless = sha('future');               // subject that does not exist yet is accepted
  const ref3 = imageManifest(cfg, [], { subject: { mediaType: OCI_M, digest: subjectless, size: 1 } });
  assert.equal((await request(`${r.url}/v2/app/manifests/${sha(ref3)}`, { method: 'PUT', body: ref3, headers: { 'content-type': OCI_M } })).status, 201);
  res = await request(`${r.url}/v2/app/referrers/${md}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'application/vnd.oci.image.index.v1+json');
  const byDigest = Object.fromEntries(res.json().manifests.map((m: any) => [m.digest, m]));
  assert.deepEqual(byDigest[sha(ref1)], { mediaType: OCI_M, digest: sha(ref1), size: ref1.length, artifactType: 'application/x-sig', annotations: { k: 'v' } });
  assert.equal(byDigest[sha(ref2)].artifactType, 'application/x-sbom');
  res = await request(`${r.url}/v2/app/referrers/${md}?artifactType=application/x-sbom`);
  assert.equal(res.headers['oci-filters-applied'], 'artifactType');
  assert.deepEqual(res.json().manifests.map((m: any) => m.digest), [sha(ref2)]);
  assert.deepEqual((await request(`${r.url}/v2/nobody/referrers/${md}`)).json().manifests, []);
  assert.equal(code(await request(`${r.url}/v2/app/referrers/sha256:bad`)), 'DIGEST_INVALID');
  // index referencing an unknown child
  const idx = (child: string) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: OCI_M, digest: child, size: 1 }] }));
  assert.equal(code(await request(`${r.url}/v2/app/manifests/idx`, { method: 'PUT', body: idx(sha('nochild')), headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } })), 'MANIFEST_BLOB_UNKNOWN');
  assert.equal((await request(`${r.url}/v2/app/manifests/idx`, { method: 'PUT', body: idx(md), headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } })).status, 201);
  // deletes: tag only, then digest (removes remaining tags and the referrer entry)
  assert.equal((await request(`${r.url}/v2/app/manifests/latest`, { method: 'DELETE' })).status, 202);
  assert.equal(code(await request(`${r.url}/v2/app/manifests/latest`)), 'MANIFEST_UNKNOWN');
  assert.equal((await request(`${r.url}/v2/app/manifests/${md}`)).status, 200);
  assert.equal((await request(`${r.url}/v2/app/manifests/${sha(ref1)}`, { method: 'DELETE' })).status, 202);
  assert.deepEqual((await request(`${r.url}/v2/app/referrers/${md}`)).json().manifests.map((m: any) => m.digest), [sha(ref2)]);
  assert.equal((await request(`${r.url}/v2/app/manifests/${md}`, { method: 'DELETE' })).status, 202);
  assert.equal(code(await request(`${r.url}/v2/app/manifests/v1`)), 'MANIFEST_UNKNOWN');
  assert.equal(code(await request(`${r.url}/v2/app/manifests/${md}`, { method: 'DELETE' })), 'MANIFEST_UNKNOWN');
  assert.deepEqual((await request(`${r.url}/v2/app/tags/list`)).json().tags, ['foreign', 'idx']);
  // blob delete unlinks only
  assert.equal((await request(`${r.url}/v2/app/blobs/${layer}`, { method: 'DELETE' })).status, 202);
  assert.equal(code(await request(`${r.url}/v2/app/blobs/${layer}`)), 'BLOB_UNKNOWN');
  assert.equal(code(await request(`${r.url}/v2/app/blobs/${layer}`, { method: 'DELETE' })), 'BLOB_UNKNOWN');
  const hex = layer.slice(7);
  assert.ok(existsSync(join(r.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')));
});

test('manifest over 4 MiB → 413 MANIFEST_INVALID', async (t) => {
  const r = await withRegistry(t);
  const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
  const res = await request(`${r.url}/v2/app/manifests/big`, { method: 'PUT', body: big, headers: { 'content-type': OCI_M } });
  assert.equal(res.status, 413);
  assert.equal(code(res), 'MANIFEST_INVALID');
});

test('tags list and catalog pagination', async (t) => {
  const r = await withRegistry(t);
  const cfg = await pushBlob(r, 'p/q', '{}');
  const man = imageManifest(cfg, []);
  for (const tag of ['c', 'a', 'b', 'B']) {
    assert.equal((await request(`${r.url}/v2/p/q/manifests/${tag}`, { method: 'PUT', body: man, headers: { 'content-type': OCI_M } })).status, 201);
  }
  let res = await request(`${r.url}/v2/p/q/tags/list`);
  assert.deepEqual(res.json(), { name: 'p/q', tags: ['B', 'a', 'b', 'c'] });
  res = await request(`${r.url}/v2/p/q/tags/list?n=2`);
  assert.deepEqual(res.json().tags, ['B', 'a']);
  assert.equal(res.headers.link, '</v2/p/q/tags/list?n=2&last=a>; rel="next"');
  res = await request(`${r.url}/v2/p/q/tags/list?n=2&last=a`);
  assert.deepEqual(res.json().tags, ['b', 'c']);
  assert.equal(res.headers.link, undefined);
  assert.deepEqual((await request(`${r.url}/v2/p/q/tags/list?n=0`)).json().tags, []);
  assert.equal(code(await request(`${r.url}/v2/p/q/tags/list?n=1001`)), 'PAGINATION_NUMBER_INVALID');
  assert.equal(code(await request(`${r.url}/v2/p/q/tags/list?n=x`)), 'PAGINATION_NUMBER_INVALID');
  assert.equal(code(await request(`${r.url}/v2/none/tags/list`)), 'NAME_UNKNOWN');
  for (const n of ['z', 'm/n']) await request(`${r.url}/v2/${n}/manifests/t`, { method: 'PUT', body: imageManifest(await pushBlob(r, n, '{}'), []), headers: { 'content-type': OCI_M } });
  res = await request(`${r.url}/v2/_catalog?n=2`);
  assert.deepEqual(res.json().repositories, ['m/n', 'p/q']);
  assert.equal(res.headers.link, '</v2/_catalog?n=2&last=p%2Fq>; rel="next"');
  res = await request(`${r.url}/v2/_catalog?n=2&last=p%2Fq`);
  assert.deepEqual(res.json().repositories, ['z']);
  assert.equal(code(await request(`${r.url}/v2/_catalog?n=5000`)), 'PAGINATION_NUMBER_INVALID');
  assert.deepEqual((await request(`${r.url}/v2/_catalog?n=0`)).json().repositories, []);
});

test('hostile paths: 400/404 JSON with the API header, never 500, never outside the root', async (t) => {
  const r = await withRegistry(t);
  const rows: [string, string, number, string][] = [
    ['GET', '/v2/a/%2e%2e/manifests/latest', 400, 'NAME_INVALID'],
    ['GET', '/v2/a/../b/manifests/latest', 400, 'NAME_INVALID'],
    ['GET', '/v2/a%2fb/tags/list', 400, 'NAME_INVALID'],
    ['GET', '/v2/a%00b/tags/list', 400, 'NAME_INVALID'],
    ['GET', `/v2/${'a'.repeat(256)}/tags/list`, 400, 'NAME_INVALID'],
    ['GET', `/v2/${'a/'.repeat(2000)}x/tags/list`, 400, 'NAME_INVALID'],
    ['GET', '/v2//manifests/latest', 400, 'NAME_INVALID'],
    ['GET', '/v2/Upper/manifests/latest', 400, 'NAME_INVALID'],
    ['GET', '/v2/a/manifests/..', 404, 'MANIFEST_UNKNOWN'],       // a pull of no tag or digest (#15 point 1)
    ['GET', '/v2/a/manifests/%2e%2e', 404, 'MANIFEST_UNKNOWN'],
    ['GET', '/v2/a/manifests/sha256:..', 404, 'MANIFEST_UNKNOWN'],
    ['PUT', '/v2/a/manifests/..', 400, 'TAG_INVALID'],
    ['PUT', '/v2/a/manifests/sha256:..', 400, 'DIGEST_INVALID'],
    ['GET', '/v2/a/blobs/..%2f..%2fetc', 400, 'DIGEST_INVALID'],
    ['PUT', `/v2/a/blobs/uploads/..%2f..?digest=sha256:${'a'.repeat(64)}`, 404, 'BLOB_UPLOAD_UNKNOWN'],
    ['PATCH', '/v2/a/blobs/uploads/..', 404, 'BLOB_UPLOAD_UNKNOWN'],
    ['GET', '/v2/a/nothing', 404, 'UNSUPPORTED'],
    ['POST', '/v2/a/manifests/latest', 405, 'UNSUPPORTED'],
    ['PATCH', '/v2/_catalog', 405, 'UNSUPPORTED'],
  ];
  for (const [m, p, status, c] of rows) {
    const res = await request(`${r.url}${p}`, { method: m });
    assert.equal(res.status, status, `${m} ${p.slice(0, 60)}`);
    assert.equal(code(res), c, `${m} ${p.slice(0, 60)}`);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  }
  const base = await request(`${r.url}/v2/`);
  assert.equal(base.status, 200);
  assert.deepEqual(base.json(), {});
});

test('read-only mode: every write → 405 UNSUPPORTED, reads work', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-ro-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const rw = await startRegistry({ root });
  const d = await pushBlob(rw, 'a', 'data');
  await rw.close();
  const r = await withRegistry(t, { root, readonly: true });
  for (const [m, p] of [['POST', '/v2/a/blobs/uploads/'], ['PUT', '/v2/a/manifests/x'], ['PATCH', '/v2/a/blobs/uploads/x'],
    ['DELETE', `/v2/a/blobs/${d}`], ['DELETE', '/v2/a/manifests/x']] as const) {
    const res = await request(`${r.url}${p}`, { method: m, body: 'x' });
    assert.equal(res.status, 405, `${m} ${p}`);
    assert.equal(code(res), 'UNSUPPORTED');
  }
  assert.equal((await request(`${r.url}/v2/a/blobs/${d}`)).body.toString(), 'data');
});

test('deletes disabled → 405 UNSUPPORTED', async (t) => {
  const r = await withRegistry(t, { deleteEnabled: false });
  const d = await pushBlob(r, 'a', 'data');
  assert.equal(code(await request(`${r.url}/v2/a/blobs/${d}`, { method: 'DELETE' })), 'UNSUPPORTED');
  assert.equal((await request(`${r.url}/v2/a/manifests/x`, { method: 'DELETE' })).status, 405);
  assert.equal((await request(`${r.url}/v2/a/blobs/${d}`)).status, 200);
});

test('empty blob: monolithic and via session', async (t) => {
  const r = await withRegistry(t);
  const d = await pushBlob(r, 'a', '');
  let res = await request(`${r.url}/v2/a/blobs/${d}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-length'], '0');
  const loc = (await request(`${r.url}/v2/b/blobs/uploads/`, { method: 'POST' })).headers.location as string;
  res = await request(`${r.url}${loc}?digest=${d}`, { method: 'PUT', headers: { 'content-length': '0' } });
  assert.equal(res.status, 201);
  assert.equal((await request(`${r.url}/v2/b/blobs/${d}`, { method: 'HEAD' })).headers['content-length'], '0');
});

test('inmemory driver works end to end', async (t) => {
  const r = await withRegistry(t, { driver: 'inmemory' });
  const d = await pushBlob(r, 'a', 'mem');
  assert.equal((await request(`${r.url}/v2/a/blobs/${d}`)).body.toString(), 'mem');
});
