// The gateway's request pipeline: the nginx recipe's `server { … }` block as an ordered list of
// small steps. It decides who may reach which backend; it never parses registry paths past
// /v1 and /v2, never reads a body, and never listens (server.ts owns sockets, TLS and timeouts).
//
//   request
//     │ 1 identify       request id (a valid X-Request-Id is kept, else a UUID; echoed), child logger,
//     │                  the `request completed` line (method, path, status, bytes, duration, user); the
//     │                  rest runs in runWithRequest, so module loggers' lines carry reqId and notification
//     │                  events the request's facts (util/request-context.ts)
//     │ 1b alive         `/` (any method, any query) → 200, empty, Cache-Control: no-cache, no auth: Distribution's
//     │                  load-balancer probe; 503 UNAVAILABLE instead while a health check fails (as its health.Handler)
//     │ 1c token         auth.issuer.path (default /auth/token) → the token endpoint (gateway/token-endpoint.ts)
//     │ 2 old clients    /v2 only: User-Agent ~ clients.rejectuseragents → 404, before any challenge
//     │ 3 route          /v2, /v2/… → v2 │ /v1/… (and pre-1.6 docker elsewhere) → v1 │ anything else → 404
//     │                  (so is a path outside http.prefix when one is set)
//     │ 4 api version    v2: Docker-Distribution-Api-Version: registry/2.0, set here and nowhere else, with
//     │                  setHeader, so every answer carries it (401/404/5xx included) and an upstream's own
//     │                  value replaces it (never twice)
//     │ 4b unavailable   v2: a failing health check (health/registry.ts) → 503 UNAVAILABLE, detail = the failing
//     │                  checks' names only (`{checks: ["http_0"]}`; reasons are the debug listener's)
//     │ 5 authenticate   AccessController.authorize with the access the route grammar says the request
//     │                  needs (http/v2-routes.ts) → `user` on the log line and in the request's facts
//     │                  (events' actor.name); ChallengeError → 401 with its challenge; TooManyAttemptsError →
//     │                  429 TOOMANYREQUESTS with Retry-After; DeniedError (access rules) → 403 DENIED. With rules,
//     │                  `access: allowed|denied` and `rule` on the log line, the catalog filter in the facts, and a
//     │                  mount the user may not pull from rewritten to a plain upload start (auth/rules-access.ts).
//     │                  `Expect: 100-continue` is answered `100 Continue`
//     │                  only once authorized, when the backend first reads the body (server.ts routes
//     │                  'checkContinue' to us)
//     │ 6 forwarded      X-Forwarded-For/-Proto, X-Real-IP (kept from trusted proxies, replaced otherwise);
//     │                  the facts' client address follows them
//     ▼ 7 dispatch       v2: embedded app.handle (in-process, no second socket) or the upstream proxy;
//                        v1: the v1 upstream (Authorization stripped unless upstreams.v1auth: forward)
// Every error answer goes through the registry's one OCI error writer (registry/api/send-error.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ChallengeError, DeniedError, TooManyAttemptsError, type AccessController, type Grant } from '../auth/access.js';
import { forgetV2Request, isV2Path, pathOf, v2Request } from '../http/v2-routes.js';
import type { Logger } from '../log/logger.js';
import type { RegistryApp } from '../registry/api/app.js';
import { OciError } from '../registry/api/errors.js';
import { API_VERSION, API_VERSION_HEADER } from '../registry/api/headers.js';
import { remoteAddr, requestFacts } from '../registry/api/request-facts.js';
import { sendError } from '../registry/api/send-error.js';
import { runWithRequest, type RequestFacts } from '../util/request-context.js';
import type { CatalogFilter } from './catalog-filter.js';
import { applyForwardedHeaders, compileTrustedProxies } from './forwarded.js';
import { trackRequest, type TrackedRequest } from './request-log.js';
import type { TokenEndpoint } from './token-endpoint.js';
import { isOutsidePrefix } from './url-mapping.js';
import type { UpstreamProxy } from './upstream-proxy.js';
import { compileUserAgentPattern, isPreV16Docker, isRejectedUserAgent } from './user-agent.js';

/** The gateway's 404 for paths it does not serve (also /v1 without a v1 upstream, and rejected old clients). */
export const NOT_FOUND_MESSAGE = 'the requested path is not served by this registry';
const notFound = () => new OciError('UNSUPPORTED', undefined, 404, undefined, NOT_FOUND_MESSAGE);
/** The body of that 404, for tests and docs. */
export const NOT_FOUND_BODY = JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: NOT_FOUND_MESSAGE }] });

