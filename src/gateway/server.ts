// The HTTP(S) server lifecycle: build the backends the config names (embedded registry or upstream
// proxies, access control, TLS material), create the server with its timeouts, listen, reload TLS,
// and close gracefully (drain in-flight requests, then release everything). Connection-level limits live
// here too: connection caps (connection-limits.ts), the TLS handshake and request-head deadlines, the request
// header count, the minimum body rate (body-rate.ts), and `Connection: close` whenever a response starts before
// its request body was read. Request handling is pipeline.ts; this file must not look at paths or credentials.
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerOptions as HttpServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { createAccessController } from '../auth/basic.js';
import { createCatalogFilter } from './catalog-filter.js';
import type { AccessController } from '../auth/access.js';
import type { Config } from '../config/schema.js';
import { listenHost, listenURL } from '../config/values.js';
import type { Logger } from '../log/logger.js';
import { createRegistryApp, type RegistryApp } from '../registry/api/app.js';
import { startDebugServer, type DebugServer } from '../debug/server.js';
import { startHealthChecks } from '../health/registry.js';
import type { Metrics } from '../metrics/metrics.js';
import { OciError } from '../registry/api/errors.js';
import { sendError } from '../registry/api/send-error.js';
import { dataDirectory } from '../registry/storage/factory.js';
import { rateLimitedLog, type RateLimitedLog } from '../log/rate-limit.js';
import { createBodyRateGuard, type BodyRateGuard } from './body-rate.js';
import { limitConnections, type ConnectionLimits } from './connection-limits.js';
import { createPipeline } from './pipeline.js';
import type { TokenAuth } from './token-auth.js';
import { rawHeaderLines, responseHeaderHook, type ResponseHeaderHook } from './response-headers.js';
import { answerPlainHttp } from './plain-http.js';
import { createTlsManager, type TlsManager } from './tls.js';
import { createUpstreamProxy, type UpstreamProxy } from './upstream-proxy.js';
import { urlMapped } from './url-mapping.js';

export { NOT_FOUND_BODY } from './pipeline.js';

