// Starts the embedded registry on 127.0.0.1:0 for tests (contracts.md item 3): a full RegistryConfig
// literal, an http.Server passing /v2 requests to app.handle (with the API version header the gateway's
// pipeline sets, step 4) and 404-ing everything else.
// It owns its temp dir (removed on close) unless `root` is given; it never touches other ports.
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { NotificationsConfig, RegistryConfig } from '../../src/config/schema.js';
import { silentLogger, type Logger } from '../../src/log/logger.js';
import { createRegistryApp, type RegistryApp } from '../../src/registry/api/app.js';
import { API_VERSION, API_VERSION_HEADER } from '../../src/registry/api/headers.js';
import type { DescriptorCache } from '../../src/registry/cache/descriptor-cache.js';
import { S3Driver, checkS3Parameters } from '../../src/registry/storage/drivers/s3.js';
import { s3Parameters, s3Prefix, s3Store } from './s3.js';

export interface TestRegistry {
  url: string;          // http://127.0.0.1:PORT
  root: string;         // storage root dir, '' for inmemory, the key prefix (rootdirectory) for s3
  app: RegistryApp;
  close(): Promise<void>;
}

export interface StartRegistryOptions {
  deleteEnabled?: boolean;   // default TRUE here (Distribution defaults to false) so content-management tests work
  /** s3: the test store of test/support/s3.ts (Ceph RGW), a fresh key prefix deleted on close unless `root` is given. */
  driver?: 'filesystem' | 'inmemory' | 's3';
  root?: string;        // reuse a dir or an s3 prefix (not removed on close)
  /** s3: these parameters instead of the test store's (e.g. an endpoint nobody listens on); nothing is deleted on close. */
  s3Parameters?: Record<string, unknown>;
  readonly?: boolean;
  log?: Logger;
  /** A blob-descriptor cache in front of blob lookups (the app closes it on close). */
  descriptorCache?: DescriptorCache;
  /** registry.notifications (journal under <root>/.notifications for filesystem unless journaldirectory). */
  notifications?: NotificationsConfig;
}

export function testRegistryConfig(o: { driver: 'filesystem' | 'inmemory' | 's3'; root: string; deleteEnabled: boolean; readonly: boolean;
  s3?: Record<string, unknown> }): RegistryConfig {
  return {
    storage: {
      driver: o.driver,
      parameters: o.driver === 'filesystem' ? { rootdirectory: o.root, maxthreads: 100 } : o.driver === 's3' ? o.s3 ?? {} : {},
      delete: { enabled: o.deleteEnabled },
      maintenance: {
        uploadpurging: { enabled: false, age: 168 * 3600_000, interval: 24 * 3600_000, dryrun: false },
        readonly: { enabled: o.readonly },
      },
      redirect: { disable: true },
    },
  };
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const driver = opts.driver ?? 'filesystem';
  const ownRoot = driver !== 'inmemory' && !opts.root && !opts.s3Parameters;
  const root = driver === 'inmemory' ? '' : (opts.root ?? (driver === 's3' ? s3Prefix('reg') : await mkdtemp(join(tmpdir(), 'berth-reg-'))));
  const s3 = driver === 's3' ? opts.s3Parameters ?? s3Parameters(await s3Store(), root) : undefined;
  const base = testRegistryConfig({ driver, root, deleteEnabled: opts.deleteEnabled ?? true, readonly: opts.readonly ?? false, s3 });
  const cfg: RegistryConfig = opts.notifications ? { ...base, notifications: opts.notifications } : base;
  const app = await createRegistryApp(cfg, { log: opts.log ?? silentLogger(), descriptorCache: opts.descriptorCache });
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?')) {
      res.setHeader(API_VERSION_HEADER, API_VERSION);
      app.handle(req, res);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    root,
    app,
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
      if (ownRoot && driver === 's3') await deleteS3Prefix(s3!);
      else if (ownRoot) await rm(root, { recursive: true, force: true });
    },
  };
}

/** Deletes everything under an s3 test prefix (objects and multipart uploads). */
export async function deleteS3Prefix(params: Record<string, unknown>): Promise<void> {
  const d = new S3Driver(checkS3Parameters(params));
  try {
    for (const p of await d.list('/').catch(() => [])) await d.delete(p).catch(() => {});
    await d.abortUploads('/', () => true);
  } finally {
    await d.close();
  }
}

/** A registry on a fresh prefix of the tests' S3 store whose store requests pass through a proxy in front of it
 *  (`start(endpoint)`: a request log, a part gate); close() stops both and deletes the prefix. */
export async function s3RegistryThrough<P extends { url: string; close(): Promise<void> }>(
  tag: string, start: (endpoint: string) => Promise<P>,
): Promise<{ reg: TestRegistry; proxy: P; direct: Record<string, string | boolean>; close(): Promise<void> }> {
  const s = await s3Store();
  const proxy = await start(s.endpoint);
  const direct = s3Parameters(s, s3Prefix(tag));   // the prefix's parameters without the proxy, for the cleanup
  const reg = await startRegistry({ driver: 's3', s3Parameters: { ...direct, regionendpoint: proxy.url } }).catch(async (err) => {
    await proxy.close();
    throw err;
  });
  return {
    reg, proxy, direct,
    async close() {
      await reg.close();
      await proxy.close();
      await deleteS3Prefix(direct);
    },
  };
}
