// Storage-layout interop with CNCF Distribution 2.8.2 (Debian's `docker-registry`, i.e. registry:2), both
// directions: one server writes a storage root through skopeo and raw HTTP, stops, and the other serves the same
// root: catalog, tags, manifests (bytes, digest, type) and blob bytes must agree, and skopeo must pull it all.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandbox, skipUnless, type Sandbox } from '../support/clients.js';
import { writeDockerDir, writeOciIndexLayout, writeOciLayout, type LayerSpec } from '../support/images.js';
import { startBerth, startDistribution, type ServerProcess } from '../support/processes.js';
import { catalog, expectStatus, fileDigest, getManifest, pushImage, sha256Hex, tags } from '../support/registry-http.js';
import { request } from '../support/http.js';

const LAYERS: LayerSpec[] = [{ size: 96 * 1024, kind: 'mixed' }, { size: 512 * 1024, kind: 'random' }, { size: 256 * 1024, kind: 'text' }];

interface Expected {
  /** repo → tag → manifest digest */
  tags: Map<string, Map<string, string>>;
  /** repo:digest → { bytes, contentType } for every manifest (children of the index too) */
  manifests: Map<string, { repo: string; digest: string; bytes: Buffer; contentType: string }>;
  /** repo → blob digest → source file (for byte comparison) */
  blobs: Map<string, Map<string, string>>;
  /** manifests deleted through the API: neither the digest nor the tag may resolve */
  deleted: { repo: string; digest: string; tag: string }[];
}