export interface RunningServer {
  /** e.g. http://127.0.0.1:5000 or https://…: the real port, also when the config said port 0. */
  url: string;
  /** The debug listener (registry.http.debug.addr: /metrics, /debug/health, /debug/vars), when configured. */
  debugUrl?: string;
  /** Re-reads the TLS certificate and key (SIGHUP; open connections keep theirs) and token auth's key files. */
  reload(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (up to drainMs, then cuts them), releases everything. Idempotent. */
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Told when a request with a large body (an upload: 1 MiB or more, or chunked) starts and when its response
   *  closes; the CLI's GC tuning (cli/gc-tuning.ts) holds V8's marking triggers up while any is in flight. */
  uploadTraffic?: UploadTraffic;
  /** How long close() waits for in-flight requests before closing their connections. Default 10 s. */
  drainMs?: number;
  /** Use this app instead of createRegistryApp(config.registry) (tests, embedded mode). close() still closes it. */
  registryApp?: RegistryApp;
  /** Use this instead of createAccessController(config.auth) (tests). close() still closes it. */
  access?: AccessController;
  /** Extra CA(s) for https upstreams. */
  upstreamCa?: string | Buffer | Array<string | Buffer>;
  /** The open-file limit the connection cap keeps under (tests); default RLIMIT_NOFILE from /proc/self/limits. */
  fileLimit?: number | null;
}

export interface UploadTraffic { start(): void; end(): void }

/** Node's default is 5 s; clients (Docker's Go client keeps idle connections 90 s) reuse connections
 *  across a push, so keep them like nginx's keepalive_timeout (75 s) did. */
const KEEP_ALIVE_TIMEOUT_MS = 75_000;
const DEFAULT_DRAIN_MS = 10_000;
/** Node keeps the first 1000 request headers and drops the rest silently (an Authorization after them would
 *  be ignored): the parser keeps one more, and a request that has it is refused with 431. */
export const MAX_REQUEST_HEADERS = 1000;

export async function startServer(config: Config, log: Logger, opts: ServerOptions = {}): Promise<RunningServer> {
  const closers: (() => unknown)[] = [];   // run in reverse on close or failed start
  const release = async () => { for (const c of closers.reverse()) await c(); };
  let server: Server;
  let lifecycle: ReturnType<typeof trackLifecycle>;
  let limits: ConnectionLimits;
  let tlsManager: TlsManager | undefined;
  let debug: DebugServer | undefined;
  let metrics: Metrics | undefined;
  let tokenAuth: TokenAuth | undefined;
  let accessController: AccessController | undefined;
  try {
    const embedded = config.upstreams.v2 === 'embedded';
    const app = opts.registryApp ?? (embedded ? await createRegistryApp(config.registry, { log }) : undefined);
    if (app) closers.push(() => app.close());
    // The storagedriver check is the embedded app's probe (sidecar mode has no storage of its own).
    const health = startHealthChecks(config.registry.health, embedded ? app?.storage : undefined, log);
    closers.push(() => health.stop());
    const debugCfg = config.registry.http?.debug;
    if (debugCfg) {
      // prom-client (~80 CommonJS modules with @opentelemetry/api) loads only for a prometheus listener.
      metrics = debugCfg.prometheus.enabled ? (await import('../metrics/metrics.js')).createMetrics() : undefined;
      if (metrics) closers.push(() => metrics!.close());
      debug = await startDebugServer({
        ...debugCfg.addr, health, metrics, metricsPath: debugCfg.prometheus.path, log,
      });
      closers.push(() => debug!.close());
    }
    const v2 = embedded ? undefined : proxyTo(config.upstreams.v2, config, log, opts, false);
    if (v2) closers.push(() => v2.close());
    const v1 = config.upstreams.v1 ? proxyTo(config.upstreams.v1, config, log, opts, true) : undefined;
    if (v1) closers.push(() => v1.close());
    // auth.token / auth.issuer: Bearer tokens on /v1 and /v2 instead of Basic, and the token endpoint (token-auth.ts)
    // Token auth's modules (and jose, ~50 ms of module loading) are loaded only when auth.token or auth.issuer is set.
    tokenAuth = opts.access || !(config.auth?.token || config.auth?.issuer) ? undefined
      : await (await import('./token-auth.js')).createTokenAuth(config, { log });
    const access = opts.access ?? tokenAuth?.access ?? await createAccessController(config.auth, log);
    accessController = access;
    closers.push(() => access.close());
    if (config.tls) {
      const t = config.tls;
      tlsManager = createTlsManager({
        certificate: t.certificate, key: t.key, minimumtls: t.minimumtls, log,
        ciphersuites: t.ciphersuites, clientcas: t.clientcas, clientauth: t.clientauth,
      });
      closers.push(() => tlsManager!.close());
    }
    const tm = tlsManager;
    const handler = createPipeline({
      ...(tm && config.tls?.clientcas.length ? { clientCertUser: (req: IncomingMessage) => tm.clientCertUser(req.socket) } : {}),
      log, access, app: embedded ? app : undefined, v2, v1,
      ...(v2 ? { v2Catalog: createCatalogFilter({ target: config.upstreams.v2, readTimeoutMs: config.proxy.readtimeout, ca: opts.upstreamCa }) } : {}), token: tokenAuth?.endpoint,
      rejectUserAgents: config.clients.rejectuseragents,
      accessLog: config.log.accesslog?.disabled !== true,
      trustedProxies: config.proxy.trustedproxies,
      proto: config.tls ? 'https' : 'http',
      health,
    });
    server = createGatewayServer(config, tlsManager, log);
    limits = limitConnections(server, {
      max: config.proxy.maxconnections, perAddress: config.proxy.maxconnectionsperaddress, log, fileLimit: opts.fileLimit,
    });
    const bodyRate = createBodyRateGuard({ timeoutMs: config.proxy.bodytimeout, minBytesPerSecond: config.proxy.bodyminrate, log });
    if (bodyRate) closers.push(() => bodyRate.close());
    lifecycle = trackLifecycle(server, urlMapped(handler, config.urls), metrics, responseHeaderHook(config.headers ?? {}), opts.uploadTraffic,
      { log, bodyRate });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: config.listen.port, host: listenHost(config.listen.host) }, () => { server.off('error', reject); resolve(); });
    });
  } catch (err) {
    await release();
    throw err;
  }
  tlsManager?.attach(server as unknown as import('node:tls').Server);
  tlsManager?.watch();
  server.on('error', (err) => log.error({ err }, 'server error'));
  const { port, address } = server.address() as AddressInfo;
  const url = listenURL(config.listen.host, address, port, config.tls ? 'https' : 'http');
  log.info({
    url, upstream: config.upstreams.v2, v1: config.upstreams.v1 ?? null, tls: Boolean(config.tls),
    auth: config.auth?.issuer ? 'token (issuer)' : config.auth?.token ? 'token' : config.auth?.htpasswd ? 'htpasswd' : 'none',
    ...(config.upstreams.v2 === 'embedded' ? storageFacts(config) : {}),
    ...(config.source ? { config: config.source } : {}),
  }, 'listening');

  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
  let closing: Promise<void> | undefined;
  return {
    url,
    ...(debug ? { debugUrl: debug.url } : {}),
    async reload() {   // SIGHUP: the TLS pair, and token auth's keys (token-auth.ts)
      await Promise.all([tlsManager?.reload(), tokenAuth ? tokenAuth.reload() : accessController?.reload?.()]);
    },
    close() {
      closing ??= (async () => {
        log.info({ inFlight: lifecycle.inFlight.size, drainMs }, 'closing: draining in-flight requests');
        lifecycle.closing = true;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const res of lifecycle.inFlight) if (!res.headersSent) res.shouldKeepAlive = false;   // answer with Connection: close
        server.closeIdleConnections();
        limits.closeIdle();   // also connections that never sent a request, and TLS handshakes
        const cut = setTimeout(() => {
          log.warn({ inFlight: lifecycle.inFlight.size }, 'drain timeout: closing remaining connections');
          server.closeAllConnections();
          limits.destroyAll();   // also sockets still in their TLS handshake, which the HTTP layer does not list
        }, drainMs);
        cut.unref();
        await closed;
        clearTimeout(cut);
        await release();
        log.info('closed');
      })();
      return closing;
    },
  };
}

