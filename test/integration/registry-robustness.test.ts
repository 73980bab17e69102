// Robustness of the embedded registry beyond single requests: concurrent pushes of one blob and of one
// tag, an upload resumed by a NEW app on the same root (the running hash must be rebuilt from the stored
// bytes), a client that vanishes mid-PATCH (session stays resumable, no 5xx/error log), and a 64 MiB blob
// streamed through without the process buffering it. No sleeps: waits are on responses and log lines.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createLogger } from '../../src/log/logger.js';
import { startRegistry } from '../support/registry-server.js';
import {
  MT, descriptor, locationPath, makeImageManifest, pushBlob, putManifest, randomBlob, sha256, startUpload, withQuery,
} from '../support/oci-client.js';
import { request } from '../support/http.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const octet = { 'content-type': 'application/octet-stream' };

/** A pino destination that keeps parsed lines and lets a test wait for one. */
function logCapture() {
  const lines: any[] = [];
  const waiters: { pred: (l: any) => boolean; resolve: (l: any) => void }[] = [];
  let buf = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1);
        lines.push(line);
        for (const w of [...waiters]) if (w.pred(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
      }
      cb();
    },
  });
  return {
    log: createLogger({ level: 'info', destination: stream }),
    lines,
    /** The first line (logged already or within the deadline) for which `pred` is true. */
    waitFor(what: string, pred: (l: any) => boolean, timeoutMs = 10_000): Promise<any> {
      const hit = lines.find(pred);
      return hit ? Promise.resolve(hit) : withDeadline(new Promise((resolve) => waiters.push({ pred, resolve })), timeoutMs,
        `log line: ${what}`, () => `last lines: ${JSON.stringify(lines.slice(-5))}`);
    },
    /** Lines at error level or above, or describing a 5xx. */
    failures: () => lines.filter((l) => l.level >= 50 || (typeof l.status === 'number' && l.status >= 500)),
  };
}

