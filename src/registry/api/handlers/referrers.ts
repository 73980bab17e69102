// GET /v2/<name>/referrers/<digest> (spec: "Listing Referrers", end-12a/end-12b): always 200 with an
// OCI image index (empty for an unknown subject), optional `artifactType` filter.
import { parseDigest } from '../../core/digest.js';
import { MT } from '../../core/manifest-validate.js';
import type { Ctx } from '../context.js';

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
export async function getReferrers(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'referrers') return;
  const subject = parseDigest(ctx.route.digest);
  const artifactType = ctx.query.get('artifactType') ?? undefined;
  const manifests = await ctx.repo.referrers.list(subject, artifactType, { signal: ctx.signal });
  const body = JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests });
  const headers: Record<string, string> = { 'Content-Type': MT.ociIndex, 'Content-Length': String(Buffer.byteLength(body)) };
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  ctx.res.writeHead(200, headers).end(body);
}
