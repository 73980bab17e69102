// The gateway's request pipeline: the nginx recipe's `server { … }` block as an ordered list of
// small steps. It decides who may reach which backend; it never parses registry paths past
// /v1 and /v2, never reads a body, and never listens (server.ts owns sockets, TLS and timeouts).
//
//   request
//     │ 1 identify       request id (a valid X-Request-Id is kept, else a UUID; echoed), child logger,
//     │                  the `request completed` line (method, path, status, bytes, duration, user);
//     │                  the rest runs in runWithRequestId, so module loggers' lines carry reqId too
//     │ 2 old clients    /v2 only: User-Agent ~ clients.rejectuseragents → plain 404, before any challenge
//     │ 3 route          /v2, /v2/… → v2 │ /v1/… (and pre-1.6 docker elsewhere) → v1 │ anything else → 404
//     │ 4 api version    v2: Docker-Distribution-Api-Version: registry/2.0 set now with setHeader, so the
//     │                  gateway's own 401/404/5xx carry it and a backend's own value replaces it (never twice)
//     │ 4b unavailable   v2: a failing health check (health/registry.ts) → 503 UNAVAILABLE, detail = reasons
//     │ 5 authenticate   AccessController.authorize → `user` on the log line and as the request's actor
//     │                  (setRequestActor: events' actor.name); ChallengeError → 401 Basic
//     │ 6 forwarded      X-Forwarded-For/-Proto, X-Real-IP (kept from trusted proxies, replaced otherwise)
//     ▼ 7 dispatch       v2: embedded app.handle (in-process, no second socket) or the upstream proxy;
//                        v1: the v1 upstream (Authorization stripped unless upstreams.v1auth: forward)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ChallengeError, type AccessController } from '../auth/access.js';
import type { Logger } from '../log/logger.js';
import type { RegistryApp } from '../registry/api/app.js';
import { setRequestActor } from '../registry/api/context.js';
import { applyForwardedHeaders, compileTrustedProxies } from './forwarded.js';
import { runWithRequestId } from './request-context.js';
import { trackRequest, type TrackedRequest } from './request-log.js';
import type { UpstreamProxy } from './upstream-proxy.js';
import { compileUserAgentPattern, isPreV16Docker, isRejectedUserAgent } from './user-agent.js';

export const API_VERSION_HEADER = 'Docker-Distribution-Api-Version';
export const API_VERSION = 'registry/2.0';

/** The body of every gateway 404 for paths it does not serve (also /v1 without a v1 upstream). */
export const NOT_FOUND_BODY = JSON.stringify({
  errors: [{ code: 'UNSUPPORTED', message: 'the requested path is not served by this registry' }],
});
const OLD_CLIENT_BODY = '404 page not found\n';   // what nginx's `return 404` is to old clients: not JSON, no challenge
const INTERNAL_BODY = JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'internal error' }] });

export interface PipelineOptions {
  log: Logger;
  access: AccessController;
  /** Exactly one of `app` (embedded) and `v2` (sidecar upstream). */
  app?: RegistryApp;
  v2?: UpstreamProxy;
  /** The v1 upstream; absent → /v1 answers 404 JSON. */
  v1?: UpstreamProxy;
  /** Regex source matched against User-Agent on /v2; '' disables the rule. */
  rejectUserAgents: string;
  trustedProxies: readonly string[];
  /** The scheme clients use to reach us (X-Forwarded-Proto). */
  proto: 'http' | 'https';
  /** Health checks; while any fails every /v2 request gets 503 UNAVAILABLE (as Distribution's health.Handler). */
  health?: { unhealthy(): boolean; status(): Record<string, string> };
}

type Route = 'v2' | 'v1' | 'other';

interface Step {
  req: IncomingMessage;
  res: ServerResponse;
  track: TrackedRequest;
  path: string;
}