async function workDir(prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/** Pushes the same mix to whichever server: OCI multi-layer, Docker schema2, a two-platform index (skopeo), a
 *  raw chunked push with a second tag, a deleted manifest and an unfinished upload; returns what any server
 *  reading this root must serve. */
async function seed(srv: ServerProcess, sb: Sandbox, work: string): Promise<Expected> {
  const exp: Expected = { tags: new Map(), manifests: new Map(), blobs: new Map(), deleted: [] };
  const addTag = (repo: string, tag: string, digest: string) => {
    if (!exp.tags.has(repo)) exp.tags.set(repo, new Map());
    exp.tags.get(repo)!.set(tag, digest);
  };
  const addBlobs = (repo: string, blobs: Map<string, string>) => {
    if (!exp.blobs.has(repo)) exp.blobs.set(repo, new Map());
    for (const [d, p] of blobs) exp.blobs.get(repo)!.set(d, p);
  };
  const addManifest = (repo: string, digest: string, bytes: Buffer, contentType: string) => exp.manifests.set(`${repo}@${digest}`, { repo, digest, bytes, contentType });

  const oci = await writeOciLayout(join(work, 'oci'), { layers: LAYERS });
  await sb.skopeo(['copy', oci.ref, `docker://${srv.host}/interop/oci:v1`]);
  addTag('interop/oci', 'v1', oci.manifestDigest); addBlobs('interop/oci', oci.blobs); addManifest('interop/oci', oci.manifestDigest, oci.manifestBytes, oci.mediaType);

  const docker = await writeDockerDir(join(work, 'docker'), { layers: LAYERS });
  await sb.skopeo(['copy', docker.ref, `docker://${srv.host}/interop/docker:v2s2`]);
  addTag('interop/docker', 'v2s2', docker.manifestDigest); addBlobs('interop/docker', docker.blobs); addManifest('interop/docker', docker.manifestDigest, docker.manifestBytes, docker.mediaType);

  const idx = await writeOciIndexLayout(join(work, 'index'), { layers: LAYERS.slice(0, 2) });
  await sb.skopeo(['copy', '--all', idx.ref, `docker://${srv.host}/interop/nested/multi:v1`]);
  addTag('interop/nested/multi', 'v1', idx.indexDigest);
  addManifest('interop/nested/multi', idx.indexDigest, idx.indexBytes, idx.mediaType);
  for (const img of idx.images) { addBlobs('interop/nested/multi', img.blobs); addManifest('interop/nested/multi', img.manifestDigest, img.manifestBytes, img.mediaType); }

  const raw = await writeOciLayout(join(work, 'raw'), { layers: LAYERS.slice(1) });
  await pushImage(srv.url, 'interop/raw', 'first', raw, 'chunked');
  await expectStatus(request(`${srv.url}/v2/interop/raw/manifests/second`, { method: 'PUT', headers: { 'content-type': raw.mediaType }, body: raw.manifestBytes }), 201, 'PUT second tag');
  addTag('interop/raw', 'first', raw.manifestDigest); addTag('interop/raw', 'second', raw.manifestDigest);
  addBlobs('interop/raw', raw.blobs); addManifest('interop/raw', raw.manifestDigest, raw.manifestBytes, raw.mediaType);

  // A manifest pushed and deleted again (by digest): the other server must not serve it or its tag.
  const gone = await writeOciLayout(join(work, 'gone'), { layers: LAYERS.slice(0, 1) });
  await pushImage(srv.url, 'interop/raw', 'gone', gone, 'monolithic');
  await expectStatus(request(`${srv.url}/v2/interop/raw/manifests/${gone.manifestDigest}`, { method: 'DELETE' }), 202, 'DELETE manifest');
  exp.deleted.push({ repo: 'interop/raw', digest: gone.manifestDigest, tag: 'gone' });

  // An upload left unfinished: its repository has only _uploads, so it is not in the catalog.
  const up = await expectStatus(request(`${srv.url}/v2/interop/pending/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } }), 202, 'POST upload');
  await expectStatus(request(new URL(up.headers.location!, srv.url).href, {
    method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': '0-65535', 'content-length': '65536' }, body: randomBytes(65536),
  }), 202, 'PATCH partial upload');
  return exp;
}

/** Checks that `srv` serves exactly `exp`, and that skopeo pulls every tag with unchanged digests. */
async function verify(srv: ServerProcess, sb: Sandbox, exp: Expected, work: string, what: string): Promise<void> {
  assert.deepEqual(await catalog(srv.url), [...exp.tags.keys()].sort(), `${what}: catalog`);
  for (const [repo, tagMap] of exp.tags) {
    assert.deepEqual((await tags(srv.url, repo)).sort(), [...tagMap.keys()].sort(), `${what}: tags of ${repo}`);
    for (const [tag, digest] of tagMap) {
      const h = await expectStatus(getManifest(srv.url, repo, tag, 'HEAD'), 200, `${what}: HEAD ${repo}:${tag}`);
      assert.equal(h.headers['docker-content-digest'], digest, `${what}: ${repo}:${tag} resolves to the pushed digest`);
    }
  }
  for (const m of exp.manifests.values()) {
    const r = await expectStatus(getManifest(srv.url, m.repo, m.digest), 200, `${what}: GET ${m.repo}@${m.digest}`);
    assert.ok(r.body.equals(m.bytes), `${what}: manifest bytes of ${m.repo}@${m.digest}`);
    assert.equal(r.headers['content-type'], m.contentType, `${what}: Content-Type of ${m.repo}@${m.digest}`);
    assert.equal(r.headers['docker-content-digest'], m.digest);
  }
  for (const d of exp.deleted) {
    assert.equal((await getManifest(srv.url, d.repo, d.digest)).status, 404, `${what}: deleted ${d.repo}@${d.digest}`);
    assert.equal((await getManifest(srv.url, d.repo, d.tag)).status, 404, `${what}: tag ${d.repo}:${d.tag} of a deleted manifest`);
  }
  for (const [repo, blobs] of exp.blobs) {
    for (const [digest, file] of blobs) {
      const r = await expectStatus(request(`${srv.url}/v2/${repo}/blobs/${digest}`), 200, `${what}: GET blob ${repo}@${digest}`);
      assert.equal(sha256Hex(r.body), digest, `${what}: blob bytes of ${digest}`);
      assert.equal(await fileDigest(file), digest);
    }
  }
  // A real client pull of every tag: dir: keeps manifests byte for byte.
  for (const [repo, tagMap] of exp.tags) {
    for (const [tag, digest] of tagMap) {
      const out = join(work, `pull-${randomBytes(4).toString('hex')}`);
      const all = exp.manifests.get(`${repo}@${digest}`)!.contentType.includes('index');
      await sb.skopeo(['copy', ...(all ? ['--all', `docker://${srv.host}/${repo}:${tag}`, `oci:${out}:x`] : [`docker://${srv.host}/${repo}:${tag}`, `dir:${out}`])]);
      const got = all
        ? JSON.parse(await readFile(join(out, 'index.json'), 'utf8')).manifests[0].digest
        : sha256Hex(await readFile(join(out, 'manifest.json')));
      assert.equal(got, digest, `${what}: skopeo pull of ${repo}:${tag}`);
    }
  }
}

async function setup(t: TestContext) {
  const root = await workDir('berth-interop-root');
  const work = await workDir('berth-interop-work');
  t.after(() => Promise.all([rm(root, { recursive: true, force: true }), rm(work, { recursive: true, force: true })]));
  return { root, work };
}

async function sandboxFor(t: TestContext, hosts: string[]): Promise<Sandbox> {
  const sb = await createSandbox(hosts);
  t.after(() => sb.cleanup());
  return sb;
}

describe('storage layout interop with Distribution 2.8 (docker-registry)', { skip: skipUnless('docker-registry', 'skopeo') }, () => {
  test('registry:2 writes, berth serves the same root', async (t) => {
    const { root, work } = await setup(t);
    const dist = await startDistribution({ root });
    t.after(() => dist.close());
    const sb = await sandboxFor(t, [dist.host]);
    const exp = await seed(dist, sb, work);
    await verify(dist, sb, exp, work, 'registry:2 (self-check)');
    const exit = await dist.stop();
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `docker-registry stopped: ${JSON.stringify(exit)}`);

    const berth = await startBerth({ root });
    t.after(() => berth.close());
    await verify(berth, sb, exp, work, 'berth on a registry:2 root');
  });

  test('berth writes, registry:2 serves the same root', async (t) => {
    const { root, work } = await setup(t);
    const berth = await startBerth({ root });
    t.after(() => berth.close());
    const sb = await sandboxFor(t, [berth.host]);
    const exp = await seed(berth, sb, work);
    await verify(berth, sb, exp, work, 'berth (self-check)');
    const exit = await berth.stop();
    assert.equal(exit.code, 0, `berth exits 0 on SIGTERM: ${berth.output().stderr.slice(-2000)}`);

    const dist = await startDistribution({ root });
    t.after(() => dist.close());
    await verify(dist, sb, exp, work, 'registry:2 on a berth root');
  });
});
