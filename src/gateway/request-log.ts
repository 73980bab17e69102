// Per-request id and the one `request completed` log line: what nginx's combined log carries (the peer
// `addr`, `host`, `userAgent`, method, path without query, status, bytesIn, bytesOut, durationMs, user) plus reqId,
// and `repo`, `digest`, `uploadId` where the /v2 route names them (http/v2-routes.ts), and what later steps note
// (user, auth, client). It observes the request; it must never read or buffer the body itself (no 'data'
// listeners: that would switch the stream to flowing mode and lose bytes).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import { countBodyBytes } from '../http/body-bytes.js';
import { isV2Path, matchRoute } from '../http/v2-routes.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The client's X-Request-Id if it is ≤128 chars of [A-Za-z0-9._-], else a fresh UUID. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export interface TrackedRequest {
  reqId: string;
  /** The request's child logger (bound to reqId). */
  log: Logger;
  /** Adds fields (e.g. `user`) to the `request completed` line. */
  note(fields: Record<string, unknown>): void;
}

/**
 * Assigns the request id (echoed as X-Request-Id, and written back to req.headers so handlers see
 * the accepted one), counts body bytes in and out, and logs `request completed` when the response
 * closes.
 */
export function trackRequest(req: IncomingMessage, res: ServerResponse, log: Logger, o: { accessLog?: boolean } = {}): TrackedRequest {
  const started = process.hrtime.bigint();
  const reqId = requestId(req);
  req.headers['x-request-id'] = reqId;
  res.setHeader('X-Request-Id', reqId);
  const reqLog = log.child({ reqId });
  const method = req.method ?? '';
  const path = (req.url ?? '/').split('?')[0];   // the query may carry upload state or tokens: never logged
  reqLog.debug({ method, path }, 'request started');

  const bytes = countBodyBytes(req, res);

  const noted: Record<string, unknown> = {};
  res.once('close', () => {
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const fields: Record<string, unknown> = {
      method, path, status: res.statusCode, durationMs: Math.round(durationMs * 1000) / 1000,
      bytesIn: bytes.bytesIn, bytesOut: method === 'HEAD' ? 0 : bytes.bytesOut,
      addr: peerAddress(req), host: req.headers.host ?? null, userAgent: req.headers['user-agent'] ?? null,
      ...routeFields(path), ...noted,
    };
    if (!res.writableFinished) fields.aborted = true;   // client went away before the response ended
    if (o.accessLog !== false) reqLog.info(fields, 'request completed');   // log.accesslog.disabled: none
  });
  return { reqId, log: reqLog, note: (f) => { Object.assign(noted, f); } };
}

/** The peer's address (IPv4-mapped IPv6 shown as IPv4); the forwarded client is noted as `client`. */
function peerAddress(req: IncomingMessage): string | null {
  const a = req.socket?.remoteAddress;
  return a === undefined ? null : a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** `repo`, and `digest` or `uploadId`, where the /v2 route has them (a manifest by tag: `tag`). */
export function routeFields(path: string): Record<string, string> {
  if (!isV2Path(path)) return {};
  const r = matchRoute(path);
  if (!r || !('name' in r)) return {};
  switch (r.kind) {
    case 'blob': case 'referrers': return { repo: r.name, digest: r.digest };
    case 'manifest': return r.ref.includes(':') ? { repo: r.name, digest: r.ref } : { repo: r.name, tag: r.ref };
    case 'upload': return { repo: r.name, uploadId: r.id };
    default: return { repo: r.name };
  }
}
