// GET /v2/<name>/tags/list (spec: "Listing Tags", end-8a/end-8b): lexical order, `n`/`last`,
// `Link: <...>; rel="next"` when more remain. An unknown repository is 404 NAME_UNKNOWN (core says so).
import type { Ctx } from '../context.js';
import { JSON_TYPE } from '../headers.js';
import { nextLink, page, parseN } from '../pagination.js';

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-tags
export async function getTags(ctx: Ctx): Promise<void> {
  const { repo, signal } = ctx;
  const n = parseN(ctx.query);
  const last = ctx.query.get('last') ?? undefined;
  const all = await repo.tags.list({ signal });
  const { items, more } = page(all, n, last);
  const headers: Record<string, string> = { 'Content-Type': JSON_TYPE };
  if (more && n !== undefined && items.length > 0) {
    headers.Link = nextLink(`/v2/${repo.name}/tags/list`, n, items[items.length - 1]!);
  }
  const body = JSON.stringify({ name: repo.name, tags: items });
  headers['Content-Length'] = String(Buffer.byteLength(body));
  ctx.res.writeHead(200, headers).end(body);
}
