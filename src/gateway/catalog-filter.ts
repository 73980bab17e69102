// Sidecar mode's /v2/_catalog under access rules: the upstream (registry:2) knows nothing of berth's rules, so the
// gateway answers the catalog itself from paginated upstream reads (`n=1000`, following the upstream's own order and
// `last`), keeping only the names the caller may pull, with its own `n`, `last` and Link (a Link only when another
// visible name exists). Each upstream page is bounded (4 MiB) and times out like the proxy (proxy.readtimeout).
// It never changes other requests and never buffers anything but catalog pages.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Logger } from '../log/logger.js';
import { OciError } from '../registry/api/errors.js';
import { JSON_TYPE } from '../registry/api/headers.js';
import { CATALOG_DEFAULT_PAGE, MAX_PAGE, nextLink, parseN } from '../registry/api/pagination.js';
import { sendError } from '../registry/api/send-error.js';

const MAX_PAGE_BYTES = 4 << 20;
const UPSTREAM_PAGE = MAX_PAGE;

export interface CatalogFilterOptions {
  /** The upstream's origin, `http(s)://host:port`. */
  target: string;
  readTimeoutMs: number;
  ca?: string | Buffer | Array<string | Buffer>;
}

/** Answers GET /v2/_catalog with the upstream's names that `pullable` accepts. Never throws. */
export type CatalogFilter = (req: http.IncomingMessage, res: http.ServerResponse, pullable: (name: string) => boolean, log: Logger) => void;

class UpstreamCatalogError extends Error {
  constructor(why: string) { super(`upstream catalog: ${why}`); }
}

export function createCatalogFilter(o: CatalogFilterOptions): CatalogFilter {
  const target = new URL(o.target);
  const lib = target.protocol === 'https:' ? https : http;

  /** One upstream page after `last`: its names and whether it sent a Link. */
  const page = (req: http.IncomingMessage, last: string | undefined): Promise<{ names: string[]; more: boolean }> =>
    new Promise((resolve, reject) => {
      const q = new URLSearchParams({ n: String(UPSTREAM_PAGE) });
      if (last !== undefined) q.set('last', last);
      const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
      for (const h of ['authorization', 'x-request-id', 'user-agent', 'x-forwarded-for', 'x-forwarded-proto', 'x-real-ip', 'host']) {
        if (req.headers[h] !== undefined) headers[h] = req.headers[h];
      }
      const up = lib.request({ protocol: target.protocol, hostname: target.hostname, port: target.port, path: `/v2/_catalog?${q}`, method: 'GET', headers,
        agent: false, ...(o.ca ? { ca: o.ca } : {}) });   // a connection per page: catalogs are rare, nothing to close
      up.setTimeout(o.readTimeoutMs, () => up.destroy(new Error('read timeout')));
      up.once('error', (err) => reject(new UpstreamCatalogError(err.message)));
      up.once('response', (r) => {
        const chunks: Buffer[] = [];
        let size = 0;
        r.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_PAGE_BYTES) { up.destroy(new Error(`page over ${MAX_PAGE_BYTES} bytes`)); return; }
          chunks.push(c);
        });
        r.once('error', (err) => reject(new UpstreamCatalogError(err.message)));
        r.once('end', () => {
          if (r.statusCode !== 200) { reject(new UpstreamCatalogError(`status ${r.statusCode}`)); return; }
          try {
            const names = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { repositories?: unknown }).repositories;
            if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new Error('no repositories list');
            resolve({ names, more: r.headers.link !== undefined });
          } catch (err) {
            reject(new UpstreamCatalogError((err as Error).message));
          }
        });
      });
      up.end();
    });

  return (req, res, pullable, log) => {
    const run = async () => {
      const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
      const n = parseN(query) ?? CATALOG_DEFAULT_PAGE;
      const last = query.get('last') || undefined;
      const names: string[] = [];
      let more = false;
      let cursor = last;
      while (n > 0) {
        const p = await page(req, cursor);
        for (const name of p.names) {
          if (!pullable(name)) continue;
          if (names.length === n) { more = true; break; }
          names.push(name);
        }
        if (more || !p.more || p.names.length === 0) break;
        cursor = p.names[p.names.length - 1];
      }
      const body = JSON.stringify({ repositories: names });
      const headers: Record<string, string> = { 'Content-Type': JSON_TYPE, 'Content-Length': String(Buffer.byteLength(body)) };
      if (more) headers.Link = nextLink('/v2/_catalog', n, names[names.length - 1]!);
      res.writeHead(200, headers).end(body);
    };
    run().catch((err: unknown) => {
      if (err instanceof UpstreamCatalogError) {
        log.warn({ err: err.message }, 'upstream catalog failed');
        err = new OciError('UNKNOWN', undefined, 502, undefined, 'upstream unavailable');
      }
      sendError(req, res, err, log);   // a bad `n`: 400 PAGINATION_NUMBER_INVALID
    });
  };
}
