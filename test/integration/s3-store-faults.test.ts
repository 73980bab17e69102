// The object store down, stalled or cut mid-request (#17 point 6), on a real network path: berth (the in-process
// gateway) talks to the real Ceph RGW through test/support/fault-proxy.ts. Down: every request that needs the
// store answers 503 UNAVAILABLE with Retry-After and the storage health check turns red; stalled: they answer 503
// within S3_TIMEOUTS.call (20 s) instead of hanging; back: the same requests succeed without a restart. A manifest
// PUT, a blob commit or a PATCH cut at a sweep of byte offsets leaves nothing half-written, and the retry succeeds.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { loadConfigFromString } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { S3_TIMEOUTS } from '../../src/registry/storage/drivers/s3-client.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startBerth } from '../support/processes.js';
import { request, type HttpResponse } from '../support/http.js';
import {
  MT, descriptor, expectOciError, locationPath, makeImageManifest, manifestBytes, pushBlob, putManifest, randomBlob, sha256,
  startUpload, withQuery,
} from '../support/oci-client.js';
import { deleteS3Prefix } from '../support/registry-server.js';
import { s3Parameters, s3Prefix, s3Skip, s3Store, type S3Settings } from '../support/s3.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

const MiB = 1024 * 1024;
const skip = await s3Skip();
const REPO = 'faults/app';

function yaml(s: S3Settings, endpoint: string, root: string, health: boolean): string {
  return [
    'listen: "127.0.0.1:0"', 'registry:', '  storage:', '    s3:',
    `      region: ${s.region}`, `      regionendpoint: ${endpoint}`, `      bucket: ${s.bucket}`, `      rootdirectory: ${root}`,
    `      accesskey: ${s.accessKey}`, `      secretkey: ${s.secretKey}`, '      secure: false', '      chunksize: 5242880',
    '    redirect: { disable: true }', '    delete: { enabled: true }',
    '    maintenance: { uploadpurging: { enabled: false } }',
    ...(health ? ['  health: { storagedriver: { enabled: true, interval: 200ms, threshold: 2 } }', '  http: { debug: { addr: "127.0.0.1:0" } }'] : []),
    'log: { level: warn }', '',
  ].join('\n');
}

/** A request that must answer within `ms` (a stalled store must not hang it). */
async function timed(url: string, o: Parameters<typeof request>[1] & { ms?: number } = {}): Promise<HttpResponse & { ms: number }> {
  const t0 = Date.now();
  const res = await request(url, { timeoutMs: o.ms ?? 30_000, ...o });
  return Object.assign(res, { ms: Date.now() - t0 });
}

function expect503(res: HttpResponse, what: string): void {
  if (res.body.length === 0) assert.equal(res.status, 503, what);   // HEAD: no body
  else expectOciError(res, 503, 'UNAVAILABLE', what);
  assert.equal(res.headers['retry-after'], '5', `${what}: Retry-After`);
}

