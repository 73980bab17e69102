// The embedded registry as one request handler: createRegistryApp wires config, driver, core and
// router together and starts background work (upload purging). It must not listen on sockets or
// know about auth; the gateway (or test/support/registry-server.ts) owns the http.Server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RegistryConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import { cachedBlobDescriber } from '../cache/cached-blob-describer.js';
import type { DescriptorCache } from '../cache/descriptor-cache.js';
import { createDescriptorCache } from '../cache/factory.js';
import { Registry } from '../core/registry.js';
import { startUploadPurger } from '../core/upload-purger.js';
import { acquireWriterLease } from '../core/writer-lease.js';
import type { StorageDriver } from '../storage/driver.js';
import { createDriver } from '../storage/factory.js';
import { createNotifier } from '../notify/listener.js';
import { requestActor } from './context.js';
import { createRouter } from './router.js';

export interface RegistryApp {
  /** Handles any request whose path is /v2 or starts with /v2/ (query string allowed). Never throws, never
   *  rejects: it always writes a response (OCI error JSON on failure) and sets
   *  Docker-Distribution-Api-Version: registry/2.0 on every response. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Stops background work (upload purging timer, writer lease). Idempotent. */
  close(): Promise<void>;
}

export async function createRegistryApp(
  cfg: RegistryConfig, opts: {
    log: Logger; driver?: StorageDriver; descriptorCache?: DescriptorCache;
    /** Who made a request (events' actor.name). Default: what the gateway recorded with setRequestActor. */
    actor?: (req: IncomingMessage) => string | undefined;
  },
): Promise<RegistryApp> {
  const log = opts.log.child({ module: 'registry' });
  const storage = cfg.storage;
  const driver = opts.driver ?? createDriver(storage, opts.log); // base.ts binds { module: storage, driver }
  const readonly = storage.maintenance.readonly.enabled;
  // `descriptorCache` overrides createDescriptorCache(cfg) (tests); the app closes whichever it uses.
  const cacheLog = opts.log.child({ module: 'cache' });
  const descriptors = opts.descriptorCache ?? createDescriptorCache(cfg, cacheLog);
  const registry = new Registry(driver, {
    deleteEnabled: storage.delete.enabled,
    readonly,
    blobDescriber: descriptors && cachedBlobDescriber(descriptors, cacheLog),
  });
  // Before anything that needs stopping: a journal that cannot be opened fails startup cleanly.
  const notifier = await createNotifier(cfg, { log: opts.log, actor: opts.actor ?? requestActor });   // undefined without enabled endpoints
  // A writable app announces itself so `berth gc` refuses to sweep under it (core/writer-lease.ts).
  const lease = readonly ? undefined : await acquireWriterLease(driver, { log: opts.log });
  const purging = storage.maintenance.uploadpurging;
  const purger = purging.enabled && !readonly
    ? startUploadPurger(driver, purging, opts.log)   // the purger binds { module: 'upload-purger' }
    : undefined;
  const route = createRouter({ registry, log, redirect: !storage.redirect.disable, notifier });
  let closed = false;
  return {
    handle(req, res) {
      try {
        route(req, res);
      } catch (err) {          // createRouter's handler does not throw; this is the last line of defence
        log.error({ err }, 'registry handler threw');
        res.destroy();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      purger?.stop();
      await notifier?.close();   // undelivered events stay journaled for the next start
      await Promise.all([descriptors?.close(), lease?.release()]);
    },
  };
}
