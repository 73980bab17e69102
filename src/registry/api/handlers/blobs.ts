// Blob GET/HEAD/DELETE (spec: "Pulling blobs" end-2/end-10, "Deleting blobs"). Bytes stream straight
// from the repository's blob reader to the socket with sendBody() (pipeline plus a byte limit and chunk
// recycling); nothing is buffered. HEAD never redirects; GET does when storage offers a URL.
import { parseDigest } from '../../core/digest.js';
import type { Ctx } from '../context.js';
import { OciError } from '../errors.js';
import { etag, ifNoneMatch, OCTET } from '../headers.js';
import { parseRange } from '../range.js';
import { sendBody } from '../send-body.js';

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-blobs
export async function getBlob(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'blob') return;
  const { req, res, repo, signal } = ctx;
  const d = parseDigest(ctx.route.digest);
  // Like Distribution's ServeBlob: every GET of a present blob (redirect, range, 304, empty) is a pull.
  const content = req.method === 'HEAD' ? undefined : await repo.blobs.get(d, { signal });
  const desc = content?.descriptor ?? await repo.blobs.stat(d, { signal });
  if (content && ctx.redirect) {
    const url = await content.redirectURL({ signal });
    if (url) {
      res.writeHead(307, { Location: url, 'Docker-Content-Digest': desc.digest.text, 'Content-Length': '0' }).end();
      return;
    }
  }
  const tag = etag(desc.digest.text);
  const headers: Record<string, string> = {
    'Docker-Content-Digest': desc.digest.text,
    ETag: tag,
    'Accept-Ranges': 'bytes',
    'Content-Type': OCTET,
    'Cache-Control': 'max-age=31536000',
  };
  if (ifNoneMatch(req.headers['if-none-match'], desc.digest.text)) {
    res.writeHead(304, headers).end();
    return;
  }
  const ifRange = req.headers['if-range'];
  const range = ifRange && ifRange !== tag ? undefined : parseRange(req.headers.range, desc.size);
  if (range === 'unsatisfiable') {
    throw new OciError('RANGE_INVALID', { size: desc.size }, 416, { 'Content-Range': `bytes */${desc.size}` });
  }
  const offset = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : desc.size;
  headers['Content-Length'] = String(length);
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${desc.size}`;
  const status = range ? 206 : 200;
  if (!content || length === 0) {
    res.writeHead(status, headers).end();
    return;
  }
  const src = await content.open({ offset, length }, { signal });
  res.writeHead(status, headers);
  await sendBody(src, res, length);
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-blobs
export async function deleteBlob(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'blob') return;
  const d = parseDigest(ctx.route.digest);
  await ctx.repo.blobs.delete(d, { signal: ctx.signal });
  ctx.res.writeHead(202, { 'Content-Length': '0' }).end();
}
