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

export interface TestRegistry {
  url: string;          // http://127.0.0.1:PORT
  root: string;         // storage root dir, '' for inmemory
  app: RegistryApp;
  close(): Promise<void>;
}

export interface StartRegistryOptions {
  deleteEnabled?: boolean;   // default TRUE here (Distribution defaults to false) so content-management tests work
  driver?: 'filesystem' | 'inmemory';
  root?: string;        // reuse a dir (not removed on close)
  readonly?: boolean;
  log?: Logger;
  /** A blob-descriptor cache in front of blob lookups (the app closes it on close). */
  descriptorCache?: DescriptorCache;
  /** registry.notifications (journal under <root>/.notifications for filesystem unless journaldirectory). */
  notifications?: NotificationsConfig;
}

export function testRegistryConfig(o: { driver: 'filesystem' | 'inmemory'; root: string; deleteEnabled: boolean; readonly: boolean }): RegistryConfig {
  return {
    storage: {
      driver: o.driver,
      parameters: o.driver === 'filesystem' ? { rootdirectory: o.root, maxthreads: 100 } : {},
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
  const ownRoot = driver === 'filesystem' && !opts.root;
  const root = driver === 'inmemory' ? '' : (opts.root ?? await mkdtemp(join(tmpdir(), 'berth-reg-')));
  const base = testRegistryConfig({ driver, root, deleteEnabled: opts.deleteEnabled ?? true, readonly: opts.readonly ?? false });
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
      if (ownRoot) await rm(root, { recursive: true, force: true });
    },
  };
}
