// End-to-end: the built CLI (`node dist/bundle/main.js serve`, plain HTTP on 127.0.0.1:0) driven by the real
// clients skopeo, podman and buildah. Each scenario is written once and run per client where it applies.
// BERTH_E2E_TARGET=distribution runs the same scenarios against docker-registry 2.8 (harness self-check).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';
import { createSandbox, skipUnless, type Sandbox, type Tool } from '../support/clients.js';
import { writeDockerDir, writeOciIndexLayout, writeOciLayout, MT, type GeneratedImage, type LayerSpec } from '../support/images.js';
import { startBerth, startDistribution, type ServerProcess } from '../support/processes.js';
import { catalog, expectStatus, fileDigest, getManifest, pushImage, sha256Hex, tags, type UploadMode } from '../support/registry-http.js';
import { request } from '../support/http.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const TARGET = process.env.BERTH_E2E_TARGET === 'distribution' ? 'distribution' : 'berth';
const startTarget = (o: { root?: string } = {}) => (TARGET === 'distribution' ? startDistribution(o) : startBerth(o));

/** ~2.3 MB per image, 4 layers: mixed, random, text, random. */
const LAYERS: LayerSpec[] = [
  { size: 128 * 1024, kind: 'mixed' }, { size: 1024 * 1024, kind: 'random' },
  { size: 768 * 1024, kind: 'text' }, { size: 384 * 1024, kind: 'random' },
];

interface Pulled { digest: string; diffIds: string[]; layerDigests?: string[]; dir?: string }

/** One client's way to push a generated image and to pull an image back. */
interface Client {
  tool: Tool;
  /** true when pushed layers are our exact bytes (skopeo copies blobs; podman/buildah recompress from storage). */
  exactBlobs: boolean;
  push(sb: Sandbox, img: GeneratedImage, dest: string, format: 'oci' | 'v2s2', work: string): Promise<string>;
  pull(sb: Sandbox, dest: string, work: string): Promise<Pulled>;
}

async function readDigestFile(p: string): Promise<string> { return (await readFile(p, 'utf8')).trim(); }

/** Reads an image written by `skopeo copy … dir:DIR` (manifest kept byte for byte) or `oci:DIR:TAG`,
 *  verifying every blob's bytes against its digest. */
async function readPulled(dir: string): Promise<Pulled & { manifest: { mediaType?: string; layers: { digest: string }[]; config: { digest: string } } }> {
  const isOci = await stat(join(dir, 'oci-layout')).then(() => true, () => false);
  const blob = (d: string) => (isOci ? join(dir, 'blobs', 'sha256', d.slice(7)) : join(dir, d.slice(7)));
  let manifestBytes: Buffer;
  let digest: string;
  if (isOci) {
    digest = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).manifests[0].digest;
    manifestBytes = await readFile(blob(digest));
    assert.equal(sha256Hex(manifestBytes), digest, 'manifest blob in pulled layout matches its digest');
  } else {
    manifestBytes = await readFile(join(dir, 'manifest.json'));
    digest = sha256Hex(manifestBytes);
  }
  const manifest = JSON.parse(manifestBytes.toString());
  for (const l of [manifest.config, ...manifest.layers]) assert.equal(await fileDigest(blob(l.digest)), l.digest, `pulled blob ${l.digest}`);
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8'));
  return { digest, diffIds: config.rootfs.diff_ids, layerDigests: manifest.layers.map((l: { digest: string }) => l.digest), manifest, dir } as Pulled & { manifest: never };
}

const skopeo: Client = {
  tool: 'skopeo', exactBlobs: true,
  async push(sb, img, dest, format, work) {
    const df = join(work, `digest-${randomBytes(4).toString('hex')}`);
    // skopeo uploads each blob as POST + one streamed PATCH + PUT ?digest= (its "chunked" upload, one chunk).
    await sb.skopeo(['copy', '--digestfile', df, ...(format === 'v2s2' ? ['--format', 'v2s2'] : []), img.ref, `docker://${dest}`]);
    return readDigestFile(df);
  },
  async pull(sb, dest, work) {
    // dir: keeps the manifest byte for byte (oci: would convert a Docker manifest to OCI).
    const out = join(work, `pulled-${randomBytes(4).toString('hex')}`);
    await sb.skopeo(['copy', `docker://${dest}`, `dir:${out}`]);
    return readPulled(out);
  },
};

