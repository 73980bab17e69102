// Helpers for tests that run several berth processes ("replicas") on one S3 key prefix of the test Ceph RGW
// (test/support/s3.ts): a replica set (a fresh prefix, optionally a redis-server reached over TCP, the processes,
// all removed by close()), the gateway.yml of such a replica (optionally with a shared redis as Distribution
// configures it: `redis:` plus `storage.cache.blobdescriptor: redis`), a driver on the same prefix to look at
// the store directly (raw keys, including the hidden `~tail` objects, and open multipart uploads), and the
// removal of a test's prefix afterwards.
import { createClient } from 'redis';
import { S3Driver, checkS3Parameters } from '../../src/registry/storage/drivers/s3.js';
import { startBerth, type ServerProcess } from './processes.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { s3Prefix, s3Store, type S3Settings } from './s3.js';
import { forwardTcpToUnix, type TcpForward } from './tcp-forward.js';
import { waitUntil } from './wait.js';

export interface ReplicaYamlOptions {
  /** `host:port` of a redis shared by the replicas: adds `redis.addr` and `storage.cache.blobdescriptor: redis`. */
  redisAddr?: string;
  /** Default warn. */
  logLevel?: string;
  /** Default true: blob GETs stream through berth (the test client never follows a presigned redirect). */
  redirectDisabled?: boolean;
  readonly?: boolean;
}

export function replicaYaml(s: S3Settings, root: string, o: ReplicaYamlOptions = {}): string {
  return [
    'listen: 127.0.0.1:0', 'upstreams:', '  v2: embedded', 'registry:', '  storage:', '    s3:',
    `      region: ${s.region}`, `      regionendpoint: ${s.endpoint}`, `      bucket: ${s.bucket}`, `      rootdirectory: ${root}`,
    `      accesskey: ${s.accessKey}`, `      secretkey: ${s.secretKey}`, `      secure: ${s.endpoint.startsWith('https:')}`,
    '    delete:', '      enabled: true',
    '    redirect:', `      disable: ${o.redirectDisabled ?? true}`,
    ...(o.readonly ? ['    maintenance:', '      readonly:', '        enabled: true'] : []),
    ...(o.redisAddr ? ['    cache:', '      blobdescriptor: redis', '  redis:', `    addr: ${o.redisAddr}`] : []),
    'log:', `  level: ${o.logLevel ?? 'warn'}`, '',
  ].join('\n');
}

/** A driver on the test's prefix (close() it). */
export function prefixDriver(s: S3Settings, root: string): S3Driver {
  return new S3Driver(checkS3Parameters({
    region: s.region, regionendpoint: s.endpoint, bucket: s.bucket, accesskey: s.accessKey, secretkey: s.secretKey,
    rootdirectory: root, secure: s.endpoint.startsWith('https:'),
  }));
}

/** Every object key under the prefix (relative to it, e.g. `/docker/registry/v2/…`, `~tail` objects included). */
export async function rawKeys(d: S3Driver): Promise<string[]> {
  const c = await d.connection();
  const prefix = d.key('/');
  const out: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const r = await c.client.send(new c.commands.ListObjectsV2Command({ Bucket: d.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.push(o.Key!.slice(prefix.length - 1));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
    if (!token) return out;
  }
  throw new Error('rawKeys: more than 1000 pages');
}

/** Keys of the multipart uploads open under the prefix (relative to it). */
export async function openMultipartUploads(d: S3Driver): Promise<string[]> {
  const c = await d.connection();
  const prefix = d.key('/');
  const r = await c.client.send(new c.commands.ListMultipartUploadsCommand({ Bucket: d.bucket, Prefix: prefix }));
  return (r.Uploads ?? []).map((u) => u.Key!.slice(prefix.length - 1));
}

/**
 * Waits (bounded) until no upload session is left under the prefix: no `_uploads/` object, no `~tail`, no open
 * multipart upload. A committed session is removed after the commit's response (core/upload.ts), so right after a
 * 201 it may still be there for a moment.
 */
export async function noSessionLeft(d: S3Driver, what = 'no upload session left'): Promise<void> {
  let seen: string[] = [];
  await waitUntil(what, async () => {
    seen = [
      ...(await rawKeys(d)).filter((k) => k.includes('/_uploads/') || k.endsWith('~tail')),
      ...(await openMultipartUploads(d)).map((k) => `multipart upload ${k}`),
    ];
    return seen.length === 0;
  }, { intervalMs: 100, detail: () => seen.join(', ') });
}

/** Deletes everything under the prefix: objects, tails, open multipart uploads. Never throws. */
export async function removePrefix(s: S3Settings, root: string): Promise<void> {
  const d = prefixDriver(s, root);
  try {
    for (const p of await d.list('/').catch(() => [])) await d.delete(p).catch(() => undefined);
    await d.abortUploads('/', () => true).catch(() => undefined);
  } finally {
    await d.close();
  }
}

export interface ReplicaSet {
  s: S3Settings;
  root: string;
  /** Every replica's gateway.yml (also a `berth gc --config` file). */
  yaml: string;
  /** A driver on the prefix, to look at the store directly. */
  driver: S3Driver;
  redis?: TestRedis;
  /** Every process started by start() (a test may add its own to have them closed too). */
  procs: ServerProcess[];
  /** Starts n replicas at once. */
  start(n: number): Promise<ServerProcess[]>;
  /** Stops the processes, redis and its forwarder, and removes the prefix. */
  close(): Promise<void>;
}

/** A fresh prefix `/<tag>-<random>` for replicas; with `redis`, a redis-server they share (`redis.addr` over TCP). */
export async function replicaSet(tag: string, o: { redis?: boolean } = {}): Promise<ReplicaSet> {
  const s = await s3Store();
  const root = s3Prefix(tag);
  const redis = o.redis ? await startRedis() : undefined;
  let tcp: TcpForward | undefined;
  try {
    tcp = redis && await forwardTcpToUnix(redis.socket);
  } catch (err) {
    await redis?.close();
    throw err;
  }
  const yaml = replicaYaml(s, root, { redisAddr: tcp?.addr });
  const driver = prefixDriver(s, root);
  const procs: ServerProcess[] = [];
  return {
    s, root, yaml, driver, redis, procs,
    async start(n) {
      const started = await Promise.allSettled(Array.from({ length: n }, () => startBerth({ configYaml: yaml })));
      for (const r of started) if (r.status === 'fulfilled') procs.push(r.value);
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      // Each replica connects to redis twice (descriptor cache, upload lock) in the background after it listens;
      // until then it runs without the lock. Wait for at least that many connections (the first start: exactly its).
      if (redis) await waitUntil(`${2 * n} redis connections`, async () => await redisClients(redis.socket) >= 2 * n, { timeoutMs: 10_000, intervalMs: 20 });
      return started.map((r) => (r as PromiseFulfilledResult<ServerProcess>).value);
    },
    async close() {
      await Promise.all(procs.map((p) => p.close()));
      await driver.close();
      await tcp?.close();
      await redis?.close();
      await removePrefix(s, root);
    },
  };
}

/** Clients connected to the redis at `socket`, not counting the one asking. */
async function redisClients(socket: string): Promise<number> {
  const c = createClient({ socket: { path: socket, reconnectStrategy: false } });
  c.on('error', () => {});
  await c.connect();
  try {
    return String(await c.sendCommand(['CLIENT', 'LIST'])).split('\n').filter((l) => l.trim()).length - 1;
  } finally {
    c.destroy();
  }
}
