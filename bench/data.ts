// Benchmark payloads: big generated blobs streamed without buffering (a fixed random pool, each 1 MiB block
// stamped with the seed and block number, so blobs differ and cost almost nothing to make) and multi-layer
// OCI image layouts (gzip'd tar layers, mixed random/text data) for skopeo. Writes only under the dir it is
// given; never talks to a registry. test/support/images.ts's PRNG (sha256 per 32 bytes) is too slow for 1 GB.
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zc } from 'node:zlib';
import tar from 'tar-stream';
import { MT } from '../test/support/images.js';

export const MiB = 1024 * 1024;
const BLOCK = MiB;
const POOL_BLOCKS = 64;
const pool = randomFillSync(Buffer.allocUnsafe(POOL_BLOCKS * BLOCK));

/** Block `i` of the blob named by `seed`: a pool block with a 32-byte stamp (fresh buffer each call). */
function block(seed: number, i: number, len: number): Buffer {
  const start = ((i * 7 + seed * 13) % POOL_BLOCKS) * BLOCK;
  const b = Buffer.allocUnsafe(len);
  pool.copy(b, 0, start, start + len);
  b.writeUInt32LE(seed >>> 0, 0); b.writeUInt32LE(i >>> 0, 4); b.writeDoubleLE(seed * 1e6 + i, 8);
  return b;
}

/** A Readable of `size` bytes for blob `seed` (1 MiB chunks, pulled on demand: no buffering). */
export function blobStream(seed: number, size: number, from = 0): Readable {
  let off = from;
  return new Readable({
    highWaterMark: 2 * BLOCK,
    read() {
      if (off >= size) { this.push(null); return; }
      const i = Math.floor(off / BLOCK);
      const inBlock = off - i * BLOCK;
      const len = Math.min(BLOCK - inBlock, size - off);
      const b = block(seed, i, BLOCK);
      off += len;
      this.push(inBlock === 0 && len === BLOCK ? b : b.subarray(inBlock, inBlock + len));
    },
  });
}

/** sha256 digest of blob `seed` (streamed). */
export async function blobDigest(seed: number, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of blobStream(seed, size)) h.update(c as Buffer);
  return 'sha256:' + h.digest('hex');
}

export interface LayerSize { randomMiB: number; textMiB: number }
export interface BenchImage { ref: string; dir: string; wireBytes: number; layers: number; /** its largest layer */ biggest: { digest: string; size: number } }

class Tap extends Transform {
  private readonly h = createHash('sha256');
  size = 0;
  override _transform(c: Buffer, _e: BufferEncoding, cb: TransformCallback): void { this.h.update(c); this.size += c.length; cb(null, c); }
  digest(): string { return 'sha256:' + this.h.digest('hex'); }
}

function write(w: Writable, chunk: Buffer): Promise<void> {
  return new Promise((res, rej) => {
    if (w.write(chunk)) { res(); return; }
    const d = () => { w.off('error', e); res(); };
    const e = (err: Error) => { w.off('drain', d); rej(err); };
    w.once('drain', d).once('error', e);
  });
}

const TEXT = Buffer.from('line %d the quick brown fox jumps over the lazy registry, again and again\n'.repeat(15_000).slice(0, BLOCK));

async function layer(blobsDir: string, seed: number, s: LayerSize) {
  const pack = tar.pack();
  const raw = new Tap(); const gz = new Tap();
  const tmp = join(blobsDir, `.tmp-${seed}`);
  const produce = (async () => {
    for (const f of [{ name: 'random.bin', mib: s.randomMiB, text: false }, { name: 'text.txt', mib: s.textMiB, text: true }]) {
      if (f.mib === 0) continue;
      let done!: () => void; let fail!: (e: Error) => void;
      const finished = new Promise<void>((res, rej) => { done = res; fail = rej; });
      const entry = pack.entry({ name: `l${seed}/${f.name}`, size: f.mib * MiB, mode: 0o644, mtime: new Date(0) }, (e) => (e ? fail(e) : done())) as unknown as Writable;
      for (let i = 0; i < f.mib; i++) {
        const b = f.text ? Buffer.from(TEXT) : block(seed, i, BLOCK);
        if (f.text) b.writeUInt32LE(i, 0);
        await write(entry, b);
      }
      entry.end();
      await finished;
    }
    pack.finalize();
  })();
  await Promise.all([produce, pipeline(Readable.from(pack), raw, createGzip({ level: zc.Z_BEST_SPEED }), gz, createWriteStream(tmp))]);
  const digest = gz.digest();
  await rename(tmp, join(blobsDir, digest.slice(7)));
  return { mediaType: MT.ociLayer, digest, size: gz.size, diffId: raw.digest() };
}

/** Writes an OCI image layout `oci:DIR:latest` with the given layers; `seed` makes its bytes unique. */
export async function writeBenchImage(dir: string, seed: number, layers: LayerSize[]): Promise<BenchImage> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const ls = [];
  for (const [i, s] of layers.entries()) ls.push(await layer(blobsDir, seed * 1000 + i, s));
  const put = async (b: Buffer) => { const d = 'sha256:' + createHash('sha256').update(b).digest('hex'); await writeFile(join(blobsDir, d.slice(7)), b); return d; };
  const cfg = Buffer.from(JSON.stringify({
    created: '2024-01-01T00:00:00Z', architecture: 'amd64', os: 'linux',
    config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) },
  }));
  const config = { mediaType: MT.ociConfig, digest: await put(cfg), size: cfg.length };
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MT.ociManifest, config,
    layers: ls.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  }));
  const md = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MT.ociManifest, digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }));
  return { ref: `oci:${dir}:latest`, dir, wireBytes: ls.reduce((a, l) => a + l.size, 0) + cfg.length + manifest.length, layers: layers.length,
    biggest: ls.reduce((a, l) => (l.size > a.size ? l : a)) };
}
