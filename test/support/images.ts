// Generates container images for tests without pulling anything: gzip'd tar layers streamed to files
// (diff_id and digest hashed while streaming, never a whole layer in memory), written as an OCI image
// layout (`oci:DIR:TAG`), a Docker schema2 image in skopeo's `dir:` layout, or a two-platform OCI index.
// It only writes under the directory it is given; it never talks to a registry.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Descriptor { mediaType: string; digest: string; size: number; platform?: { architecture: string; os: string } }

export interface LayerSpec {
  /** Uncompressed payload bytes (tar headers come on top). */
  size: number;
  /** random: incompressible; text: highly compressible; mixed: half of each (default). */
  kind?: 'random' | 'text' | 'mixed';
}

export interface ImageOptions {
  layers?: LayerSpec[];           // default: 3 layers of 256 KiB, 1 MiB random, 512 KiB text
  /** Same seed → same bytes → same digests. Default: a fresh random seed (unique image). */
  seed?: string;
  architecture?: string;          // default amd64
  os?: string;                    // default linux
}

export interface GeneratedImage {
  /** skopeo source reference, e.g. `oci:/tmp/x:latest` or `dir:/tmp/x`. */
  ref: string;
  mediaType: string;
  manifestDigest: string;
  manifestBytes: Buffer;
  config: Descriptor;
  layers: (Descriptor & { diffId: string })[];
  /** digest → file path of every blob (config and layers), for byte comparisons. */
  blobs: Map<string, string>;
}

export interface GeneratedIndex {
  ref: string;
  mediaType: typeof MT.ociIndex;
  indexDigest: string;
  indexBytes: Buffer;
  images: GeneratedImage[];       // one per platform, in index order
}

export const sha256 = (b: Uint8Array | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

export const DEFAULT_LAYERS: LayerSpec[] = [
  { size: 256 * 1024, kind: 'mixed' },
  { size: 1024 * 1024, kind: 'random' },
  { size: 512 * 1024, kind: 'text' },
];

/** Deterministic byte source: sha256(seed|counter) blocks. Fast enough for a few MB. */
class Prng {
  private n = 0;
  constructor(private readonly seed: string) {}
  bytes(len: number): Buffer {
    const out = Buffer.allocUnsafe(len);
    for (let off = 0; off < len; off += 32) {
      createHash('sha256').update(`${this.seed}|${this.n++}`).digest().copy(out, off, 0, Math.min(32, len - off));
    }
    return out;
  }
}

function textChunk(prng: Prng, len: number): Buffer {
  const word = prng.bytes(4).toString('hex');
  const line = `line ${word} the quick brown fox jumps over the lazy registry\n`;
  return Buffer.from(line.repeat(Math.ceil(len / line.length)).slice(0, len));
}

/** Counts and hashes bytes that pass through. */
class HashTap extends Transform {
  private readonly h = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.h.update(chunk); this.size += chunk.length; cb(null, chunk);
  }
  digest(): string { return 'sha256:' + this.h.digest('hex'); }
}

function writeChunk(w: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (w.write(chunk)) { resolve(); return; }
    const onDrain = () => { w.off('error', onError); resolve(); };
    const onError = (e: Error) => { w.off('drain', onDrain); reject(e); };
    w.once('drain', onDrain).once('error', onError);
  });
}

/** Streams one gzip'd tar layer into blobsDir; returns its descriptor and diff_id. */
async function writeLayer(blobsDir: string, spec: LayerSpec, prng: Prng, index: number, mediaType: string) {
  const pack = tar.pack();
  const raw = new HashTap();
  const gz = new HashTap();
  const tmp = join(blobsDir, `.tmp-${randomUUID()}`);
  const produce = (async () => {
    const kind = spec.kind ?? 'mixed';
    const files: { name: string; size: number; text: boolean }[] = kind === 'mixed'
      ? [{ name: 'random.bin', size: Math.ceil(spec.size / 2), text: false }, { name: 'text.txt', size: Math.floor(spec.size / 2), text: true }]
      : [{ name: kind === 'text' ? 'text.txt' : 'random.bin', size: spec.size, text: kind === 'text' }];
    await new Promise<void>((res, rej) => pack.entry({ name: `layer${index}/`, type: 'directory', mode: 0o755, mtime: new Date(0) }, (e) => (e ? rej(e) : res())));
    for (const f of files) {
      let done!: () => void; let fail!: (e: Error) => void;
      const finished = new Promise<void>((res, rej) => { done = res; fail = rej; });
      // streamx's Writable: write() → boolean, 'drain', 'error' and end() as in node's (types differ).
      const entry = pack.entry({ name: `layer${index}/${f.name}`, size: f.size, mode: 0o644, mtime: new Date(0) }, (e) => (e ? fail(e) : done())) as unknown as Writable;
      for (let off = 0; off < f.size; off += 64 * 1024) {
        const n = Math.min(64 * 1024, f.size - off);
        await writeChunk(entry, f.text ? textChunk(prng, n) : prng.bytes(n));
      }
      entry.end();
      await finished;
    }
    pack.finalize();
  })();
  await Promise.all([produce, pipeline(Readable.from(pack), raw, createGzip(), gz, createWriteStream(tmp))]);
  const digest = gz.digest();
  await rename(tmp, join(blobsDir, digest.slice('sha256:'.length)));
  return { mediaType, digest, size: gz.size, diffId: raw.digest() };
}

