// Distribution's http.prefix, http.host and http.relativeurls around the pipeline (server.ts wraps the handler
// when one is set): a request under the prefix has it removed before the pipeline routes it (the route grammar
// stays prefix-free), and a Location header the registry or an upstream sends as a path (`/v2/…`) gets the
// prefix back and, with relative URLs off, a scheme and host in front (absolute URLs, as Distribution's
// urls.Builder makes them: `http.host` when set, else the request's own Host and the scheme the client used, as
// the gateway's forwarded step left X-Forwarded-Proto). A request outside the prefix is marked, and the pipeline
// answers it 404 as Distribution's router does (`/`, the load balancers' probe, excepted). It reads no body.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface UrlMapping {
  /** A path prefix like "/registry" (no trailing slash); "" for none. */
  prefix: string;
  /** "https://registry.example.com" (scheme and host, no path); "" for none. */
  host: string;
  /** true: Location stays a path (berth's default); false: absolute URLs (`host`, else the request's). */
  relative: boolean;
}

/** "/registry/" → "/registry", "/" or "" → "". */
export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/\/+$/, '');
  return p === '' ? '' : p.startsWith('/') ? p : `/${p}`;
}

/** True when nothing is to be done (no prefix, relative URLs). */
export function isIdentity(m: UrlMapping): boolean {
  return m.prefix === '' && m.relative;
}

/**
 * The Location value a client should see for `loc` (only paths are rewritten; absolute redirects stay). With
 * relative URLs off and no `host`, `requestBase` (scheme://host of the request) goes in front, when known.
 */
export function mapLocation(loc: string, m: UrlMapping, requestBase?: string): string {
  if (!loc.startsWith('/')) return loc;
  const path = `${m.prefix}${loc}`;
  if (m.relative) return path;
  const base = m.host !== '' ? m.host : requestBase ?? '';
  return `${base.replace(/\/+$/, '')}${path}`;
}

/** scheme://host the client used: X-Forwarded-Proto (set by the gateway's forwarded step) and Host. */
export function requestBase(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host) return undefined;
  const xfp = req.headers['x-forwarded-proto'];
  const proto = (Array.isArray(xfp) ? xfp[0] : xfp)?.split(',')[0]?.trim()
    || (req.socket && 'encrypted' in req.socket ? 'https' : 'http');
  return `${proto}://${host}`;
}

const outside = new WeakSet<IncomingMessage>();

/** True for a request whose path is not under the configured prefix (the pipeline answers it 404). */
export function isOutsidePrefix(req: IncomingMessage): boolean {
  return outside.has(req);
}

/** The request target without the prefix, or undefined when it is not under the prefix. */
export function stripPrefix(url: string, prefix: string): string | undefined {
  if (prefix === '') return url;
  if (url === prefix) return '/';
  return url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`) ? url.slice(prefix.length) || '/' : undefined;
}

export function withUrlMapping(handler: (req: IncomingMessage, res: ServerResponse) => void, m: UrlMapping) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const stripped = stripPrefix(req.url ?? '/', m.prefix);
    if (stripped !== undefined) req.url = stripped;
    else outside.add(req);
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      const base = m.relative || m.host !== '' ? undefined : requestBase(req);
      const own = this.getHeader('location');
      if (typeof own === 'string') this.setHeader('Location', mapLocation(own, m, base));
      const headers = args.find((a, i) => i > 0 && a !== null && typeof a === 'object' && !Array.isArray(a)) as Record<string, unknown> | undefined;
      if (headers) {
        for (const k of Object.keys(headers)) {
          if (k.toLowerCase() === 'location' && typeof headers[k] === 'string') headers[k] = mapLocation(headers[k] as string, m, base);
        }
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['writeHead'];
    handler(req, res);
  };
}

/** The handler wrapped for the config's `urls` section, or the handler itself when it asks for nothing. */
export function urlMapped(handler: (req: IncomingMessage, res: ServerResponse) => void,
  urls: { host: string; prefix: string; relative: boolean } | undefined): (req: IncomingMessage, res: ServerResponse) => void {
  if (!urls) return handler;
  const m: UrlMapping = { prefix: normalizePrefix(urls.prefix), host: urls.host, relative: urls.relative };
  return isIdentity(m) ? handler : withUrlMapping(handler, m);
}
