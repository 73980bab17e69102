// Blob GETs through the embedded registry on the filesystem driver, at sizes that span several of the
// reader's chunks: whole and ranged responses are byte-exact across chunk boundaries, concurrent and
// slow responses never see each other's bytes although read buffers are recycled between them, and a
// client that goes away mid-body leaves no open file behind. Also the reader's recycle contract itself.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FilesystemDriver } from '../../src/registry/storage/drivers/filesystem.js';
import { recyclerOf } from '../../src/util/recycle.js';
import { startRegistry } from '../support/registry-server.js';
import { pushBlob, randomBlob, sha256 } from '../support/oci-client.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil, withDeadline } from '../support/wait.js';

const MiB = 1024 * 1024;

/** GET with a client that reads `delayEvery` chunks then waits a turn of the event loop (a slow reader). */
function slowGet(base: string, path: string, headers: Record<string, string> = {}, delayEvery = 0): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  const u = new URL(base);
  return withDeadline(new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(Buffer.from(c));
        if (delayEvery && ++n % delayEvery === 0) { res.pause(); setImmediate(() => res.resume()); }
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  }), 30_000, `the slow GET of ${path}`);
}

/** Open descriptors of this process that point at `file`. */
function openFdsOn(file: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try { if (readlinkSync(`/proc/self/fd/${fd}`) === file) n++; } catch { /* closed meanwhile */ }
  }
  return n;
}

/** The server closes the file asynchronously (after the response settles): poll, no fixed sleep. */
async function closedEventually(file: string, when: string): Promise<void> {
  await waitUntil(`the blob file to be closed ${when}`, () => openFdsOn(file) === 0,
    { timeoutMs: 5000, detail: () => `${openFdsOn(file)} fds still open` });
}

function dataFile(root: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

describe('blob download (filesystem driver)', () => {
  it('whole and ranged GETs are byte-exact across read-chunk boundaries', async (t) => {
    const reg = await startRegistry();
    t.after(() => reg.close());
    const blob = randomBlob(5 * MiB + 123);
    const digest = await pushBlob(reg.url, 'dl/ranges', blob);
    const whole = await request(`${reg.url}/v2/dl/ranges/blobs/${digest}`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['content-length'], String(blob.length));
    assert.equal(sha256(whole.body), digest);
    const size = blob.length;
    const cases: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 0],
      ['bytes=2097150-2097153', 2097150, 2097153],          // across the first 2 MiB chunk boundary
      ['bytes=1000-4500000', 1000, 4500000],                // several chunks, ends mid-chunk
      [`bytes=${4 * MiB}-`, 4 * MiB, size - 1],             // starts on a boundary, to the end
      ['bytes=-10', size - 10, size - 1],                   // suffix
      [`bytes=${size - 1}-${size + 100}`, size - 1, size - 1], // clamped
    ];
    for (const [range, start, end] of cases) {
      const r = await request(`${reg.url}/v2/dl/ranges/blobs/${digest}`, { headers: { range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${size}`, range);
      assert.equal(r.headers['content-length'], String(end - start + 1), range);
      assert.ok(r.body.equals(blob.subarray(start, end + 1)), `${range}: body differs`);
    }
  });

  it('concurrent fast and slow GETs of different blobs never see each other\'s bytes', async (t) => {
    const reg = await startRegistry();
    t.after(() => reg.close());
    const blobs = [randomBlob(6 * MiB + 1), randomBlob(6 * MiB - 7), randomBlob(3 * MiB)];
    const digests = await Promise.all(blobs.map((b, i) => pushBlob(reg.url, `dl/conc${i}`, b)));
    for (let round = 0; round < 2; round++) {
      const gets = Array.from({ length: 12 }, (_, k) => {
        const i = k % blobs.length;
        const ranged = k % 4 === 3;
        return slowGet(reg.url, `/v2/dl/conc${i}/blobs/${digests[i]}`, ranged ? { range: 'bytes=1048577-' } : {}, k % 2 ? 3 : 0)
          .then((r) => {
            const want = ranged ? blobs[i]!.subarray(1048577) : blobs[i]!;
            assert.equal(r.status, ranged ? 206 : 200);
            assert.ok(r.body.equals(want), `GET ${k} (blob ${i}${ranged ? ', ranged' : ''}) differs`);
          });
      });
      await Promise.all(gets);
    }
  });

  it('a client that disconnects mid-body: the file is closed and the next GET is whole', async (t) => {
    const reg = await startRegistry();
    t.after(() => reg.close());
    const blob = randomBlob(24 * MiB);
    const digest = await pushBlob(reg.url, 'dl/abort', blob);
    const file = dataFile(reg.root, digest);
    const u = new URL(reg.url);
    await withDeadline(new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: `/v2/dl/abort/blobs/${digest}`, agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', (e) => { if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e); });
      req.end();
    }), 10_000, 'the first bytes of the blob');
    await closedEventually(file, 'after the client went away');
    const again = await request(`${reg.url}/v2/dl/abort/blobs/${digest}`);
    assert.equal(again.status, 200);
    assert.equal(sha256(again.body), digest);
    await closedEventually(file, 'after a whole GET');
  });

  it('reader(): recycled chunks are reused, double and foreign recycles are ignored, bytes stay exact', async (t) => {
    const dir = await makeTempDir('berth-recycle-');
    t.after(() => dir.cleanup());
    const d = new FilesystemDriver({ rootdirectory: dir.path });
    const data = randomBlob(9 * MiB + 5);
    await writeFile(join(dir.path, 'f'), data);
    const r = await d.reader('/f');
    const recycle = recyclerOf(r);
    assert.ok(recycle, 'the filesystem reader lends recyclable chunks');
    const copies: Buffer[] = [];
    const memories = new Set<ArrayBufferLike>();
    await withDeadline(new Promise<void>((resolve, reject) => {
      r.on('data', (c: Buffer) => {
        copies.push(Buffer.from(c));
        memories.add(c.buffer);
        recycle(c);
        recycle(c);                       // a second recycle of the same chunk must not lend it twice
        recycle(Buffer.alloc(16));        // nor may a chunk it never lent enter its pool
      });
      r.once('end', resolve);
      r.once('error', reject);
    }), 30_000, 'the end of the recycled read');
    assert.ok(Buffer.concat(copies).equals(data), 'bytes differ');
    assert.ok(memories.size < copies.length, `expected reuse: ${copies.length} chunks in ${memories.size} buffers`);

    // Without recycling (an ordinary consumer) every chunk stays valid while held.
    const held: Buffer[] = [];
    for await (const c of await d.reader('/f', { offset: 3 })) held.push(c as Buffer);
    assert.ok(Buffer.concat(held).equals(data.subarray(3)));
  });
});