async function putBlob(blobsDir: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  await writeFile(join(blobsDir, digest.slice('sha256:'.length)), bytes);
  return digest;
}

/** Writes config + layer blobs and the manifest (in `format`) as blobs into blobsDir. */
async function buildImage(blobsDir: string, o: ImageOptions, format: 'oci' | 'docker') {
  await mkdir(blobsDir, { recursive: true });
  const prng = new Prng(o.seed ?? randomBytes(16).toString('hex'));
  const layerMt = format === 'oci' ? MT.ociLayer : MT.dockerLayer;
  const layers = [];
  for (const [i, spec] of (o.layers ?? DEFAULT_LAYERS).entries()) layers.push(await writeLayer(blobsDir, spec, prng, i, layerMt));
  const configJson = {
    created: '2024-01-01T00:00:00Z',
    architecture: o.architecture ?? 'amd64',
    os: o.os ?? 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `berth-test layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(configJson));
  const config: Descriptor = { mediaType: format === 'oci' ? MT.ociConfig : MT.dockerConfig, digest: await putBlob(blobsDir, configBytes), size: configBytes.length };
  const mediaType = format === 'oci' ? MT.ociManifest : MT.dockerManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config,
    layers: layers.map(({ mediaType: m, digest, size }) => ({ mediaType: m, digest, size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const manifestDigest = await putBlob(blobsDir, manifestBytes);
  const blobs = new Map<string, string>([config, ...layers].map((d) => [d.digest, join(blobsDir, d.digest.slice(7))]));
  return { mediaType, manifestDigest, manifestBytes, config, layers, blobs };
}

async function writeLayoutIndex(dir: string, d: Descriptor, tag: string): Promise<void> {
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...d, annotations: { 'org.opencontainers.image.ref.name': tag } }] };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

/** OCI image layout with one OCI image manifest tagged `tag` (default latest). Source ref `oci:DIR:TAG`. */
export async function writeOciLayout(dir: string, o: ImageOptions & { tag?: string } = {}): Promise<GeneratedImage> {
  const tag = o.tag ?? 'latest';
  const img = await buildImage(join(dir, 'blobs', 'sha256'), o, 'oci');
  await writeLayoutIndex(dir, { mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifestBytes.length }, tag);
  return { ref: `oci:${dir}:${tag}`, ...img };
}

/** Docker schema2 image in skopeo's `dir:` layout (manifest.json + blobs named by hex digest), so the
 *  pushed manifest bytes, and therefore its digest, are exactly ours. Source ref `dir:DIR`. */
export async function writeDockerDir(dir: string, o: ImageOptions = {}): Promise<GeneratedImage> {
  await mkdir(dir, { recursive: true });
  const img = await buildImage(dir, o, 'docker');
  await rename(join(dir, img.manifestDigest.slice(7)), join(dir, 'manifest.json'));
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  return { ref: `dir:${dir}`, ...img };
}

/** OCI layout whose tag points at an image index of one image per platform (default amd64 + arm64). */
export async function writeOciIndexLayout(
  dir: string,
  o: Omit<ImageOptions, 'architecture' | 'os'> & { tag?: string; platforms?: { architecture: string; os: string }[] } = {},
): Promise<GeneratedIndex> {
  const tag = o.tag ?? 'latest';
  const blobsDir = join(dir, 'blobs', 'sha256');
  const platforms = o.platforms ?? [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }];
  const images: GeneratedImage[] = [];
  for (const [i, p] of platforms.entries()) {
    const img = await buildImage(blobsDir, { ...o, ...p, seed: o.seed && `${o.seed}-${i}` }, 'oci');
    images.push({ ref: '', ...img });   // per-platform images are reached through the index, not a tag
  }
  const index = {
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: images.map((img, i) => ({ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifestBytes.length, platform: platforms[i] })),
  };
  const indexBytes = Buffer.from(JSON.stringify(index, null, 2));
  const indexDigest = await putBlob(blobsDir, indexBytes);
  await writeLayoutIndex(dir, { mediaType: MT.ociIndex, digest: indexDigest, size: indexBytes.length }, tag);
  return { ref: `oci:${dir}:${tag}`, mediaType: MT.ociIndex, indexDigest, indexBytes, images };
}
