// The S3 side of the benchmark: berth and Distribution 2.8.2 (Debian's docker-registry, its s3-aws driver) on the
// tests' Ceph RGW (test/support/s3.ts), each on its own key prefix of the one bucket with the same storage settings,
// a plain SigV4 client (curl --aws-sigv4) for the store's raw PUT/GET rate, and the prefix cleanup. Never stops Ceph
// (other processes share it); deletes only the prefixes it was given. Loopback only.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { run } from '../test/support/clients.js';
import { s3Prefix, s3Store, type S3Settings } from '../test/support/s3.js';
import { blobStream, MiB } from './data.js';
import { agentFor, spawnProc, startBerth, type Creds, type Stack, type Tls } from './stacks.js';

/** The storage settings both servers get (Distribution's s3-aws keys; the rest at their defaults on both). */
export interface S3Config { id: string; label: string; copyThreshold?: number; redirect: boolean }

/** Distribution's s3 keys for `root` under the test store, indented by `indent`. */
function s3Block(s: S3Settings, root: string, c: S3Config, indent: string): string[] {
  return ['s3:', `  region: ${s.region}`, `  regionendpoint: ${s.endpoint}`, `  bucket: ${s.bucket}`, `  rootdirectory: ${root}`,
    `  accesskey: ${s.accessKey}`, `  secretkey: ${s.secretKey}`, `  secure: ${s.endpoint.startsWith('https:')}`, '  v4auth: true',
    ...(c.copyThreshold !== undefined ? [`  multipartcopythresholdsize: ${c.copyThreshold}`] : []),
    'redirect:', `  disable: ${!c.redirect}`].map((l) => indent + l);
}

/** berth, plain HTTP without auth (as Distribution below: the point is the storage path), on S3 under `root`. */
export async function startBerthS3(o: { dir: string; s3: S3Settings; root: string; config: S3Config; tls: Tls; creds: Creds; nodeArgs?: string[]; logLevel?: string; logFile?: string }): Promise<Stack> {
  const local = await mkdtemp(join(o.dir, 'berth-s3-'));
  const s = await startBerth({ dir: o.dir, root: local, tls: o.tls, creds: o.creds, secure: false, logLevel: o.logLevel ?? 'info',
    nodeArgs: o.nodeArgs, logFile: o.logFile, storage: s3Block(o.s3, o.root, o.config, '    ') });
  return { ...s, async stop() { await s.stop(); await rm(local, { recursive: true, force: true }); } };
}

/** Distribution 2.8.2 alone (no nginx, no redis: its in-memory blob-descriptor cache), plain HTTP, on S3 under
 *  `root`. AWS_CA_BUNDLE is removed from its environment: with it set, 2.8.2's s3 driver panics at start. */