/** podman and buildah share the containers-storage flow: pull oci: into storage, push by image ID. */
function storageClient(tool: 'podman' | 'buildah'): Client {
  const cli = (sb: Sandbox, args: string[]) => (tool === 'podman' ? sb.podman(args) : sb.buildah(args));
  return {
    tool, exactBlobs: false,
    async push(sb, img, dest, format, work) {
      const { stdout } = await cli(sb, ['pull', '--quiet', img.ref]);
      const id = stdout.trim().split('\n').pop()!;
      const df = join(work, `digest-${randomBytes(4).toString('hex')}`);
      await cli(sb, ['push', '--tls-verify=false', '--digestfile', df, '--format', format, id, `docker://${dest}`]);
      return readDigestFile(df);
    },
    async pull(sb, dest) {
      await cli(sb, ['rmi', '--all', '--force']).catch(() => undefined);   // make the pull fetch every blob
      await cli(sb, ['pull', '--tls-verify=false', '--quiet', dest]);
      if (tool === 'podman') {
        const [info] = JSON.parse((await sb.podman(['image', 'inspect', dest])).stdout);
        return { digest: info.Digest, diffIds: info.RootFS.Layers };
      }
      const info = JSON.parse((await sb.buildah(['inspect', '--type', 'image', dest])).stdout);
      return { digest: info.FromImageDigest, diffIds: info.OCIv1.rootfs.diff_ids };
    },
  };
}

const CLIENTS: Client[] = [skopeo, storageClient('podman'), storageClient('buildah')];

async function sandbox(t: TestContext, srv: ServerProcess): Promise<Sandbox> {
  const sb = await createSandbox([srv.host]);
  t.after(() => sb.cleanup());
  return sb;
}

/** Checks what the registry serves for repo:tag against what was pushed and what a client pulled. */
async function checkServed(base: string, repo: string, tag: string, pushedDigest: string, pulled: Pulled, img: GeneratedImage, exact: boolean, mediaType: string) {
  const m = await expectStatus(getManifest(base, repo, tag), 200, `GET manifest ${repo}:${tag}`);
  assert.equal(m.headers['docker-content-digest'], pushedDigest, 'Docker-Content-Digest is the pushed digest');
  assert.equal(sha256Hex(m.body), pushedDigest, 'served manifest bytes hash to the pushed digest');
  assert.equal(m.headers['content-type'], mediaType);
  assert.equal(pulled.digest, pushedDigest, 'client pulled the pushed manifest');
  assert.deepEqual(pulled.diffIds, img.layers.map((l) => l.diffId), 'rootfs diff_ids survive the round trip');
  const manifest = JSON.parse(m.body.toString());
  if (exact) {
    assert.equal(pushedDigest, mediaType === img.mediaType ? img.manifestDigest : pushedDigest);
    assert.deepEqual(manifest.layers.map((l: { digest: string }) => l.digest), img.layers.map((l) => l.digest), 'layer digests unchanged');
    assert.deepEqual(pulled.layerDigests, img.layers.map((l) => l.digest));
  }
  for (const l of manifest.layers as { digest: string; size: number }[]) {
    const h = await expectStatus(request(`${base}/v2/${repo}/blobs/${l.digest}`, { method: 'HEAD' }), 200, `HEAD blob ${l.digest}`);
    assert.equal(Number(h.headers['content-length']), l.size);
    assert.equal(h.headers['docker-content-digest'], l.digest);
  }
}

