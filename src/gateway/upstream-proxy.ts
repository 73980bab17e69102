// Sidecar mode: passes /v2 requests to an external registry (Distribution) over keep-alive
// connections, streaming both ways, like the nginx recipe's `proxy_pass`. It never buffers a
// body, never rewrites Location, and never throws: upstream failures become a 502 OCI error through
// the one error writer. The API version header is the pipeline's (set before the proxy runs).
import * as http from 'node:http';
import * as https from 'node:https';
import { createRequire } from 'node:module';
import { silentLogger, type Logger } from '../log/logger.js';
import { OciError } from '../registry/api/errors.js';
import { API_VERSION_HEADER } from '../registry/api/headers.js';
import { sendError } from '../registry/api/send-error.js';

export interface UpstreamProxyOptions {
  /** `http://host:port` or `https://host:port`; no path, query or credentials. */
  target: string;
  /** Idle timeout on the upstream connection: no byte in either direction for this long → abort. */
  readTimeoutMs: number;
  log: Logger;
  /** Drop the client's Authorization header (the gateway authenticated it). Default false, as nginx. */
  stripAuthorization?: boolean;
  /** Extra trusted CA(s) for an https upstream. */
  ca?: string | Buffer | Array<string | Buffer>;
}

/**
 * Location: never rewritten (nginx's proxy_pass does not either). The client's Host header is
 * forwarded, so Distribution builds absolute Locations that point back at the gateway, and with
 * `http.relativeurls: true` it sends relative ones. An upstream that insists on its own host name
 * in absolute Locations must be configured (Distribution: `http.host`) to name the gateway.
 */
export interface UpstreamProxy {
  /**
   * Proxies one request. Call it with req.headers already carrying the forwarding headers
   * (forwarded.ts) and before anything reads the body. Never throws; always answers or destroys.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: { reqId: string; log?: Logger }): void;
  /** Closes pooled upstream connections. In-flight requests are aborted. Idempotent. */
  close(): void;
}

export class UpstreamConfigError extends Error {
  readonly code = 'BERTH_UPSTREAM_TARGET';
  constructor(readonly target: string, reason: string) {
    super(`upstream: invalid target ${JSON.stringify(target)}: ${reason}`);
    this.name = 'UpstreamConfigError';
  }
}

const quiet = silentLogger();

/** Headers of ours that a failed proxy attempt keeps; everything else may have come from the upstream. */
const KEEP_ON_FAILURE = new Set(['x-request-id', API_VERSION_HEADER.toLowerCase()]);

export function parseUpstreamTarget(target: string): URL {
  let url: URL;
  try { url = new URL(target); } catch { throw new UpstreamConfigError(target, 'not a URL'); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamConfigError(target, 'scheme must be http or https');
  if (url.username || url.password) throw new UpstreamConfigError(target, 'credentials are not allowed in the URL');
  if (url.pathname !== '/' || url.search || url.hash) throw new UpstreamConfigError(target, 'must not have a path or query');
  return url;
}

export function createUpstreamProxy(opts: UpstreamProxyOptions): UpstreamProxy {
  const url = parseUpstreamTarget(opts.target);
  if (!(opts.readTimeoutMs > 0)) throw new UpstreamConfigError(opts.target, 'readTimeoutMs must be > 0');
  const log = opts.log.child({ module: 'upstream', upstream: url.origin });
  const agent = url.protocol === 'https:'
    ? new https.Agent({ keepAlive: true, ca: opts.ca })
    : new http.Agent({ keepAlive: true });

  // Loaded here, not at import: only sidecar mode and v1 upstreams need http-proxy-3 (with debug,
  // follow-redirects), and the gateway imports this file in every mode.
  const { createProxyServer } = createRequire(import.meta.url)('http-proxy-3') as typeof import('http-proxy-3');
  const proxy = createProxyServer({
    target: url.origin,
    agent,
    xfwd: false,            // forwarded.ts sets X-Forwarded-* with trusted-proxy rules
    changeOrigin: false,    // nginx: proxy_set_header Host $http_host (Distribution builds Location from it)
    toProxy: true,          // send req.url byte for byte: no URL normalisation between auth and upstream
    proxyTimeout: opts.readTimeoutMs,   // request.setTimeout: socket idle, reads and writes alike
    secure: true,
  });

  // The pipe does not end the client response when the upstream response dies mid-body; do it here.
  proxy.on('proxyRes', (proxyRes, _req, res) => {
    proxyRes.once('close', () => {
      if (!proxyRes.complete && !res.destroyed) res.destroy();
    });
  });
  // Safety net: with a per-request callback http-proxy does not emit 'error', but an unhandled
  // 'error' event would crash the process, so one listener is always attached.
  proxy.on('error', (err, req, res) => fail(err, req, res as http.ServerResponse, log));
  proxy.on('econnreset', (err, req) => {
    log.debug({ err, method: req.method }, 'client went away; upstream request aborted');
  });

  function fail(err: Error, req: http.IncomingMessage, res: http.ServerResponse, rlog: Logger): void {
    if (res.headersSent || res.destroyed || res.writableEnded) {
      rlog.warn({ err, method: req.method }, 'upstream failed after the response started; closing the connection');
      res.destroy();
      return;
    }
    rlog.error({ err, method: req.method, upstream: url.origin }, 'upstream unavailable');
    for (const name of res.getHeaderNames()) {   // e.g. upstream headers copied before the failure
      if (!KEEP_ON_FAILURE.has(name)) res.removeHeader(name);
    }
    // Logged above with the cause; the writer's own line would repeat it.
    sendError(req, res, new OciError('UNKNOWN', undefined, 502, undefined, 'upstream unavailable'), quiet);
  }

  return {
    handle(req, res, ctx) {
      const rlog = ctx.log ?? log.child({ reqId: ctx.reqId });
      req.headers['x-request-id'] = ctx.reqId;
      if (opts.stripAuthorization) delete req.headers.authorization;
      // The client's `Expect: 100-continue` is the gateway's to answer (pipeline.ts: the 100 goes out when the
      // body is first read, which the proxy does at once), as nginx answers it and does not forward it. Forwarded,
      // the upstream would wait to send its own 100 while the body is already on its way, and one that answers
      // early (an unknown upload) would close the connection under that body: a 502 instead of its answer.
      delete req.headers.expect;
      try {
        proxy.web(req, res, {}, (err) => fail(err as Error, req, res, rlog));
      } catch (err) {
        fail(err as Error, req, res, rlog);
      }
    },
    close() {
      agent.destroy();
    },
  };
}
