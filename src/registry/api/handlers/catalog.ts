// GET /v2/_catalog (Distribution's catalog API; not in the OCI spec): the names, order and pages registry:2
// 2.8.2 gives on the same storage (core/catalog.ts's listCatalog: repositories with `_layers`, its walk order,
// its Link rule), `n` (default 100, max 1000) / `last`. The walk stops as soon as the page is decided. With access
// rules the gateway puts the caller's pull filter in the request's facts: only those names are listed and counted.
import { currentRequest } from '../../../util/request-context.js';
import type { Ctx } from '../context.js';
import { JSON_TYPE } from '../headers.js';
import { CATALOG_DEFAULT_PAGE, nextLink, parseN } from '../pagination.js';

// https://distribution.github.io/distribution/spec/api/#listing-repositories
export async function getCatalog(ctx: Ctx): Promise<void> {
  const n = parseN(ctx.query) ?? CATALOG_DEFAULT_PAGE;
  const last = ctx.query.get('last') ?? undefined;
  const { names, more } = n === 0 ? { names: [], more: false } : await ctx.registry.catalog(n, last || undefined, { signal: ctx.signal, filter: currentRequest()?.pullable });
  const headers: Record<string, string> = { 'Content-Type': JSON_TYPE };
  if (more && names.length > 0) headers.Link = nextLink('/v2/_catalog', n, names[names.length - 1]);
  const body = JSON.stringify({ repositories: names });
  headers['Content-Length'] = String(Buffer.byteLength(body));
  ctx.res.writeHead(200, headers).end(body);
}