/** Builds the request handler. Throws at construction on a bad pattern or CIDR (config validates both first). */
export function createPipeline(o: PipelineOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (!o.app === !o.v2) throw new TypeError('createPipeline: exactly one of app and v2 must be given');
  const rejectUA = o.rejectUserAgents === '' ? null : compileUserAgentPattern(o.rejectUserAgents);
  const trusted = compileTrustedProxies(o.trustedProxies);

  // ------------------------------------------------------------------ steps, in order

  const identify = (req: IncomingMessage, res: ServerResponse): Step => {
    const track = trackRequest(req, res, o.log);
    return { req, res, track, path: (req.url ?? '/').split('?')[0]! };
  };

  const isOldClient = (s: Step): boolean =>
    rejectUA !== null && isV2(s.path) && isRejectedUserAgent(s.req.headers['user-agent'], rejectUA);

  const route = (s: Step): Route => {
    if (isV2(s.path)) return 'v2';
    if (s.path === '/v1' || s.path.startsWith('/v1/')) return 'v1';
    if (o.v1 && isPreV16Docker(s.req.headers['user-agent'])) return 'v1';   // e.g. docker 1.5's /_ping
    return 'other';
  };

  const authenticate = async (s: Step): Promise<boolean> => {
    try {
      const grant = await o.access.authorize(s.req, []);
      if (grant.user !== null) {
        s.track.note({ user: grant.user });
        setRequestActor(s.req, grant.user);   // the embedded app's events: actor.name
      }
      return true;
    } catch (err) {
      if (err instanceof ChallengeError) {
        s.track.note({ auth: err.reason, ...(err.user ? { user: err.user } : {}) });
        send(s, err.status, err.body(), 'application/json', { 'WWW-Authenticate': err.wwwAuthenticate });
      } else {
        s.track.log.error({ err }, 'access control failed');
        send(s, 500, INTERNAL_BODY, 'application/json');
      }
      return false;
    }
  };

  const forwarded = (s: Step): void => {
    const { clientIp } = applyForwardedHeaders(s.req, { trustedProxies: trusted, proto: o.proto });
    if (clientIp && clientIp !== normalizePeer(s.req)) s.track.note({ client: clientIp });
  };

  const dispatch = (s: Step, r: 'v2' | 'v1'): void => {
    if (r === 'v1') { o.v1!.handle(s.req, s.res, { reqId: s.track.reqId, log: s.track.log }); return; }
    if (o.app) o.app.handle(s.req, s.res);
    else o.v2!.handle(s.req, s.res, { reqId: s.track.reqId, log: s.track.log });
  };

  // ------------------------------------------------------------------ the pipeline

  return (req, res) => {
    const s = identify(req, res);
    runWithRequestId(s.track.reqId, () => run(s));
  };

  function run(s: Step): void {
    const { req, res } = s;
    if (isOldClient(s)) {
      s.track.note({ rejected: 'user-agent' });
      res.setHeader(API_VERSION_HEADER, API_VERSION);   // nginx: add_header … always
      send(s, 404, OLD_CLIENT_BODY, 'text/plain; charset=utf-8');
      return;
    }
    const r = route(s);
    if (r === 'other' || (r === 'v1' && !o.v1)) {
      send(s, 404, NOT_FOUND_BODY, 'application/json');
      return;
    }
    if (r === 'v2') res.setHeader(API_VERSION_HEADER, API_VERSION);
    if (r === 'v2' && o.health?.unhealthy()) { send(s, 503, unavailableBody(o.health.status()), 'application/json'); return; }
    authenticate(s).then((ok) => {
      if (!ok) return;
      forwarded(s);
      dispatch(s, r);
    }, (err: unknown) => {   // not reached: authenticate catches; a last line of defence
      s.track.log.error({ err }, 'pipeline failed');
      if (!res.headersSent) send(s, 500, INTERNAL_BODY, 'application/json'); else res.destroy();
    });
  }
}

function unavailableBody(detail: Record<string, string>): string {
  return JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail }] });
}

function isV2(path: string): boolean {
  return path === '/v2' || path.startsWith('/v2/');
}

function normalizePeer(req: IncomingMessage): string | undefined {
  const a = req.socket.remoteAddress;
  return a?.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * Writes one of the gateway's own answers. A request body still on its way is not read: the
 * connection closes after the answer instead of draining an upload we refused.
 */
function send(s: Step, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
  const { req, res } = s;
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.complete) res.shouldKeepAlive = false;
  res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