describe('s3: the object store down, stalled and cut mid-request (fault proxy in front of Ceph)', { skip }, () => {
  let s: S3Settings;
  let root: string;
  let proxy: FaultProxy;        // in front of `plain`
  let hproxy: FaultProxy;       // in front of `watched` (its health check traffic stays off proxy's byte count)
  let plain: RunningServer;     // no health checks: every request reaches the driver
  let watched: RunningServer;   // registry.health.storagedriver every 200 ms, threshold 2
  const closers: (() => Promise<unknown>)[] = [];

  async function start(endpoint: string, health: boolean): Promise<RunningServer> {
    const dir = await makeTempDir('berth-s3faults-');
    closers.push(() => dir.cleanup());
    const server = await startServer(loadConfigFromString(yaml(s, endpoint, root, health), join(dir.path, 'gateway.yml')), silentLogger(), { drainMs: 500 });
    closers.push(() => server.close());
    return server;
  }

  before(async () => {
    s = await s3Store();
    root = s3Prefix('faults');
    const u = new URL(s.endpoint);
    proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });
    hproxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });
    closers.push(() => proxy.close(), () => hproxy.close());
    plain = await start(proxy.url, false);
    watched = await start(hproxy.url, true);
  });

  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await deleteS3Prefix(s3Parameters(s, root));
  });

  /** Pushes a config and a layer and a manifest tagged `tag` (through `plain`, store up). */
  async function pushImage(tag: string, layerSize = 2048) {
    const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
    const layerBytes = randomBlob(layerSize);
    await pushBlob(plain.url, REPO, configBytes);
    await pushBlob(plain.url, REPO, layerBytes);
    const manifest = makeImageManifest({ config: descriptor(MT.ociConfig, configBytes), layers: [descriptor(MT.ociLayer, layerBytes)] });
    const bytes = manifestBytes(manifest);
    const put = await request(`${plain.url}/v2/${REPO}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': MT.ociManifest }, body: bytes });
    assert.equal(put.status, 201, `push ${tag}: ${put.status} ${put.text()}`);
    return { bytes, digest: sha256(bytes), layerBytes, layer: sha256(layerBytes), configBytes };
  }

  /** The requests a pull and a push make, each with the status it gets while the store is up. */
  function calls(img: { bytes: Buffer; layer: string }, upload: string, blob: Buffer, n: number) {
    const accept = { accept: MT.ociManifest };
    return [
      { what: 'GET manifest', url: `/v2/${REPO}/manifests/v1`, o: { headers: accept }, ok: 200 },
      { what: 'HEAD manifest', url: `/v2/${REPO}/manifests/v1`, o: { method: 'HEAD', headers: accept }, ok: 200 },
      { what: 'PUT manifest', url: `/v2/${REPO}/manifests/again-${n}`, o: { method: 'PUT', headers: { 'content-type': MT.ociManifest }, body: img.bytes }, ok: 201 },
      { what: 'GET blob', url: `/v2/${REPO}/blobs/${img.layer}`, o: {}, ok: 200 },
      { what: 'HEAD blob', url: `/v2/${REPO}/blobs/${img.layer}`, o: { method: 'HEAD' }, ok: 200 },
      { what: 'POST upload', url: `/v2/${REPO}/blobs/uploads/`, o: { method: 'POST', headers: { 'content-length': '0' } }, ok: 202 },
      { what: 'PATCH upload', url: upload, o: { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${blob.length - 1}` }, body: blob }, ok: 202 },
      { what: 'PUT upload', url: withQuery(upload, { digest: sha256(blob) }), o: { method: 'PUT', headers: { 'content-length': '0' } }, ok: 201 },
      { what: 'GET tags', url: `/v2/${REPO}/tags/list`, o: {}, ok: 200 },
      { what: 'GET catalog', url: '/v2/_catalog', o: {}, ok: 200 },
    ] as const;
  }

  /** Whatever a test leaves the proxies in, the next starts with the store up. */
  afterEach(() => { proxy.set('pass'); hproxy.set('pass'); });

  test('down: 503 UNAVAILABLE with Retry-After on pull and push, health red; back: the same requests succeed, health green', async () => {
    const img = await pushImage('v1');
    const blob = randomBlob(1000);
    const upload = await startUpload(plain.url, REPO);
    assert.equal((await request(`${watched.debugUrl}/debug/health`)).status, 200);

    proxy.set('down');
    hproxy.set('down');
    for (const c of calls(img, upload, blob, 1)) {
      const res = await timed(`${plain.url}${c.url}`, c.o);
      expect503(res, `store down: ${c.what}`);
      assert.ok(res.ms < 5000, `${c.what}: a refused store answers at once (${res.ms} ms)`);
    }
    await waitUntil('the storage health check red', async () => (await request(`${watched.debugUrl}/debug/health`)).status === 503, { timeoutMs: 5000, intervalMs: 50 });
    const h = await request(`${watched.debugUrl}/debug/health`);
    assert.deepEqual(Object.keys(h.json()), ['storagedriver_s3']);
    const gated = await request(`${watched.url}/v2/${REPO}/tags/list`);
    expectOciError(gated, 503, 'UNAVAILABLE', 'health red');
    assert.deepEqual(gated.json().errors[0].detail, { checks: ['storagedriver_s3'] });
    assert.equal(gated.headers['retry-after'], '5', 'health red: Retry-After');

    proxy.set('pass');
    hproxy.set('pass');
    for (const c of calls(img, upload, blob, 1)) {
      const res = await timed(`${plain.url}${c.url}`, c.o);
      assert.equal(res.status, c.ok, `store back: ${c.what}: ${res.status} ${res.text()}`);
      if (c.what === 'GET manifest') assert.ok(res.body.equals(img.bytes));
      if (c.what === 'GET blob') assert.ok(res.body.equals(img.layerBytes));
    }
    await waitUntil('the storage health check green', async () => (await request(`${watched.debugUrl}/debug/health`)).status === 200, { timeoutMs: 5000, intervalMs: 50 });
    assert.equal((await request(`${watched.url}/v2/${REPO}/tags/list`)).status, 200);
    const tags = (await request(`${plain.url}/v2/${REPO}/tags/list`)).json().tags as string[];
    assert.deepEqual(tags.sort(), ['again-1', 'v1']);
  });

  test('a berth process (the bundle): down → 503 UNAVAILABLE with Retry-After; back → the same requests succeed', async (t) => {
    const berth = await startBerth({ configYaml: yaml(s, proxy.url, root, false) });
    t.after(() => berth.close());
    const img = await pushImage('proc');
    const paths = [`/v2/${REPO}/manifests/proc`, `/v2/${REPO}/blobs/${img.layer}`, `/v2/${REPO}/tags/list`];
    proxy.set('down');
    for (const p of paths) expect503(await request(`${berth.url}${p}`, { headers: { accept: MT.ociManifest } }), `process, store down: ${p}`);
    proxy.set('pass');
    for (const p of paths) assert.equal((await request(`${berth.url}${p}`, { headers: { accept: MT.ociManifest } })).status, 200, `process, store back: ${p}`);
  });

  test('down at start: berth starts, health red and 503; the store comes up: green and serving, no restart', async () => {
    const late = await startFaultProxy({ host: new URL(s.endpoint).hostname, port: Number(new URL(s.endpoint).port) });
    closers.push(() => late.close());
    late.set('down');
    const server = await start(late.url, true);
    await waitUntil('the storage health check red', async () => (await request(`${server.debugUrl}/debug/health`)).status === 503, { timeoutMs: 5000, intervalMs: 50 });
    expect503(await request(`${server.url}/v2/${REPO}/tags/list`), 'down at start');
    late.set('pass');
    await waitUntil('the storage health check green', async () => (await request(`${server.debugUrl}/debug/health`)).status === 200, { timeoutMs: 5000, intervalMs: 50 });
    const img = await pushImage('late');
    const got = await request(`${server.url}/v2/${REPO}/manifests/late`, { headers: { accept: MT.ociManifest } });
    assert.ok(got.status === 200 && got.body.equals(img.bytes), `GET through the late server: ${got.status}`);
  });

  test(`stall (accepts, never answers): 503 within ${S3_TIMEOUTS.call / 1000} s, health red; then recovery`, async () => {
    const img = await pushImage('v1');
    const blob = randomBlob(1000);
    const upload = await startUpload(plain.url, REPO);
    proxy.set('stall');
    hproxy.set('stall');
    const bound = S3_TIMEOUTS.call + 5000;   // the call deadline plus the SDK's retry delay and a loaded machine's slack
    const red = waitUntil('the storage health check red while stalled', async () => (await request(`${watched.debugUrl}/debug/health`)).status === 503,
      { timeoutMs: 2 * 10_000 + 5000, intervalMs: 200 });
    red.catch(() => {});   // awaited below
    // PATCH and PUT of the upload run one after the other (one upload); the rest at once.
    const list = calls(img, upload, blob, 2);
    const results = await Promise.all(list.filter((c) => c.what !== 'PUT upload').map(async (c) => [c.what, await timed(`${plain.url}${c.url}`, { ...c.o, ms: 2 * bound + 10_000 })] as const));
    for (const [what, res] of results) {
      expect503(res, `store stalled: ${what}`);
      // A POST whose session cannot be written deletes what it may have written before answering: a second call.
      const limit = what === 'POST upload' ? bound + S3_TIMEOUTS.call : bound;
      assert.ok(res.ms <= limit, `${what}: answered after ${res.ms} ms (bound ${limit})`);
      assert.ok(res.ms >= S3_TIMEOUTS.attempt - 1000, `${what}: answered before the attempt timeout (${res.ms} ms)`);
    }
    await red;
    assert.deepEqual((await request(`${watched.debugUrl}/debug/health`)).json(), { storagedriver_s3: 'storage: no answer within 10000 ms' });
    proxy.set('pass');
    hproxy.set('pass');
    for (const c of calls(img, upload, blob, 2)) {
      const res = await timed(`${plain.url}${c.url}`, c.o);
      assert.equal(res.status, c.ok, `store back: ${c.what}: ${res.status} ${res.text()}`);
    }
    await waitUntil('the storage health check green', async () => (await request(`${watched.debugUrl}/debug/health`)).status === 200, { timeoutMs: 5000, intervalMs: 50 });
  });

  /** Arms `proxy` to go down after `cut` bytes, runs `fn`, then brings the store back; true when the cut was reached. */
  async function cutAt<T>(cut: number, fn: () => Promise<T>): Promise<{ value: T | Error; cutReached: boolean }> {
    proxy.downAfter(cut);
    let value: T | Error;
    try { value = await fn(); } catch (err) { value = err as Error; }
    const cutReached = proxy.mode === 'down';
    proxy.set('pass');
    return { value, cutReached };
  }

  /** Cut offsets: dense where the requests are small, then geometric; the sweep stops at the first uncut run. */
  const CUTS = [60, 300, 700, 1200, 1800, 2500, 3300, 4200, 5200, 6500, 8000, 10_000, 13_000, 17_000, 22_000, 30_000, 40_000];

  test('a manifest PUT cut at any point: the tag is absent or a complete manifest whose blobs exist; the retry succeeds', async () => {
    const configBytes = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layerBytes = randomBlob(4096);
    await pushBlob(plain.url, REPO, configBytes);
    await pushBlob(plain.url, REPO, layerBytes);
    let uncut = false;
    for (const [i, cut] of CUTS.entries()) {
      const m = makeImageManifest({ config: descriptor(MT.ociConfig, configBytes), layers: [descriptor(MT.ociLayer, layerBytes)], annotations: { cut: String(cut) } });
      const tag = `cut-${i}`;
      const { value, cutReached } = await cutAt(cut, () => putManifest(plain.url, REPO, tag, m));
      const { res, digest, bytes } = value instanceof Error ? { res: undefined, digest: sha256(manifestBytes(m)), bytes: manifestBytes(m) } : value;
      if (res && cutReached) assert.ok([201, 503].includes(res.status), `cut ${cut}: ${res.status} ${res.text()}`);
      if (res?.status === 503) expect503(res, `cut ${cut}`);
      // What is visible now: nothing, or the whole manifest.
      for (const ref of [tag, digest]) {
        const got = await request(`${plain.url}/v2/${REPO}/manifests/${ref}`, { headers: { accept: MT.ociManifest } });
        if (got.status === 404) expectOciError(got, 404, 'MANIFEST_UNKNOWN', `cut ${cut}: ${ref}`);
        else {
          assert.equal(got.status, 200, `cut ${cut}: GET ${ref}: ${got.status} ${got.text()}`);
          assert.ok(got.body.equals(bytes), `cut ${cut}: ${ref} is the complete manifest`);
          assert.equal(got.headers['docker-content-digest'], digest);
        }
      }
      if (res?.status === 201) {
        const got = await request(`${plain.url}/v2/${REPO}/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
        assert.equal(got.status, 200, `cut ${cut}: 201 but the tag is not there`);
      }
      for (const b of [configBytes, layerBytes]) assert.equal((await request(`${plain.url}/v2/${REPO}/blobs/${sha256(b)}`, { method: 'HEAD' })).status, 200);
      const retry = await putManifest(plain.url, REPO, tag, m);
      assert.equal(retry.res.status, 201, `cut ${cut}: retry ${retry.res.status} ${retry.res.text()}`);
      const got = await request(`${plain.url}/v2/${REPO}/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
      assert.ok(got.status === 200 && got.body.equals(bytes), `cut ${cut}: after the retry`);
      if (!cutReached) { uncut = true; break; }
    }
    assert.ok(uncut, `a manifest PUT needs more than ${CUTS.at(-1)} bytes to the store: extend CUTS`);
  });

  test('a blob commit cut at any point: the blob is absent or complete and correct; the retry succeeds', async (t) => {
    /** An upload of one full part (chunksize 5 MiB) and a tail the commit sends, ready to commit. */
    const ready = async () => {
      const blob = randomBlob(6 * MiB + 321);
      const loc = await startUpload(plain.url, REPO);
      const p = await request(`${plain.url}${loc}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: blob });
      assert.equal(p.status, 202, `PATCH: ${p.status} ${p.text()}`);
      return { blob, digest: sha256(blob), loc: locationPath(plain.url, p) };
    };
    // How many bytes an uncut commit sends the store: the sweep cuts densely before its end, where the multipart
    // upload is completed and the blob moved and linked.
    const first = await ready();
    const before = proxy.stats().up;
    const ok = await request(`${plain.url}${withQuery(first.loc, { digest: first.digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
    assert.equal(ok.status, 201);
    const total = proxy.stats().up - before;
    const cuts = [60, 500_000, ...[16_000, 8000, 4500, 3000, 1800, 800, 200].map((d) => total - d)];
    for (const cut of cuts) {
      const { blob, digest, loc } = await ready();
      const { value, cutReached } = await cutAt(cut, () => request(`${plain.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } }));
      t.diagnostic(`commit cut at ${cut} of ${total}: ${value instanceof Error ? value.message : value.status}${cutReached ? '' : ' (not reached)'}`);
      if (!(value instanceof Error) && value.status !== 201) expect503(value, `commit cut at ${cut}`);
      await assertBlobAbsentOrWhole(digest, blob, `commit cut at ${cut}`);
      if (value instanceof Error || value.status !== 201) {
        // Retry as a client would: the same session if it is still there, else a new upload.
        const st = await request(`${plain.url}${loc}`);
        if (st.status === 204) {
          assert.equal(st.headers.range, `0-${blob.length - 1}`, `commit cut at ${cut}: the session kept every byte`);
          const put = await request(`${plain.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
          assert.equal(put.status, 201, `commit cut at ${cut}: retried commit ${put.status} ${put.text()}`);
        } else {
          expectOciError(st, 404, 'BLOB_UPLOAD_UNKNOWN', `commit cut at ${cut}: session`);
          await pushBlob(plain.url, REPO, blob);
        }
      }
      const got = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`);
      assert.ok(got.status === 200 && got.body.equals(blob), `commit cut at ${cut}: the blob after the retry`);
    }
  });

  test('a blob GET whose store goes down mid-body: the client sees the transfer fail, never a short body as a success', async () => {
    const blob = randomBlob(4 * MiB);
    const digest = await pushBlob(plain.url, REPO, blob);
    proxy.set('slow', { bytesPerSecond: 2 * MiB });
    const d0 = proxy.stats().down;
    const got = request(`${plain.url}/v2/${REPO}/blobs/${digest}`, { timeoutMs: 20_000 }).then((r) => r, (e: Error) => e);
    await waitUntil('the body flowing', () => proxy.stats().down - d0 > 512 * 1024, { timeoutMs: 10_000 });
    proxy.set('down');
    const res = await got;
    assert.ok(res instanceof Error, `the client must not get a complete answer: ${res instanceof Error ? '' : `${res.status}, ${res.body.length} bytes`}`);
    proxy.set('pass');
    const again = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`);
    assert.ok(again.status === 200 && again.body.equals(blob), 'the store back: the whole blob');
  });

  // One kind of store request fails (its connection reset, 3 times: the SDK's attempts) while the rest of the
  // store works: the commit answers 503; the blob is absent or whole; the session keeps every byte (the retried
  // commit succeeds) or is gone (a new push succeeds). Not listed yet: a 6 MiB upload whose last UploadPart or
  // CompleteMultipartUpload fails: S3Writer.commit aborts the multipart upload, the session then says 0 bytes and
  // the retried commit answers 400 DIGEST_INVALID (reported to the owner of s3-writer.ts).
  const TRANSIENT: { request: string; re: RegExp; size: number; session: 'whole' | 'gone' }[] = [
    { request: 'CopyObject (move)', re: /^PUT [^\n]*\n[\s\S]*?x-amz-copy-source:/i, size: 1000, session: 'whole' },
    { request: 'DeleteObject (move)', re: /^DELETE /, size: 1000, session: 'whole' },
    { request: 'HeadObject', re: /^HEAD /, size: 1000, session: 'whole' },
    { request: 'GetObject', re: /^GET /, size: 1000, session: 'whole' },
    { request: 'PutObject of the layer link', re: /^PUT [^ ]*\/link[ ?]/, size: 1000, session: 'gone' },

    { request: 'DeleteObject (tail, move)', re: /^DELETE /, size: 6 * MiB + 5, session: 'whole' },
    { request: 'PutObject of the layer link', re: /^PUT [^ ]*\/link[ ?]/, size: 6 * MiB + 5, session: 'gone' },
    { request: 'CompleteMultipartUpload', re: /^POST [^ ]*\?uploadId=/, size: 6 * MiB + 5, session: 'whole' },
    { request: 'UploadPart (the last)', re: /^PUT [^ ]*partNumber=/, size: 6 * MiB + 5, session: 'whole' },
  ];
  test('a commit whose session cleanup fails after the blob was linked: 201 (the blob is whole), the session gone or left to the purger', async () => {
    const blob = randomBlob(1000);
    const digest = sha256(blob);
    let loc = await startUpload(plain.url, REPO);
    const p = await request(`${plain.url}${loc}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: blob });
    assert.equal(p.status, 202);
    loc = locationPath(plain.url, p);
    const failed = proxy.failed;
    proxy.failRequests(/^POST [^ ]*\?delete/, 3);
    const put = await request(`${plain.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
    assert.equal(put.status, 201, `commit: ${put.status} ${put.text()}`);
    // The session's removal runs after the response (core/upload.ts): its batch delete fails there.
    await waitUntil('the session removal\'s batch delete to fail', () => proxy.failed > failed);
    proxy.failRequests(/^POST [^ ]*\?delete/, 0);
    const got = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`);
    assert.ok(got.status === 200 && got.body.equals(blob), 'the blob is whole');
    expectOciError(await request(`${plain.url}${loc}`), 404, 'BLOB_UPLOAD_UNKNOWN', 'the committed session');
  });

  for (const row of TRANSIENT) {
    test(`a commit whose ${row.request} fails (${row.size} bytes): 503, blob absent or whole, session ${row.session}, the retry succeeds`, async () => {
      const blob = randomBlob(row.size);
      const digest = sha256(blob);
      let loc = await startUpload(plain.url, REPO);
      const p = await request(`${plain.url}${loc}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: blob });
      assert.equal(p.status, 202);
      loc = locationPath(plain.url, p);
      const failed = proxy.failed;
      proxy.failRequests(row.re, 3);
      const put = await request(`${plain.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
      proxy.failRequests(row.re, 0);
      // Every attempt failed: the SDK's 3, or fewer once its retry quota (500 tokens, 5 a retry, 1 back per request
      // that needed none) is spent by the outages of the tests before: then it tries fewer times.
      const n = proxy.failed - failed;
      assert.ok(n >= 1 && n <= 3, `the request failed on each of the SDK's attempts (${n})`);
      expect503(put, 'commit');
      await assertBlobAbsentOrWhole(digest, blob, row.request);
      const st = await request(`${plain.url}${loc}`);
      if (row.session === 'whole') {
        assert.equal(st.status, 204, `session: ${st.status} ${st.text()}`);
        assert.equal(st.headers.range, `0-${blob.length - 1}`, 'the session kept every byte');
        const again = await request(`${plain.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
        assert.equal(again.status, 201, `retried commit: ${again.status} ${again.text()}`);
      } else {
        expectOciError(st, 404, 'BLOB_UPLOAD_UNKNOWN', 'session');
        await pushBlob(plain.url, REPO, blob);
      }
      const got = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`);
      assert.ok(got.status === 200 && got.body.equals(blob), 'the blob after the retry');
    });
  }

  // One kind of store request of a manifest PUT fails (3 times) while the rest works: 503; the tag is absent, or
  // still the old manifest, or the whole new one, and the tag list shows it only when a GET finds it.
  const MANIFEST_TRANSIENT: { request: string; re: RegExp }[] = [
    { request: 'PutObject of the manifest', re: /^PUT [^ ]*\/blobs\/sha256\/[^ ]*\/data[ ?]/ },
    { request: 'PutObject of the revision link', re: /^PUT [^ ]*_manifests\/revisions\/[^ ]*\/link[ ?]/ },
    { request: 'PutObject of the tag\'s current link', re: /^PUT [^ ]*\/current\/link[ ?]/ },
    { request: 'PutObject of the tag\'s index entry', re: /^PUT [^ ]*\/index\/[^ ]*\/link[ ?]/ },
  ];
  for (const row of MANIFEST_TRANSIENT) {
    test(`a manifest PUT whose ${row.request} fails: 503, the tag absent, old or whole and listed only then; the retry succeeds`, async () => {
      const configBytes = Buffer.from(`{"os":"linux","row":${JSON.stringify(row.request)}}`);
      const layerBytes = randomBlob(300);
      await pushBlob(plain.url, REPO, configBytes);
      await pushBlob(plain.url, REPO, layerBytes);
      const make = (n: string) => manifestBytes(makeImageManifest({ config: descriptor(MT.ociConfig, configBytes), layers: [descriptor(MT.ociLayer, layerBytes)], annotations: { n } }));
      for (const existed of [false, true]) {
        const tag = `tr-${MANIFEST_TRANSIENT.indexOf(row)}-${existed ? 'retag' : 'new'}`;
        const old = make(`${tag}-old`);
        if (existed) assert.equal((await putManifest(plain.url, REPO, tag, old)).res.status, 201);
        const bytes = make(tag);
        const failed = proxy.failed;
        proxy.failRequests(row.re, 3);
        const { res } = await putManifest(plain.url, REPO, tag, bytes);
        proxy.failRequests(row.re, 0);
        const n = proxy.failed - failed;   // the SDK's 3 attempts, or fewer once its retry quota is spent (above)
        assert.ok(n >= 1 && n <= 3, `the request failed on each of the SDK's attempts (${n})`);
        expect503(res, `${tag}: PUT`);
        const got = await request(`${plain.url}/v2/${REPO}/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
        const listed = ((await request(`${plain.url}/v2/${REPO}/tags/list`)).json().tags as string[]).includes(tag);
        if (got.status === 404) assert.ok(!listed, `${tag}: listed but not found`);
        else {
          assert.equal(got.status, 200, `${tag}: GET ${got.status}`);
          assert.ok(got.body.equals(bytes) || (existed && got.body.equals(old)), `${tag}: the tag names a whole manifest, the new or the old`);
          assert.ok(listed, `${tag}: found but not listed`);
        }
        const byDigest = await request(`${plain.url}/v2/${REPO}/manifests/${sha256(bytes)}`, { headers: { accept: MT.ociManifest } });
        assert.ok(byDigest.status === 404 || (byDigest.status === 200 && byDigest.body.equals(bytes)), `${tag}: by digest ${byDigest.status}`);
        const retry = await putManifest(plain.url, REPO, tag, bytes);
        assert.equal(retry.res.status, 201, `${tag}: retry ${retry.res.status} ${retry.res.text()}`);
        const after = await request(`${plain.url}/v2/${REPO}/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
        assert.ok(after.status === 200 && after.body.equals(bytes), `${tag}: after the retry`);
      }
    });
  }

  test('slow (1 MiB/s): a chunked push and a streamed pull complete, bytes intact', async () => {
    proxy.set('slow', { bytesPerSecond: MiB });
    const blob = randomBlob(MiB + 77);
    const t0 = Date.now();
    const digest = await pushBlob(plain.url, REPO, blob);
    const got = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`);
    assert.ok(got.status === 200 && got.body.equals(blob), `GET: ${got.status}`);
    assert.ok(Date.now() - t0 >= 1500, 'the proxy did slow the store down');
  });

  async function assertBlobAbsentOrWhole(digest: string, blob: Buffer, what: string): Promise<void> {
    const head = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`, { method: 'HEAD' });
    if (head.status === 404) return;
    assert.equal(head.status, 200, `${what}: HEAD ${head.status}`);
    assert.equal(head.headers['content-length'], String(blob.length), `${what}: size`);
    const got = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`);
    assert.ok(got.status === 200 && got.body.equals(blob), `${what}: a visible blob has every byte`);
  }

  test('a PATCH whose store goes down mid-body: 503, the session resumes (or is gone), the retry completes the blob', async (t) => {
    for (const cut of [1 * MiB, 5 * MiB + 200 * 1024, 8 * MiB]) {
      const blob = randomBlob(12 * MiB + 7);
      const digest = sha256(blob);
      let loc = await startUpload(plain.url, REPO);
      const { value, cutReached } = await cutAt(cut, () => request(`${plain.url}${loc}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: blob }));
      assert.ok(cutReached, `PATCH cut at ${cut}: the cut was reached`);
      if (!(value instanceof Error)) expect503(value, `PATCH cut at ${cut}`);
      await assertBlobAbsentOrWhole(digest, blob, `PATCH cut at ${cut}`);
      const st = await request(`${plain.url}${loc}`);
      if (st.status === 204) {
        // Range 0-N: N+1 bytes; "0-0" is also what an empty session says (Distribution's convention)
        const last = Number(/^0-(\d+)$/.exec(st.headers.range ?? '')?.[1] ?? -1);
        const end = last <= 0 ? 0 : last + 1;
        t.diagnostic(`PATCH cut at ${cut}: ${value instanceof Error ? value.message : value.status}, the session resumes at ${end}`);
        assert.ok(end >= 0 && end <= cut, `PATCH cut at ${cut}: the session holds ${end} bytes (at most what reached the store)`);
        loc = locationPath(plain.url, st);
        const rest = blob.subarray(end);
        const p = await request(`${plain.url}${loc}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${end}-${blob.length - 1}` }, body: rest });
        assert.equal(p.status, 202, `PATCH cut at ${cut}: resumed PATCH ${p.status} ${p.text()}`);
        loc = locationPath(plain.url, p);
        const put = await request(`${plain.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: { 'content-length': '0' } });
        assert.equal(put.status, 201, `PATCH cut at ${cut}: commit ${put.status} ${put.text()}`);
      } else {
        t.diagnostic(`PATCH cut at ${cut}: ${value instanceof Error ? value.message : value.status}, the session is gone`);
        expectOciError(st, 404, 'BLOB_UPLOAD_UNKNOWN', `PATCH cut at ${cut}: session`);
        await pushBlob(plain.url, REPO, blob);
      }
      const got = await request(`${plain.url}/v2/${REPO}/blobs/${digest}`);
      assert.ok(got.status === 200 && got.body.equals(blob), `PATCH cut at ${cut}: the blob after the retry`);
    }
  });
});
