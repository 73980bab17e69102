// Distribution's http.prefix, http.host and http.relativeurls around the pipeline (server.ts wraps the handler
// when one is set): a request under the prefix has it removed before the pipeline routes it (the route grammar
// stays prefix-free), and a Location header the registry or an upstream sends as a path (`/v2/…`) gets the
// prefix back and, with a host and relative URLs off, that host in front (absolute URLs, as Distribution's
// urls.Builder makes them). Requests outside the prefix are routed as they are. It reads no body.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface UrlMapping {
  /** A path prefix like "/registry" (no trailing slash); "" for none. */
  prefix: string;
  /** "https://registry.example.com" (scheme and host, no path); "" for none. */
  host: string;
  /** true: Location stays a path (berth's default); false with a host: absolute URLs. */
  relative: boolean;
}

/** "/registry/" → "/registry", "/" or "" → "". */
export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/\/+$/, '');
  return p === '' ? '' : p.startsWith('/') ? p : `/${p}`;
}

/** True when nothing is to be done (no prefix, no absolute URLs). */
export function isIdentity(m: UrlMapping): boolean {
  return m.prefix === '' && (m.relative || m.host === '');
}

/** The Location value a client should see for `loc` (only paths are rewritten; absolute redirects stay). */
export function mapLocation(loc: string, m: UrlMapping): string {
  if (!loc.startsWith('/')) return loc;
  const path = `${m.prefix}${loc}`;
  return !m.relative && m.host !== '' ? `${m.host.replace(/\/+$/, '')}${path}` : path;
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
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      const own = this.getHeader('location');
      if (typeof own === 'string') this.setHeader('Location', mapLocation(own, m));
      const headers = args.find((a, i) => i > 0 && a !== null && typeof a === 'object' && !Array.isArray(a)) as Record<string, unknown> | undefined;
      if (headers) {
        for (const k of Object.keys(headers)) {
          if (k.toLowerCase() === 'location' && typeof headers[k] === 'string') headers[k] = mapLocation(headers[k] as string, m);
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
