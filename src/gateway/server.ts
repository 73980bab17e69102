// The HTTP server lifecycle: create (timeouts; TLS seam), route /v2 to the embedded registry and
// everything else to a 404, listen, and close gracefully (drain in-flight requests, then stop the
// registry's background work). It must not parse registry paths or know storage; the app does that.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { httpURL } from '../config/values.js';
import type { Logger } from '../log/logger.js';
import { createRegistryApp, type RegistryApp } from '../registry/api/app.js';
import { trackRequest } from './request-log.js';

export interface RunningServer {
  /** e.g. http://127.0.0.1:5000 — the real port, also when the config said port 0. */
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to drainMs, then cuts them), stops the app. Idempotent. */
  close(): Promise<void>;
}

export interface ServerOptions {
  /** How long close() waits for in-flight requests before closing their connections. Default 10 s. */
  drainMs?: number;
  /** Use this app instead of createRegistryApp(config.registry) (tests). close() still closes it. */
  registryApp?: RegistryApp;
}

/** Node's default is 5 s; clients (Docker's Go client keeps idle connections 90 s) reuse connections
 *  across a push, so keep them like nginx's keepalive_timeout (75 s) did. */
const KEEP_ALIVE_TIMEOUT_MS = 75_000;
/** A socket with no bytes in either direction for this long is closed (nginx: client_body_timeout,
 *  send_timeout). Generous because a commit may re-hash a large upload before answering. */
const IDLE_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_DRAIN_MS = 10_000;

export const NOT_FOUND_BODY = JSON.stringify({
  errors: [{ code: 'UNSUPPORTED', message: 'the requested path is not served by this registry' }],
});

export async function startServer(config: Config, log: Logger, opts: ServerOptions = {}): Promise<RunningServer> {
  const app = opts.registryApp ?? await createRegistryApp(config.registry, { log });
  const inFlight = new Set<ServerResponse>();
  let closing: Promise<void> | undefined;

  const server = createHttpServer((req, res) => {
    trackRequest(req, res, log);
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      // While draining, close each keep-alive connection as soon as its last response is done.
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    if (closing) res.shouldKeepAlive = false;
    route(req, res, app);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.listen.port, config.listen.host, () => { server.off('error', reject); resolve(); });
    });
  } catch (err) {
    await app.close();
    throw err;
  }
  server.on('error', (err) => log.error({ err }, 'server error'));
  const { port } = server.address() as AddressInfo;
  const url = httpURL(config.listen.host, port);
  log.info({ url, storage: config.registry.storage.driver }, 'listening');

  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
  return {
    url,
    close() {
      closing ??= (async () => {
        log.info({ inFlight: inFlight.size, drainMs }, 'closing: draining in-flight requests');
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;   // answer with Connection: close
        server.closeIdleConnections();
        const cut = setTimeout(() => {
          log.warn({ inFlight: inFlight.size }, 'drain timeout: closing remaining connections');
          server.closeAllConnections();
        }, drainMs);
        cut.unref();
        await closed;
        clearTimeout(cut);
        await app.close();
        log.info('closed');
      })();
      return closing;
    },
  };
}

/** The TLS seam: a later issue returns https.createServer({ cert, key, ... }) when config.tls is set. */
function createHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer({
    // Node's default requestTimeout (5 min for the whole request) answers 408 in the middle of a long
    // blob upload; there is no total limit here, only the idle timeout below. headersTimeout stays default.
    requestTimeout: 0,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  }, handler);
  server.setTimeout(IDLE_TIMEOUT_MS);   // no 'timeout' listener → Node destroys the idle socket
  return server;
}

/** /v2 and /v2/* → the registry; anything else → 404 with an OCI-style UNSUPPORTED body. */
function route(req: IncomingMessage, res: ServerResponse, app: RegistryApp): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/v2' || path.startsWith('/v2/')) {
    app.handle(req, res);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(NOT_FOUND_BODY) });
  res.end(req.method === 'HEAD' ? undefined : NOT_FOUND_BODY);
}
