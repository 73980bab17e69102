// The who and where of an HTTP request as util/request-context.ts carries them (events' request.addr,
// useragent, host, actor): built once per request by the gateway, or by the router when it runs alone.
// Distribution's RemoteAddr rule lives here. Pure: reads headers and the socket, changes nothing.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { RequestFacts } from '../../util/request-context.js';

const first = (v: string | string[] | undefined): string => (Array.isArray(v) ? v[0] : v) ?? '';

/** Facts of req; `reqId` defaults to its X-Request-Id (the gateway has validated it) or a fresh UUID. */
export function requestFacts(req: IncomingMessage, reqId?: string): RequestFacts {
  return {
    reqId: reqId ?? (first(req.headers['x-request-id']) || randomUUID()),
    addr: remoteAddr(req),
    host: first(req.headers.host),
    method: req.method ?? '',
    useragent: first(req.headers['user-agent']),
    scheme: req.socket && 'encrypted' in req.socket ? 'https' : 'http',
  };
}

/**
 * Distribution's RemoteAddr: the first X-Forwarded-For entry, else X-Real-IP, when it is an IP address;
 * else the peer as host:port. Behind the gateway these headers are the ones it set (forwarded.ts), so
 * a client cannot choose its own address there.
 */
export function remoteAddr(req: IncomingMessage): string {
  const xff = first(req.headers['x-forwarded-for']).split(',')[0]!.trim();
  if (xff && isIP(xff)) return xff;
  const real = first(req.headers['x-real-ip']).trim();
  if (real && isIP(real)) return real;
  const s = req.socket;
  if (!s?.remoteAddress) return '';
  return s.remoteAddress.includes(':') ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
}