export interface PipelineOptions {
  log: Logger;
  access: AccessController;
  /** Exactly one of `app` (embedded) and `v2` (sidecar upstream). */
  app?: RegistryApp;
  v2?: UpstreamProxy;
  /** Sidecar mode with access rules: answers the catalog from the upstream's pages, filtered by pull rights. */
  v2Catalog?: CatalogFilter;
  /** The v1 upstream; absent → /v1 answers 404 JSON. */
  v1?: UpstreamProxy;
  /** Regex source matched against User-Agent on /v2; '' disables the rule. */
  rejectUserAgents: string;
  trustedProxies: readonly string[];
  /** The scheme clients use to reach us (X-Forwarded-Proto). */
  proto: 'http' | 'https';
  /** The subject CN of the request's verified client certificate (tls.clientcas), if any: the user when the access
   *  controller names none (anonymous access), and `certUser` on the log line and in the facts. */
  clientCertUser?: (req: IncomingMessage) => string | undefined;
  /** false: no `request completed` lines (log.accesslog.disabled). Default true. */
  accessLog?: boolean;
  /** Health checks; while any fails every /v2 request gets 503 UNAVAILABLE (as Distribution's health.Handler). */
  health?: { unhealthy(): boolean; status(): Record<string, string> };
  /** berth's token endpoint (auth.issuer): its path is served before routing, with the same TLS, limits and log. */
  token?: TokenEndpoint;
}

type Route = 'v2' | 'v1' | 'other';

interface Step {
  req: IncomingMessage;
  res: ServerResponse;
  track: TrackedRequest;
  facts: RequestFacts;
  path: string;
}

/** Builds the request handler. Throws at construction on a bad pattern or CIDR (config validates both first). */
export function createPipeline(o: PipelineOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (!o.app === !o.v2) throw new TypeError('createPipeline: exactly one of app and v2 must be given');
  const rejectUA = o.rejectUserAgents === '' ? null : compileUserAgentPattern(o.rejectUserAgents);
  const trusted = compileTrustedProxies(o.trustedProxies);

  // ------------------------------------------------------------------ steps, in order

  const identify = (req: IncomingMessage, res: ServerResponse): Step => {
    const track = trackRequest(req, res, o.log, { accessLog: o.accessLog });
    return { req, res, track, facts: requestFacts(req, track.reqId), path: pathOf(req.url ?? '/') };
  };

  const isOldClient = (s: Step): boolean =>
    rejectUA !== null && isV2Path(s.path) && isRejectedUserAgent(s.req.headers['user-agent'], rejectUA);

  const route = (s: Step): Route => {
    if (isOutsidePrefix(s.req)) return 'other';   // http.prefix set and the path not under it (url-mapping.ts)
    if (isV2Path(s.path)) return 'v2';
    if (s.path === '/v1' || s.path.startsWith('/v1/')) return 'v1';
    if (o.v1 && isPreV16Docker(s.req.headers['user-agent'])) return 'v1';   // e.g. docker 1.5's /_ping
    return 'other';
  };

  // The address failure budgets key by: behind a trusted proxy the client it names (worked out on a copy of
  // the headers: step 6 rewrites the real ones later), else the peer.
  const clientAddr = (s: Step): string | undefined => (o.trustedProxies.length === 0 ? undefined
    : applyForwardedHeaders({ headers: { ...s.req.headers }, socket: s.req.socket } as IncomingMessage,
      { trustedProxies: trusted, proto: o.proto }).clientIp);

  const authenticate = async (s: Step, r: 'v2' | 'v1'): Promise<boolean> => {
    try {
      const certUser = o.clientCertUser?.(s.req);
      const grant = await o.access.authorize(s.req, r === 'v2' ? v2Request(s.req).access : [], { addr: clientAddr(s), certUser });
      if (certUser !== undefined) {
        s.track.note({ certUser });
        s.facts.certUser = certUser;
      }
      const user = grant.user ?? certUser ?? null;
      if (user !== null) {
        s.track.note({ user });
        s.facts.user = user;   // the embedded app's events: actor.name
      }
      applyRules(s, grant);
      // Only an authorized request is asked for its body (Node left the 100 to us: server.ts checkContinue).
      if (expectsContinue(s.req)) continueOnRead(s.req, s.res);
      return true;
    } catch (err) {
      if (err instanceof DeniedError) {
        s.track.note({ access: 'denied', rule: err.rule, ...(err.user !== null ? { user: err.user } : {}) });
        fail(s, new OciError('DENIED', { name: err.repository, action: err.action }));
      } else if (err instanceof ChallengeError) {
        s.track.note({ auth: err.reason, ...(err.user ? { user: err.user } : {}), ...(err.rule ? { access: 'denied', rule: err.rule } : {}) });
        fail(s, new OciError('UNAUTHORIZED', undefined, 401, { 'WWW-Authenticate': err.wwwAuthenticate }));
      } else if (err instanceof TooManyAttemptsError) {
        s.track.note({ auth: `throttled-${err.reason}`, ...(err.user ? { user: err.user } : {}) });
        fail(s, new OciError('TOOMANYREQUESTS', undefined, 429, { 'Retry-After': String(err.retryAfterSeconds) }));
      } else {
        fail(s, err);   // 500 UNKNOWN, logged with the cause
      }
      return false;
    }
  };

  // Access rules decided (auth/rules-access.ts): the log line says so and by which rule; the catalog is filtered by
  // pull rights (embedded: the facts carry the filter down to the walk); a mount from a repository the user may
  // not pull loses `mount` and `from`, so the backend (embedded or upstream) starts a plain upload session.
  const applyRules = (s: Step, grant: Grant): void => {
    if (grant.rule === undefined) return;
    s.track.note({ access: 'allowed', rule: grant.rule });
    if (grant.pullable) s.facts.pullable = grant.pullable;
    if (grant.dropMount) {
      const url = s.req.url ?? '/';
      const q = url.indexOf('?');
      const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      query.delete('mount');
      query.delete('from');
      const rest = query.toString();
      s.req.url = (q < 0 ? url : url.slice(0, q)) + (rest ? `?${rest}` : '');
      forgetV2Request(s.req);
    }
  };

  const forwarded = (s: Step): void => {
    const { clientIp } = applyForwardedHeaders(s.req, { trustedProxies: trusted, proto: o.proto });
    if (clientIp && clientIp !== normalizePeer(s.req)) s.track.note({ client: clientIp });
    s.facts.addr = remoteAddr(s.req);
  };

  const dispatch = (s: Step, r: 'v2' | 'v1'): void => {
    if (r === 'v1') { o.v1!.handle(s.req, s.res, { reqId: s.track.reqId, log: s.track.log }); return; }
    if (o.app) o.app.handle(s.req, s.res);
    else if (s.facts.pullable && o.v2Catalog && v2Request(s.req).route?.kind === 'catalog') o.v2Catalog(s.req, s.res, s.facts.pullable, s.track.log);
    else o.v2!.handle(s.req, s.res, { reqId: s.track.reqId, log: s.track.log });
  };

  // ------------------------------------------------------------------ the pipeline

  return (req, res) => {
    const s = identify(req, res);
    runWithRequest(s.facts, () => run(s));
  };

  function run(s: Step): void {
    const { res } = s;
    if (s.path === '/') { alive(s); return; }
    if (o.token && s.path === o.token.path && !isOutsidePrefix(s.req)) { tokenRequest(s); return; }
    const r = route(s);
    if (r === 'v2') res.setHeader(API_VERSION_HEADER, API_VERSION);   // nginx: add_header … always
    if (isOldClient(s)) {
      s.track.note({ rejected: 'user-agent' });
      fail(s, notFound());
      return;
    }
    if (r === 'other' || (r === 'v1' && !o.v1)) {
      fail(s, notFound());
      return;
    }
    if (r === 'v2' && o.health?.unhealthy()) { fail(s, unavailable(o.health)); return; }
    authenticate(s, r).then((ok) => {
      if (!ok) return;
      forwarded(s);
      dispatch(s, r);
    }, (err: unknown) => fail(s, err));   // not reached: authenticate catches; a last line of defence
  }

  /** The token endpoint (gateway/token-endpoint.ts): forwarded headers first (its failure budgets key by the
   *  client address), a `100 Continue` for a form sent with `Expect`, then the endpoint answers itself. */
  function tokenRequest(s: Step): void {
    const addr = clientAddr(s);
    const certUser = o.clientCertUser?.(s.req);
    if (certUser !== undefined) { s.track.note({ certUser }); s.facts.certUser = certUser; }
    forwarded(s);
    if (expectsContinue(s.req)) continueOnRead(s.req, s.res);
    o.token!.handle(s.req, s.res, { log: s.track.log, addr, certUser, note: (f) => s.track.note(f) })
      .catch((err: unknown) => fail(s, err));
  }

  function alive(s: Step): void {
    if (o.health?.unhealthy()) { fail(s, unavailable(o.health)); return; }
    if (!s.req.complete && (s.req.headers['transfer-encoding'] !== undefined || Number(s.req.headers['content-length'] ?? 0) > 0)) {
      s.res.shouldKeepAlive = false;   // a body is not read: close after the answer
    }
    s.res.writeHead(200, { 'Cache-Control': 'no-cache', 'Content-Length': '0' }).end();
  }

  function fail(s: Step, err: unknown): void {
    sendError(s.req, s.res, err, s.track.log);
  }
}