describe('registry robustness', () => {
  it('8 concurrent monolithic pushes of the same blob (separate sessions) → all 201, blob intact', async (t) => {
    const cap = logCapture();
    const reg = await startRegistry({ log: cap.log });
    t.after(() => reg.close());
    const bytes = randomBlob(256 * 1024); const digest = sha256(bytes);
    const results = await Promise.all(Array.from({ length: 8 }, async () => {
      const loc = await startUpload(reg.url, 'rb/same');
      return request(`${reg.url}${withQuery(loc, { digest })}`, { method: 'PUT', headers: octet, body: bytes });
    }));
    assert.deepEqual(results.map((r) => r.status), Array(8).fill(201), results.map((r) => r.text()).join(' '));
    for (const r of results) assert.equal(r.headers['docker-content-digest'], digest);
    const get = await request(`${reg.url}/v2/rb/same/blobs/${digest}`);
    assert.equal(get.status, 200);
    assert.equal(sha256(get.body), digest);
    assert.deepEqual(cap.failures(), []);
  });

  it('8 concurrent chunked uploads of the same blob in two repositories → all 201, blob intact', async (t) => {
    const reg = await startRegistry();
    t.after(() => reg.close());
    const bytes = randomBlob(200_000); const digest = sha256(bytes);
    const results = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const name = `rb/chunk${i % 2}`;
      let loc = await startUpload(reg.url, name);
      for (let off = 0; off < bytes.length; off += 65_536) {
        const part = bytes.subarray(off, off + 65_536);
        const p = await request(`${reg.url}${loc}`, { method: 'PATCH', headers: { ...octet, 'content-range': `${off}-${off + part.length - 1}` }, body: part });
        assert.equal(p.status, 202, p.text());
        loc = locationPath(reg.url, p);
      }
      return request(`${reg.url}${withQuery(loc, { digest })}`, { method: 'PUT' });
    }));
    assert.deepEqual(results.map((r) => r.status), Array(8).fill(201));
    for (const name of ['rb/chunk0', 'rb/chunk1']) assert.equal(sha256((await request(`${reg.url}/v2/${name}/blobs/${digest}`)).body), digest);
  });

  it('8 concurrent PUTs of the same tag with different manifests → tag points to one of them, all readable', async (t) => {
    const cap = logCapture();
    const reg = await startRegistry({ log: cap.log });
    t.after(() => reg.close());
    const layer = randomBlob(1024);
    await pushBlob(reg.url, 'rb/tag', layer);
    const manifests = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', variant: `v${i}` }));
      await pushBlob(reg.url, 'rb/tag', cfg);
      const bytes = Buffer.from(JSON.stringify(makeImageManifest({ config: descriptor(MT.ociConfig, cfg), layers: [descriptor(MT.ociLayer, layer)] })));
      return { bytes, digest: sha256(bytes) };
    }));
    const puts = await Promise.all(manifests.map((m) => putManifest(reg.url, 'rb/tag', 'race', m.bytes)));
    assert.deepEqual(puts.map((p) => p.res.status), Array(8).fill(201), puts.map((p) => p.res.text()).join(' '));

    const byTag = await request(`${reg.url}/v2/rb/tag/manifests/race`, { headers: { accept: MT.ociManifest } });
    assert.equal(byTag.status, 200);
    const winner = manifests.find((m) => m.digest === byTag.headers['docker-content-digest']);
    assert.ok(winner, `tag points to an unknown digest ${byTag.headers['docker-content-digest']}`);
    assert.deepEqual(byTag.body, winner.bytes, 'tag body must be exactly the manifest its digest names');
    for (const m of manifests) {
      const get = await request(`${reg.url}/v2/rb/tag/manifests/${m.digest}`, { headers: { accept: MT.ociManifest } });
      assert.equal(get.status, 200);
      assert.deepEqual(get.body, m.bytes);
    }
    assert.deepEqual((await request(`${reg.url}/v2/rb/tag/tags/list`)).json().tags, ['race']);
    assert.deepEqual(cap.failures(), []);
  });

  it('an upload started on one app resumes on a NEW app over the same root (hash rebuilt from stored bytes)', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'berth-restart-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const bytes = randomBlob(300_000); const digest = sha256(bytes);
    const cut = 123_457;

    const first = await startRegistry({ root });
    let loc = await startUpload(first.url, 'rb/restart');
    const p1 = await request(`${first.url}${loc}`, { method: 'PATCH', headers: { ...octet, 'content-range': `0-${cut - 1}` }, body: bytes.subarray(0, cut) });
    assert.equal(p1.status, 202, p1.text());
    loc = locationPath(first.url, p1);
    await first.close();

    const second = await startRegistry({ root });
    t.after(() => second.close());
    const status = await request(`${second.url}${loc}`);
    assert.equal(status.status, 204, status.text());
    assert.equal(status.headers.range, `0-${cut - 1}`);
    const p2 = await request(`${second.url}${locationPath(second.url, status)}`, {
      method: 'PATCH',
      headers: { ...octet, 'content-range': `${cut}-${bytes.length - 1}` }, body: bytes.subarray(cut),
    });
    assert.equal(p2.status, 202, p2.text());
    assert.equal(p2.headers.range, `0-${bytes.length - 1}`);
    const put = await request(`${second.url}${withQuery(locationPath(second.url, p2), { digest })}`, { method: 'PUT' });
    assert.equal(put.status, 201, put.text());
    const get = await request(`${second.url}/v2/rb/restart/blobs/${digest}`);
    assert.deepEqual(get.body, bytes);
  });

  it('a restart between the last PATCH and the PUT: right digest → 201, wrong digest → 400 and nothing visible', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'berth-restart-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const good = randomBlob(70_000); const bad = randomBlob(70_000);
    const first = await startRegistry({ root });
    const locs: string[] = [];
    for (const bytes of [good, bad]) {
      const p = await request(`${first.url}${await startUpload(first.url, 'rb/restart2')}`, { method: 'PATCH', headers: octet, body: bytes });
      assert.equal(p.status, 202);
      locs.push(locationPath(first.url, p));
    }
    await first.close();
    const second = await startRegistry({ root });
    t.after(() => second.close());
    const ok = await request(`${second.url}${withQuery(locs[0], { digest: sha256(good) })}`, { method: 'PUT' });
    assert.equal(ok.status, 201, ok.text());
    assert.deepEqual((await request(`${second.url}/v2/rb/restart2/blobs/${sha256(good)}`)).body, good);
    const no = await request(`${second.url}${withQuery(locs[1], { digest: sha256('not it') })}`, { method: 'PUT' });
    assert.equal(no.status, 400, no.text());
    for (const d of [sha256('not it'), sha256(bad)]) assert.equal((await request(`${second.url}/v2/rb/restart2/blobs/${d}`, { method: 'HEAD' })).status, 404);
  });

  it('a client that disconnects mid-PATCH leaves the session resumable and logs no 5xx/error', { timeout: 30_000 }, async (t) => {
    const cap = logCapture();
    const reg = await startRegistry({ log: cap.log });
    t.after(() => reg.close());
    const bytes = randomBlob(3 * 1024 * 1024); const digest = sha256(bytes);
    let loc = await startUpload(reg.url, 'rb/abort');
    const head = 100;
    const p0 = await request(`${reg.url}${loc}`, { method: 'PATCH', headers: { ...octet, 'content-range': `0-${head - 1}` }, body: bytes.subarray(0, head) });
    assert.equal(p0.status, 202);
    loc = locationPath(reg.url, p0);

    // Stream 1 MiB of a PATCH that claims 2.9 MiB more, then destroy the socket.
    const u = new URL(reg.url);
    let answered: number | undefined;
    await withDeadline(new Promise<void>((resolve) => {
      const req = httpRequest({ host: u.hostname, port: u.port, method: 'PATCH', path: loc, agent: false,
        headers: { ...octet, 'content-range': `${head}-${bytes.length - 1}`, 'content-length': String(bytes.length - head) } });
      req.on('error', () => resolve());                  // our own destroy surfaces here
      req.on('response', (res) => { answered = res.statusCode; res.resume(); resolve(); });
      req.write(bytes.subarray(head, head + 1024 * 1024), () => req.destroy());
    }), 10_000, 'the first MiB of the PATCH to be written and the socket destroyed');
    assert.equal(answered, undefined, `server answered ${answered} to a PATCH still in flight`);
    // The server logs the disconnect once it has settled the session (router/uploads handler).
    await cap.waitFor('client disconnected', (l) => /client disconnected/.test(String(l.msg)));

    const status = await request(`${reg.url}${loc}`);
    assert.equal(status.status, 204, status.text());
    const m = /^0-(\d+)$/.exec(String(status.headers.range));
    assert.ok(m, `Range ${status.headers.range}`);
    const have = Number(m[1]) + 1;
    assert.ok(have >= head && have <= head + 1024 * 1024, `stored ${have} bytes`);
    const rest = await request(`${reg.url}${locationPath(reg.url, status)}`, {
      method: 'PATCH',
      headers: { ...octet, 'content-range': `${have}-${bytes.length - 1}` }, body: bytes.subarray(have),
    });
    assert.equal(rest.status, 202, rest.text());
    const put = await request(`${reg.url}${withQuery(locationPath(reg.url, rest), { digest })}`, { method: 'PUT' });
    assert.equal(put.status, 201, put.text());
    assert.equal(sha256((await request(`${reg.url}/v2/rb/abort/blobs/${digest}`)).body), digest);
    assert.deepEqual(cap.failures(), [], 'a client disconnect must not be logged as an error');
    assert.ok(!cap.lines.some((l) => l.status === 400 && /abort/.test(String(l.url))), 'a disconnect is not a 400');
  });

  it('a monolithic upload that fails leaves no session behind (disconnect mid-body, wrong digest)', { timeout: 30_000 }, async (t) => {
    const cap = logCapture();
    const reg = await startRegistry({ log: cap.log });
    t.after(() => reg.close());
    const uploadsDir = join(reg.root, 'docker', 'registry', 'v2', 'repositories', 'rb', 'mono', '_uploads');
    const sessions = async () => (await readdir(uploadsDir).catch(() => [] as string[])).length;
    const bytes = randomBlob(3 * 1024 * 1024); const digest = sha256(bytes);

    // POST ?digest= with 3 MiB declared, 1 MiB sent, then the socket destroyed: the client never got an id.
    const u = new URL(reg.url);
    await withDeadline(new Promise<void>((resolve) => {
      const req = httpRequest({ host: u.hostname, port: u.port, method: 'POST', path: `/v2/rb/mono/blobs/uploads/?digest=${digest}`,
        agent: false, headers: { ...octet, 'content-length': String(bytes.length) } });
      req.on('error', () => resolve());
      req.on('response', (res) => { res.resume(); resolve(); });
      req.write(bytes.subarray(0, 1024 * 1024), () => req.destroy());
    }), 10_000, 'the first MiB of the POST to be written and the socket destroyed');
    await cap.waitFor('client disconnected', (l) => /client disconnected/.test(String(l.msg)));
    await waitUntil('the failed session to be removed', async () => (await sessions()) === 0, { detail: () => uploadsDir });
    assert.equal((await request(`${reg.url}/v2/rb/mono/blobs/${digest}`, { method: 'HEAD' })).status, 404);

    // The whole body, but not the bytes the digest names: 400 and, again, nothing left.
    const wrong = await request(`${reg.url}/v2/rb/mono/blobs/uploads/?digest=${sha256('other')}`, { method: 'POST', headers: octet, body: bytes });
    assert.equal(wrong.status, 400, wrong.text());
    assert.equal(await sessions(), 0);
    assert.deepEqual(cap.failures(), [], 'neither failure is logged as an error');
  });

  it('a 64 MiB blob streams through (PATCH, PUT, GET) without the process buffering it', { timeout: 120_000 }, async (t) => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const reg = await startRegistry();
    t.after(() => reg.close());
    const TOTAL = 64 * 1024 * 1024; const CHUNK = 64 * 1024;
    const seed = randomBlob(CHUNK);
    const hash = createHash('sha256');
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= TOTAL) { this.push(null); return; }
        const c = Buffer.from(seed); c.writeUInt32BE(sent / CHUNK, 0);
        hash.update(c); sent += c.length; this.push(c);
      },
    });
    gc();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    // Collect garbage as we go so the sample shows live memory rather than V8's lazy collection of 64 KiB chunks.
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); gc(); }, 20);
    try {
      const loc = await startUpload(reg.url, 'rb/big');
      const patch = await request(`${reg.url}${loc}`, { method: 'PATCH', headers: octet, body });
      assert.equal(patch.status, 202, patch.text());
      assert.equal(patch.headers.range, `0-${TOTAL - 1}`);
      const digest = `sha256:${hash.digest('hex')}`;
      const put = await request(`${reg.url}${withQuery(locationPath(reg.url, patch), { digest })}`, { method: 'PUT' });
      assert.equal(put.status, 201, put.text());
      // GET, hashing as it arrives (request() would buffer the body in the test itself).
      const u = new URL(reg.url);
      const got = await withDeadline(new Promise<{ status: number; digest: string; bytes: number }>((resolve, reject) => {
        httpRequest({ host: u.hostname, port: u.port, path: `/v2/rb/big/blobs/${digest}` }, (res) => {
          const h = createHash('sha256'); let n = 0;
          res.on('data', (c: Buffer) => { h.update(c); n += c.length; });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: `sha256:${h.digest('hex')}`, bytes: n }));
          res.on('error', reject);
        }).on('error', reject).end();
      }), 60_000, 'the streamed GET of the 64 MiB blob');
      assert.deepEqual(got, { status: 200, digest, bytes: TOTAL });
    } finally { clearInterval(sampler); }
    peak = Math.max(peak, process.memoryUsage().rss);
    const growth = (peak - baseline) / (1024 * 1024);
    t.diagnostic(`rss baseline ${(baseline / 1048576).toFixed(1)} MiB, peak growth ${growth.toFixed(1)} MiB`);
    // Lenient (observed 15-30 MiB on a shared 2-core box): a buffered 64 MiB body alone would add ≥ 64 MiB.
    assert.ok(growth < 48, `RSS grew by ${growth.toFixed(1)} MiB while streaming 64 MiB`);
  });
});