/** The start line's storage: the driver, and its root where it keeps data on local disk. */
function storageFacts(config: Config): Record<string, string> {
  const { driver, parameters } = config.registry.storage;
  let root: string | undefined;
  try { root = dataDirectory(driver, parameters); } catch { root = undefined; }
  return { storage: driver, ...(root ? { root } : {}) };
}

function proxyTo(target: string, config: Config, log: Logger, opts: ServerOptions, isV1: boolean): UpstreamProxy {
  return createUpstreamProxy({
    target, readTimeoutMs: config.proxy.readtimeout, log, ca: opts.upstreamCa,
    ...(isV1
      ? { stripAuthorization: config.upstreams.v1auth === 'strip' }
      : {}),
  });
}

/** Keeps the set of in-flight responses for draining; while closing, keep-alive ends after each response.
 *  `addHeaders`: the configured `headers:`, on every response. `uploads`: told when each upload-sized request
 *  starts and when its response closes (also when the client goes away). */
function trackLifecycle(server: Server, handler: (req: IncomingMessage, res: ServerResponse) => void, metrics?: Metrics,
  addHeaders?: ResponseHeaderHook, uploads?: UploadTraffic, limits?: { log: Logger; bodyRate?: BodyRateGuard }) {
  const state = { inFlight: new Set<ServerResponse>(), closing: false };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    state.inFlight.add(res);
    const upload = uploads !== undefined && isUpload(req);
    if (upload) uploads.start();
    res.once('close', () => {
      if (upload) uploads.end();
      state.inFlight.delete(res);
      if (state.closing) setImmediate(() => server.closeIdleConnections());
    });
    if (state.closing) res.shouldKeepAlive = false;
    addHeaders?.(res);
    metrics?.track(req, res);
    if (limits && !checkRequestLimits(req, res, limits)) return;
    handler(req, res);
  };
  server.on('request', onRequest);
  // `Expect: 100-continue`: with a listener here Node sends no automatic `100 Continue`; the pipeline sends
  // it once the request is authorized, so a 401/404 is answered before any body is asked for.
  server.on('checkContinue', onRequest);
  return state;
}

/** Before the pipeline: too many headers → 431 (false: answered); a body is watched for its rate, and a
 *  response that starts before its body was read ends the connection. */
function checkRequestLimits(req: IncomingMessage, res: ServerResponse, o: { log: Logger; bodyRate?: BodyRateGuard }): boolean {
  if (req.rawHeaders.length > 2 * MAX_REQUEST_HEADERS) {
    res.shouldKeepAlive = false;   // what followed the dropped headers cannot be trusted to frame a next request
    sendError(req, res, new OciError('UNSUPPORTED', { reason: 'too many request headers', limit: MAX_REQUEST_HEADERS },
      431, undefined, 'too many request headers'), o.log);
    return false;
  }
  if (hasBody(req) && !req.complete) {
    closeIfBodyUnread(req, res);
    o.bodyRate?.watch(req, res);
  }
  return true;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** A response whose head goes out before its request body was read (any status, from any backend: the embedded
 *  registry, an upstream answering early) says `Connection: close`, and Node closes after it, instead of
 *  keeping a connection whose client may still be sending what nobody will read. */
function closeIfBodyUnread(req: IncomingMessage, res: ServerResponse): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (!req.complete && !this.headersSent) this.shouldKeepAlive = false;
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['writeHead'];
}

