// The embedded registry as one request handler: createRegistryApp wires config, driver, core and
// router together and starts background work (upload purging). It must not listen on sockets or
// know about auth; the gateway (or test/support/registry-server.ts) owns the http.Server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RegistryConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { StorageDriver } from '../storage/driver.js';

export interface RegistryApp {
  /** Handles any request whose path is /v2 or starts with /v2/ (query string allowed). Never throws, never
   *  rejects: it always writes a response (OCI error JSON on failure) and sets
   *  Docker-Distribution-Api-Version: registry/2.0 on every response. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Stops background work (upload purging timer). Idempotent. */
  close(): Promise<void>;
}

// TEMPORARY minimal version (answers GET /v2/ only) so others can build on test/support/registry-server.ts.
export async function createRegistryApp(
  _cfg: RegistryConfig, opts: { log: Logger; driver?: StorageDriver },
): Promise<RegistryApp> {
  void opts;
  return {
    handle(req, res) {
      res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');
      const path = (req.url ?? '/').split('?')[0];
      if ((path === '/v2/' || path === '/v2') && (req.method === 'GET' || req.method === 'HEAD')) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '2' });
        res.end(req.method === 'HEAD' ? undefined : '{}');
        return;
      }
      const body = JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: 'not implemented yet' }] });
      res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    },
    async close() {},
  };
}
