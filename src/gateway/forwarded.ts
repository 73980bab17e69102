// X-Forwarded-* / X-Real-IP for requests the gateway passes upstream (the nginx recipe's
// proxy_set_header lines). Trust is by peer address only: headers from an untrusted peer are
// replaced, never believed. Mutates req.headers before proxying; no I/O, no logging.
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

export class ForwardedConfigError extends Error {
  readonly code = 'BERTH_FORWARDED_CIDR';
  constructor(readonly value: string) {
    super(`trustedproxies: not an IP address or CIDR: ${JSON.stringify(value)}`);
    this.name = 'ForwardedConfigError';
  }
}

export interface ForwardedOptions {
  /** CIDRs ("10.0.0.0/8", "fd00::/8") or single addresses of proxies in front of us, or a compiled list. */
  trustedProxies: readonly string[] | BlockList;
  /** The scheme the client used to reach us. */
  proto: 'http' | 'https';
}

/** Compiles CIDRs once. Throws ForwardedConfigError (code BERTH_FORWARDED_CIDR) on a bad entry. */
export function compileTrustedProxies(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const raw of cidrs) {
    const [addr0, prefix, extra] = raw.trim().split('/');
    const addr = normalizeIp(addr0 ?? '');
    const family = isIP(addr);
    if (!family || extra !== undefined) throw new ForwardedConfigError(raw);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) {
      list.addAddress(addr, type);
    } else {
      const n = /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
      if (!(n >= 0 && n <= (family === 4 ? 32 : 128))) throw new ForwardedConfigError(raw);
      list.addSubnet(addr, n, type);
    }
  }
  return list;
}

/** `::ffff:10.1.2.3` → `10.1.2.3`; zone ids and brackets dropped; anything else unchanged. */
export function normalizeIp(addr: string): string {
  let a = addr.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(a);
  if (mapped) return mapped[1]!;
  const zone = a.indexOf('%');
  return zone > 0 && a.includes(':') ? a.slice(0, zone) : a;
}

export function isTrusted(addr: string | undefined, list: BlockList): boolean {
  if (!addr) return false;
  const a = normalizeIp(addr);
  const family = isIP(a);
  return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

const compiled = new WeakMap<readonly string[], BlockList>();

function blockList(t: readonly string[] | BlockList): BlockList {
  if (t instanceof BlockList) return t;
  let list = compiled.get(t);
  if (!list) { list = compileTrustedProxies(t); compiled.set(t, list); }
  return list;
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(', ') : v);

/**
 * Sets the forwarding headers on req.headers (call before handing req to the proxy) and returns
 * the client address to log. The peer is req.socket.remoteAddress, IPv4-mapped IPv6 unwrapped.
 *
 * - Untrusted peer (the usual direct client): incoming X-Forwarded-For/-Proto/-Host/-Port, Forwarded
 *   and X-Real-IP are dropped; X-Forwarded-For = X-Real-IP = peer, X-Forwarded-Proto = opts.proto.
 *   (nginx's $proxy_add_x_forwarded_for would append to a client-supplied list; we do not trust it.)
 * - Trusted peer (a load balancer in front): its headers are kept; the peer is appended to
 *   X-Forwarded-For; X-Forwarded-Proto and X-Real-IP are filled only when absent. The returned
 *   client is the rightmost X-Forwarded-For entry that is not itself a trusted proxy.
 */
export function applyForwardedHeaders(req: IncomingMessage, opts: ForwardedOptions): { clientIp: string | undefined } {
  const list = blockList(opts.trustedProxies);
  const h = req.headers;
  const peer = req.socket.remoteAddress ? normalizeIp(req.socket.remoteAddress) : undefined;

  if (peer && isTrusted(peer, list)) {
    const prior = one(h['x-forwarded-for'])?.trim();
    h['x-forwarded-for'] = prior ? `${prior}, ${peer}` : peer;
    h['x-forwarded-proto'] ??= opts.proto;
    const chain = h['x-forwarded-for'].split(',').map((s) => normalizeIp(s)).filter((s) => isIP(s) !== 0);
    let clientIp = peer;
    for (let i = chain.length - 1; i >= 0; i--) {
      clientIp = chain[i]!;
      if (!isTrusted(clientIp, list)) break;
    }
    h['x-real-ip'] ??= clientIp;
    return { clientIp };
  }

  for (const k of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip']) {
    delete h[k];
  }
  if (peer) {
    h['x-forwarded-for'] = peer;
    h['x-real-ip'] = peer;
  }
  h['x-forwarded-proto'] = opts.proto;
  return { clientIp: peer };
}