describe(`e2e: real clients against ${TARGET} serve (plain HTTP)`, () => {
  let srv: ServerProcess;
  let work: string;
  const pushed = new Map<string, Set<string>>();   // repo → tags, for the catalog check at the end
  const record = (repo: string, tag: string) => { if (!pushed.has(repo)) pushed.set(repo, new Set()); pushed.get(repo)!.add(tag); };

  before(async () => {
    work = await workDir('berth-e2e');
    srv = await startTarget();
  });
  after(async () => {
    await srv?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const client of CLIENTS) {
    describe(client.tool, { skip: skipUnless(client.tool, ...(client.tool === 'skopeo' ? [] : ['skopeo' as const])) }, () => {
      test('multi-layer OCI image: push, pull back, same manifest digest and layers', async (t) => {
        const sb = await sandbox(t, srv);
        const img = await writeOciLayout(join(work, `${client.tool}-oci`), { layers: LAYERS });
        const repo = `e2e/${client.tool}/oci-image`;
        const dest = `${srv.host}/${repo}:v1`;
        const digest = await client.push(sb, img, dest, 'oci', work);
        record(repo, 'v1');
        if (client.exactBlobs) assert.equal(digest, img.manifestDigest, 'skopeo pushes our manifest bytes unchanged');
        const pulled = await client.pull(sb, dest, work);
        await checkServed(srv.url, repo, 'v1', digest, pulled, img, client.exactBlobs, MT.ociManifest);
        const raw = await sb.skopeo(['inspect', '--raw', `docker://${dest}`]);
        assert.equal(sha256Hex(Buffer.from(raw.stdout)), digest, 'skopeo inspect --raw returns the same bytes');
      });

      test('Docker schema2 image: push, pull back, same manifest digest and layers', async (t) => {
        const sb = await sandbox(t, srv);
        // skopeo pushes a Docker manifest we wrote (dir: layout, exact bytes); podman/buildah convert on push.
        const img = client.exactBlobs
          ? await writeDockerDir(join(work, `${client.tool}-docker`), { layers: LAYERS })
          : await writeOciLayout(join(work, `${client.tool}-docker`), { layers: LAYERS });
        const repo = `e2e/${client.tool}/docker-image`;
        const dest = `${srv.host}/${repo}:v2s2`;
        const digest = await client.push(sb, img, dest, 'v2s2', work);
        record(repo, 'v2s2');
        if (client.exactBlobs) assert.equal(digest, img.manifestDigest);
        const pulled = await client.pull(sb, dest, work);
        await checkServed(srv.url, repo, 'v2s2', digest, pulled, img, client.exactBlobs, MT.dockerManifest);
      });
    });
  }

  test('skopeo: OCI image converted to Docker schema2 on push (--format v2s2)', { skip: skipUnless('skopeo') }, async (t) => {
    const sb = await sandbox(t, srv);
    const img = await writeOciLayout(join(work, 'convert'), { layers: LAYERS.slice(0, 2) });
    const repo = 'e2e/skopeo/converted';
    const digest = await skopeo.push(sb, img, `${srv.host}/${repo}:v1`, 'v2s2', work);
    record(repo, 'v1');
    assert.notEqual(digest, img.manifestDigest);
    const m = await expectStatus(getManifest(srv.url, repo, 'v1'), 200, 'GET converted manifest');
    const manifest = JSON.parse(m.body.toString());
    assert.equal(manifest.mediaType, MT.dockerManifest);
    assert.deepEqual(manifest.layers.map((l: { digest: string }) => l.digest), img.layers.map((l) => l.digest), 'blobs reused as-is');
    const pulled = await skopeo.pull(sb, `${srv.host}/${repo}:v1`, work);
    assert.equal(pulled.digest, digest);
  });

  test('skopeo: multi-arch OCI index with copy --all, and platform selection (skopeo, podman)', { skip: skipUnless('skopeo') }, async (t) => {
    const sb = await sandbox(t, srv);
    const idx = await writeOciIndexLayout(join(work, 'index'), { layers: LAYERS.slice(0, 2) });
    const repo = 'e2e/skopeo/multi-arch';
    const df = join(work, 'index-digest');
    await sb.skopeo(['copy', '--all', '--digestfile', df, idx.ref, `docker://${srv.host}/${repo}:v1`]);
    record(repo, 'v1');
    assert.equal(await readDigestFile(df), idx.indexDigest);
    const m = await expectStatus(getManifest(srv.url, repo, 'v1'), 200, 'GET index');
    assert.equal(m.headers['content-type'], MT.ociIndex);
    assert.ok(m.body.equals(idx.indexBytes), 'index bytes unchanged');
    for (const img of idx.images) {
      const c = await expectStatus(getManifest(srv.url, repo, img.manifestDigest), 200, `GET child ${img.manifestDigest}`);
      assert.ok(c.body.equals(img.manifestBytes));
    }
    // Without --all, skopeo resolves the index to one platform.
    const arm = join(work, 'arm64');
    await sb.skopeo(['--override-arch', 'arm64', 'copy', `docker://${srv.host}/${repo}:v1`, `oci:${arm}:x`]);
    assert.equal((await readPulled(arm)).digest, idx.images[1]!.manifestDigest);
    // And --all back out reproduces the index.
    const back = join(work, 'index-back');
    await sb.skopeo(['copy', '--all', `docker://${srv.host}/${repo}:v1`, `oci:${back}:x`]);
    const backIndex = JSON.parse(await readFile(join(back, 'index.json'), 'utf8'));
    assert.equal(backIndex.manifests[0].digest, idx.indexDigest);
    // podman resolves the index to the host platform (linux/amd64 here).
    if (skipUnless('podman') || process.arch !== 'x64') return;
    await sb.podman(['pull', '--tls-verify=false', '--quiet', `${srv.host}/${repo}:v1`]);
    const [info] = JSON.parse((await sb.podman(['image', 'inspect', `${srv.host}/${repo}:v1`])).stdout);
    assert.deepEqual(info.RootFS.Layers, idx.images[0]!.layers.map((l) => l.diffId), 'podman pulled the amd64 image');
    assert.ok((info.RepoDigests as string[]).some((d) => d.endsWith(idx.indexDigest)), 'podman records the index digest');
  });

  test('buildah: image built from scratch, pushed, pulled back by skopeo', { skip: skipUnless('buildah', 'skopeo') }, async (t) => {
    const sb = await sandbox(t, srv);
    const ctr = (await sb.buildah(['from', 'scratch'])).stdout.trim();
    const content = `hello from berth e2e ${randomBytes(8).toString('hex')}\n`;
    const file = join(work, 'hello.txt');
    await writeFile(file, content);
    await sb.buildah(['add', ctr, file, '/hello.txt']);
    await sb.buildah(['config', '--cmd', '/hello', '--label', 'berth.test=1', ctr]);
    const image = 'localhost/berth-e2e/tiny:v1';
    await sb.buildah(['commit', '--quiet', ctr, image]);
    await sb.buildah(['rm', ctr]);
    const repo = 'e2e/buildah/scratch';
    const df = join(work, 'tiny-digest');
    await sb.buildah(['push', '--tls-verify=false', '--digestfile', df, image, `docker://${srv.host}/${repo}:v1`]);
    record(repo, 'v1');
    const digest = await readDigestFile(df);
    const pulled = await skopeo.pull(sb, `${srv.host}/${repo}:v1`, work);
    assert.equal(pulled.digest, digest);
    assert.equal(pulled.layerDigests!.length, 1);
    const files = await extractLayer(join(pulled.dir!, pulled.layerDigests![0]!.slice(7)));
    assert.equal(files.get('hello.txt'), content, 'the file added by buildah comes back');
  });

  for (const mode of ['monolithic', 'post-digest', 'chunked'] as UploadMode[]) {
    test(`raw ${mode} blob uploads, then pulled by skopeo and podman`, { skip: skipUnless('skopeo', 'podman') }, async (t) => {
      const sb = await sandbox(t, srv);
      const img = await writeOciLayout(join(work, `raw-${mode}`), { layers: LAYERS.slice(1, 3) });
      const repo = `e2e/raw/${mode}`;
      const digest = await pushImage(srv.url, repo, 'v1', img, mode, (how) => t.diagnostic(`blob upload path: ${how}`));
      record(repo, 'v1');
      assert.equal(digest, img.manifestDigest);
      const viaSkopeo = await skopeo.pull(sb, `${srv.host}/${repo}:v1`, work);
      assert.deepEqual(viaSkopeo.layerDigests, img.layers.map((l) => l.digest));
      const viaPodman = await storageClient('podman').pull(sb, `${srv.host}/${repo}:v1`, work);
      assert.equal(viaPodman.digest, digest);
      assert.deepEqual(viaPodman.diffIds, img.layers.map((l) => l.diffId));
    });
  }

  test('skopeo: registry-to-registry copy into another repository (cross-repository blob reuse)', { skip: skipUnless('skopeo') }, async (t) => {
    const sb = await sandbox(t, srv);
    const img = await writeOciLayout(join(work, 'mount-src'), { layers: LAYERS.slice(0, 2) });
    await skopeo.push(sb, img, `${srv.host}/e2e/mount/source:v1`, 'oci', work);
    record('e2e/mount/source', 'v1');
    // skopeo remembers where it pushed each blob and asks for a mount (POST ?mount=&from=) before uploading.
    const { stderr } = await sb.skopeo(['--debug', 'copy', `docker://${srv.host}/e2e/mount/source:v1`, `docker://${srv.host}/e2e/mount/target:v1`]);
    record('e2e/mount/target', 'v1');
    t.diagnostic(`skopeo tried a cross-repository mount: ${/mount=/.test(stderr)}`);
    const m = await expectStatus(getManifest(srv.url, 'e2e/mount/target', 'v1'), 200, 'GET copied manifest');
    assert.equal(m.headers['docker-content-digest'], img.manifestDigest);
    for (const l of img.layers) {
      const b = await expectStatus(request(`${srv.url}/v2/e2e/mount/target/blobs/${l.digest}`), 200, `GET ${l.digest} in target`);
      assert.equal(sha256Hex(b.body), l.digest);
    }
  });

  test('skopeo delete removes a manifest and the tag that pointed at it', { skip: skipUnless('skopeo') }, async (t) => {
    const sb = await sandbox(t, srv);
    const keep = await writeOciLayout(join(work, 'del-keep'), { layers: LAYERS.slice(0, 1) });
    const gone = await writeOciLayout(join(work, 'del-gone'), { layers: LAYERS.slice(0, 1) });
    const repo = 'e2e/skopeo/deleted';
    await skopeo.push(sb, keep, `${srv.host}/${repo}:keep`, 'oci', work);
    await skopeo.push(sb, gone, `${srv.host}/${repo}:gone`, 'oci', work);
    record(repo, 'keep');
    await sb.skopeo(['delete', `docker://${srv.host}/${repo}:gone`]);   // resolves the tag, DELETEs by digest
    assert.equal((await getManifest(srv.url, repo, gone.manifestDigest)).status, 404);
    assert.equal((await getManifest(srv.url, repo, 'gone')).status, 404);
    assert.deepEqual(await tags(srv.url, repo), ['keep']);
    await assert.rejects(sb.skopeo(['inspect', '--raw', `docker://${srv.host}/${repo}:gone`]), /manifest unknown|not found/i);
    assert.equal((await getManifest(srv.url, repo, 'keep')).status, 200);
  });

  test('catalog and tags list show exactly what was pushed, to raw HTTP and to skopeo list-tags', async (t) => {
    const repos = [...pushed.keys()].sort();
    assert.deepEqual(await catalog(srv.url), repos);
    assert.deepEqual(await catalog(srv.url, 2), repos, 'paginated catalog (n=2, Link) agrees');
    for (const [repo, tagSet] of pushed) assert.deepEqual((await tags(srv.url, repo)).sort(), [...tagSet].sort(), `tags of ${repo}`);
    if (skipUnless('skopeo')) return;
    const sb = await sandbox(t, srv);
    for (const [repo, tagSet] of pushed) {
      const listed = JSON.parse((await sb.skopeo(['list-tags', `docker://${srv.host}/${repo}`])).stdout);
      assert.deepEqual([...listed.Tags].sort(), [...tagSet].sort(), `skopeo list-tags ${repo}`);
    }
  });
});

/** Gunzips and untars a layer; returns regular files' contents by path (small layers only). */
async function extractLayer(blob: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const ex = tar.extract();
  ex.on('entry', (h, s, next) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    s.on('end', () => { if (h.type === 'file') files.set(h.name.replace(/^\.?\//, ''), Buffer.concat(chunks).toString()); next(); });
  });
  await pipeline(createReadStream(blob), createGunzip(), ex as unknown as NodeJS.WritableStream);
  return files;
}

describe(`e2e: ${TARGET} killed (SIGKILL) in the middle of a blob upload`, { skip: TARGET === 'distribution' ? 'Distribution ties resumption to its _state token' : false }, () => {
  test('nothing half-visible after restart, and the upload resumes where the bytes stopped', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'berth-kill-'));
    const work = await workDir('berth-kill-work');
    t.after(() => Promise.all([rm(root, { recursive: true, force: true }), rm(work, { recursive: true, force: true })]));
    const first = await startTarget({ root });
    t.after(() => first.close());
    let srv = first;

    // Some committed content, to check it is unchanged after the crash.
    const img = await writeOciLayout(join(work, 'seed'), { layers: LAYERS.slice(0, 1) });
    await pushImage(srv.url, 'kill/seed', 'v1', img, 'monolithic');
    const catalogBefore = await catalog(srv.url);
    const tagsBefore = await tags(srv.url, 'kill/seed');

    const total = 4 * 1024 * 1024;
    const sent = 1024 * 1024;
    const blob = randomBytes(total);
    const digest = sha256Hex(blob);
    const start = await expectStatus(request(`${srv.url}/v2/kill/big/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } }), 202, 'POST upload');
    const uploadPath = new URL(start.headers.location!, srv.url);
    const uuid = start.headers['docker-upload-uuid'];

    // Stream the first MiB of a PATCH and keep the request open, as a slow client would (a raw request:
    // request() sends whole bodies).
    const req = httpRequest(new URL(uploadPath.pathname + uploadPath.search, srv.url), {
      method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    });
    const reqDone = new Promise<void>((resolve) => { req.once('error', () => resolve()); req.once('response', (r) => { r.resume(); r.once('end', resolve); }); });
    req.write(blob.subarray(0, sent));
    // Wait until the server has the bytes on disk (Distribution's layout: _uploads/<uuid>/data).
    const dataFile = join(root, 'docker/registry/v2/repositories/kill/big/_uploads', uuid ?? '', 'data');
    await waitUntil(`upload data file ${dataFile} to reach ${sent} bytes`, async () => (await stat(dataFile).catch(() => undefined))?.size === sent, { timeoutMs: 20_000, intervalMs: 20 });

    assert.equal((await srv.kill()).signal, 'SIGKILL');
    await withDeadline(reqDone, 10_000, 'the cut-off PATCH to end');
    srv = await startTarget({ root });
    const second = srv;
    t.after(() => second.close());

    const head = await request(`${srv.url}/v2/kill/big/blobs/${digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404, 'the half-uploaded blob is not visible');
    assert.deepEqual(await catalog(srv.url), catalogBefore, 'catalog unchanged');
    assert.ok(!catalogBefore.includes('kill/big'));
    assert.deepEqual(await tags(srv.url, 'kill/seed'), tagsBefore, 'tags unchanged');
    const seed = await expectStatus(getManifest(srv.url, 'kill/seed', 'v1'), 200, 'seed manifest still served');
    assert.equal(sha256Hex(seed.body), img.manifestDigest);

    // Resume: GET the upload reports the stored bytes, PATCH the rest, PUT ?digest= commits.
    const resumeUrl = new URL(uploadPath.pathname + uploadPath.search, srv.url).href;
    const status = await expectStatus(request(resumeUrl), 204, 'GET upload status after restart');
    assert.equal(status.headers.range, `0-${sent - 1}`, 'Range reflects the bytes stored before the kill');
    if (uuid) assert.equal(status.headers['docker-upload-uuid'], uuid);
    const patch = await expectStatus(request(new URL(status.headers.location ?? resumeUrl, srv.url).href, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${sent}-${total - 1}`, 'content-length': String(total - sent) },
      body: blob.subarray(sent),
    }), 202, 'PATCH the rest');
    assert.equal(patch.headers.range, `0-${total - 1}`);
    const put = new URL(patch.headers.location!, srv.url);
    put.searchParams.set('digest', digest);
    const done = await expectStatus(request(put.href, { method: 'PUT', headers: { 'content-length': '0' } }), 201, 'PUT ?digest=');
    assert.equal(done.headers['docker-content-digest'], digest);
    const got = await expectStatus(request(`${srv.url}/v2/kill/big/blobs/${digest}`), 200, 'GET blob');
    assert.equal(got.body.length, total);
    assert.ok(got.body.equals(blob), 'blob bytes are exactly what was uploaded');
  });
});

/** A temp dir whose path is lowercase: podman/buildah name an image pulled from `oci:PATH` after PATH,
 *  and image names must be lowercase (mkdtemp's suffix is not). */
async function workDir(prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}