/** `100 Continue` when the body is first read: an answer that needs no body (a 404 for an unknown upload, a
 *  400 for a bad digest) goes out without asking for it; never once the response has started (Node reads
 *  an unconsumed body away after the response, which must not write a 100 then). */
function continueOnRead(req: IncomingMessage, res: ServerResponse): void {
  const read = req._read;
  req._read = function (this: IncomingMessage, size: number) {
    req._read = read;
    if (!res.headersSent && !res.writableEnded) res.writeContinue();
    return read.call(this, size);
  };
}

/** Node emits 'checkContinue' (not 'request', and no automatic 100) for exactly these requests. */
function expectsContinue(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && /(?:^|\W)100-continue(?:$|\W)/i.test(req.headers.expect ?? '');
}

function normalizePeer(req: IncomingMessage): string | undefined {
  const a = req.socket.remoteAddress;
  return a?.startsWith('::ffff:') ? a.slice(7) : a;
}

/** A failing health check's answer: 503 UNAVAILABLE naming the checks, with the Retry-After a storage failure
 *  gets (api/errors.ts), so a client backs off the same way whichever noticed the store first. */
function unavailable(health: { status(): Record<string, string> }): OciError {
  return new OciError('UNAVAILABLE', { checks: Object.keys(health.status()) }, 503, { 'Retry-After': '5' });
}