export async function startDistributionS3(o: { dir: string; s3: S3Settings; root: string; config: S3Config }): Promise<Stack> {
  const work = await mkdtemp(join(o.dir, 'dist-s3-'));
  const conf = join(work, 'config.yml');
  await writeFile(conf, ['version: 0.1', 'log:', '  level: info', '  formatter: text', '  accesslog:', '    disabled: true',
    'storage:', ...s3Block(o.s3, o.root, o.config, '  '), '  cache:', '    blobdescriptor: inmemory', '  delete:', '    enabled: true',
    '  maintenance:', '    uploadpurging:', '      enabled: false',
    'http:', '  addr: 127.0.0.1:0', '  secret: berth-bench-secret', ''].join('\n'));
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  const p = spawnProc('docker-registry', ['serve', conf], { env });
  try {
    const m = await p.waitFor(/listening on (127\.0\.0\.1:\d+)/, 30_000);
    const url = `http://${m[1]}`;
    const d = agentFor(null);
    p.mute();
    return {
      side: 'anchor', url, host: new URL(url).host, tls: false, auth: false, readyMs: { firstGet: 0 }, dispatcher: d,
      pids: () => [p.pid],
      async stop() { await d.close(); await p.stop(); await rm(work, { recursive: true, force: true }); },
    };
  } catch (e) {
    await p.stop();
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}

/** The store, started through test/support/s3.ts when it is not running (it then keeps running: the tests reuse it
 *  and .ci/run's EXIT trap or `scripts/s3-ceph.sh stop` ends it). `sizeMiB`: the OSD size asked for when this
 *  process is the one that starts it (S3_CEPH_SIZE_MB, read only at start; the environment's value wins). */
export async function benchStore(sizeMiB?: number): Promise<S3Settings> {
  if (sizeMiB && !process.env.S3_CEPH_SIZE_MB) process.env.S3_CEPH_SIZE_MB = String(sizeMiB);
  try {
    return await s3Store();
  } catch (err) {
    throw Object.assign(new Error(`no S3 store (Ceph RGW): ${(err as Error).message.split('\n')[0]}`, { cause: err }), { code: 'BENCH_NO_STORE' });
  }
}

/** The OSD's size in bytes, from the running store's ceph.conf (bluestore_block_size); 4 GiB (the script's
 *  default) when it cannot be read (a store started elsewhere, memstore). */
export function storeCapacity(): number {
  try {
    const conf = readFileSync(join(process.env.S3_CEPH_DIR ?? '/tmp/ceph-s3', 'ceph.conf'), 'utf8');
    const m = conf.match(/^\s*bluestore_block_size\s*=\s*(\d+)/m);
    if (m) return Number(m[1]);
  } catch { /* not ours to read */ }
  return 4096 * MiB;
}

export const newPrefix = (tag: string) => s3Prefix(`bench-${tag}`);

/** Deletes every object and aborts every multipart upload under `root` (a bench prefix, never the bucket). */
export async function deletePrefix(s: S3Settings, root: string): Promise<number> {
  if (!/^\/bench-/.test(root)) throw new Error(`refusing to delete ${root}: not a bench prefix`);
  const sdk = await import('@aws-sdk/client-s3');
  const c = new sdk.S3Client({ region: s.region, endpoint: s.endpoint, forcePathStyle: true,
    credentials: { accessKeyId: s.accessKey, secretAccessKey: s.secretKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const prefix = root.slice(1) + '/';
  let n = 0;
  try {
    for (let round = 0; round < 100; round++) {
      const r = await c.send(new sdk.ListObjectsV2Command({ Bucket: s.bucket, Prefix: prefix, MaxKeys: 1000 }));
      const keys = (r.Contents ?? []).map((o) => o.Key!);
      if (!keys.length) break;
      for (let i = 0; i < keys.length; i += 16) {
        await Promise.all(keys.slice(i, i + 16).map((Key) => c.send(new sdk.DeleteObjectCommand({ Bucket: s.bucket, Key }))));
      }
      n += keys.length;
    }
    for (let round = 0; round < 100; round++) {
      const r = await c.send(new sdk.ListMultipartUploadsCommand({ Bucket: s.bucket, Prefix: prefix }));
      const ups = r.Uploads ?? [];
      if (!ups.length) break;
      await Promise.all(ups.map((u) => c.send(new sdk.AbortMultipartUploadCommand({ Bucket: s.bucket, Key: u.Key!, UploadId: u.UploadId! }))));
      n += ups.length;
    }
  } finally {
    c.destroy();
  }
  return n;
}

// ---------- the store's raw rate: curl --aws-sigv4 (a separate process, as the registries are) ----------

/** A `size`-byte file of generated blob data (bench/data.ts) to PUT; it stays in the page cache. */
export async function rawObjectFile(dir: string, size: number, seed = 900): Promise<string> {
  await mkdir(dir, { recursive: true });
  const f = join(dir, `raw-${size}-${seed}.bin`);
  await pipeline(blobStream(seed, size), createWriteStream(f));
  return f;
}

function curlS3(s: S3Settings, args: string[], key: string, input: string): Promise<{ stdout: string }> {
  // Credentials on stdin (curl -K -), not in argv. curl 7.88 signs the payload hash it is given: UNSIGNED-PAYLOAD.
  return run('curl', ['-sS', '-K', '-', '--aws-sigv4', `aws:amz:${s.region}:s3`, '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD',
    ...args, `${s.endpoint}/${s.bucket}/${key.replace(/^\//, '')}`], { input, timeoutMs: 600_000 });
}

/** PUT `file` to `key` (UNSIGNED-PAYLOAD, one request); returns seconds. */
export async function rawPut(s: S3Settings, key: string, file: string, size: number): Promise<number> {
  const t0 = performance.now();
  const { stdout } = await curlS3(s, ['-T', file, '-o', '/dev/null', '-w', '%{http_code} %{size_upload}'], key, `user = "${s.accessKey}:${s.secretKey}"\n`);
  const secs = (performance.now() - t0) / 1000;
  const [status, n] = stdout.trim().split(' ').map(Number);
  if (status !== 200 || n !== size) throw new Error(`raw PUT ${key}: HTTP ${status}, ${n} of ${size} bytes`);
  return secs;
}

/** GET `key` into /dev/null; returns seconds. */
export async function rawGet(s: S3Settings, key: string, size: number): Promise<number> {
  const t0 = performance.now();
  const { stdout } = await curlS3(s, ['-o', '/dev/null', '-w', '%{http_code} %{size_download}'], key, `user = "${s.accessKey}:${s.secretKey}"\n`);
  const secs = (performance.now() - t0) / 1000;
  const [status, n] = stdout.trim().split(' ').map(Number);
  if (status !== 200 || n !== size) throw new Error(`raw GET ${key}: HTTP ${status}, ${n} of ${size} bytes`);
  return secs;
}