/** A blob upload, by its body: a declared length of 1 MiB or more, or a streamed (chunked) body, as docker,
 *  skopeo and containerd send a layer's PATCH. A big manifest PUT counts too, which is harmless. */
const UPLOAD_MIN_BYTES = 1024 * 1024;
function isUpload(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return cl !== undefined ? Number(cl) >= UPLOAD_MIN_BYTES : req.headers['transfer-encoding'] !== undefined;
}

/** http or https (TLS material from the manager), with the gateway's timeouts and parser limits. */
function createGatewayServer(config: Config, tls: TlsManager | undefined, log: Logger): Server {
  const { headertimeout, readtimeout, maxheadersize } = config.proxy;
  const options: HttpServerOptions = {
    // Node's default requestTimeout (5 min for the whole request) answers 408 in the middle of a long
    // blob upload: no total limit here, only the idle timeout below.
    requestTimeout: 0,
    headersTimeout: headertimeout,          // slow-header (slowloris) clients: 408 and close
    // Node checks headersTimeout on this interval (default 30 s); keep it a fraction of the limit.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headertimeout / 4))),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    maxHeaderSize: maxheadersize,           // larger heads: 431
    insecureHTTPParser: false,              // Content-Length with Transfer-Encoding etc.: 400
  };
  const server = tls
    // A TLS handshake must finish within the head's deadline too (Node's default is 120 s).
    ? createHttpsServer({ ...options, ...tls.serverOptions(), handshakeTimeout: headertimeout }) as unknown as Server
    : createServer(options);
  server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;   // one more than allowed, so that too many can be seen
  // No bytes in either direction → the socket is destroyed (no 'timeout' listener). A client waiting
  // for a silent upstream is idle too: the client side allows a little longer (readtimeout plus
  // min(readtimeout, 5 s)) so the upstream proxy's own readtimeout fires first and answers 502.
  server.setTimeout(readtimeout + Math.min(readtimeout, 5_000));
  const extra = rawHeaderLines(config.headers ?? {});
  if (tls) {
    const tlsServer = server as unknown as TlsServer;
    answerPlainHttp(tlsServer, { log, firstByteTimeoutMs: headertimeout, extraHeaders: extra });   // 400, not an empty reply
    tls.enforceClientAuth(tlsServer);
  }
  const tlsLog = rateLimitedLog(log, 10_000);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (isTlsError(err.code ?? '')) logTlsFailure(err, socket, tlsLog);
    answerClientError(err, socket, log, extra);
  });
  return server;
}

/** Node's own clientError answers (400/408/431/413) with the configured headers, plus a log line; nothing for a socket mid-response. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, log: Logger, extraHeaders: string): void {
  const code = err.code ?? 'UNKNOWN';
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable || isTlsError(code) || isUnsecured(socket)
    || (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431
    : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408
      : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? 413 : 400;
  log.info({ code, status, remoteAddress: socket.remoteAddress }, 'rejected a malformed or slow request');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${extraHeaders}Connection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** A failed TLS handshake (a client that does not trust the certificate, a scanner, a timeout) at warn, at most one
 *  line per 10 s per error code (a client can cause them at will); the next line counts the ones left out. Plain
 *  HTTP on the TLS port never gets here: plain-http.ts answers and logs it. */
function logTlsFailure(err: NodeJS.ErrnoException, socket: Socket, tlsLog: RateLimitedLog): void {
  const code = err.code ?? 'UNKNOWN';
  const msg = code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'tls handshake not finished in time' : 'tls handshake failed';
  tlsLog('warn', code, { code, remoteAddress: socket.remoteAddress, error: err.message }, msg);
}

/** TLS-layer failures (handshake timeout, protocol errors): there is no HTTP to answer with. */
function isTlsError(code: string): boolean {
  return code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_');
}

/** A TLS socket whose handshake has not completed (a plain-text answer would be garbage to it). */
function isUnsecured(socket: Socket): boolean {
  const s = socket as Socket & { encrypted?: boolean; _secureEstablished?: boolean };
  return s.encrypted === true && s._secureEstablished !== true;
}
