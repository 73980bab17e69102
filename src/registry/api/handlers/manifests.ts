// Manifest GET/HEAD/PUT/DELETE by tag or digest (spec: "Pulling manifests" end-3, "Pushing
// manifests" end-7, "Deleting tags/manifests" end-9). Manifest bodies are the only thing buffered,
// capped at 4 MiB while reading. Exact bytes in, exact bytes out, with the stored media type.
import type { IncomingMessage } from 'node:http';
import { parseDigest, tryParseDigest } from '../../core/digest.js';
import { ClientDisconnectError, ManifestTooLargeError, ManifestUnknownError } from '../../core/errors.js';
import { assertTag, isValidTag } from '../../core/names.js';
import type { ManifestRef } from '../../core/repository.js';
import type { Ctx } from '../context.js';
import { etag, ifNoneMatch } from '../headers.js';
import { contentLength } from '../range.js';

export const MANIFEST_MAX_BYTES = 4 << 20;

function parseRef(ref: string): ManifestRef {
  if (ref.includes(':')) return { digest: parseDigest(ref) };
  assertTag(ref);
  return { tag: ref };
}

/** A pull's reference: one that is neither a valid tag nor a valid digest names no manifest, so 404
 *  MANIFEST_UNKNOWN (as Distribution, whose route does not match it, zot and the OCI conformance suite);
 *  PUT keeps TAG_INVALID / DIGEST_INVALID (parseRef). */
function pullRef(ref: string): ManifestRef {
  const digest = ref.includes(':') ? tryParseDigest(ref) : undefined;
  if (digest) return { digest };
  if (!ref.includes(':') && isValidTag(ref)) return { tag: ref };
  throw new ManifestUnknownError(ref.length > 200 ? ref.slice(0, 200) : ref);
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests
export async function getManifest(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'manifest') return;
  const { req, res, repo, signal } = ctx;
  const ref = pullRef(ctx.route.ref);
  // GET is a pull (Distribution's manifest GET, a 304 included); HEAD is not.
  const m = req.method === 'HEAD' ? await repo.manifests.stat(ref, { signal }) : await repo.manifests.get(ref, { signal });
  const headers: Record<string, string> = {
    'Docker-Content-Digest': m.digest.text,
    ETag: etag(m.digest.text),
    'Content-Type': m.mediaType,
  };
  if (ifNoneMatch(req.headers['if-none-match'], m.digest.text)) {
    res.writeHead(304, headers).end();
    return;
  }
  headers['Content-Length'] = String(m.bytes.length);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : m.bytes);
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject
export async function putManifest(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'manifest') return;
  const { req, res, repo, signal } = ctx;
  const ref = parseRef(ctx.route.ref);
  const tags = 'tag' in ref ? [ref.tag] : ctx.query.getAll('tag');
  for (const t of tags) assertTag(t);   // before the body is read
  const bytes = await readCapped(req, MANIFEST_MAX_BYTES, signal);
  const put = await repo.manifests.put({
    bytes, contentType: req.headers['content-type'], digest: 'digest' in ref ? ref.digest : undefined, tags,
  }, { signal });
  const headers: Record<string, string | string[]> = {
    Location: `/v2/${repo.name}/manifests/${put.digest.text}`,
    'Docker-Content-Digest': put.digest.text,
    'Content-Length': '0',
  };
  if (put.subject) headers['OCI-Subject'] = put.subject.text;
  if ('digest' in ref && tags.length > 0) headers['OCI-Tag'] = [...new Set(tags)];
  res.writeHead(201, headers).end();
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-tags
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-manifests
export async function deleteManifest(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'manifest') return;
  await ctx.repo.manifests.delete(parseRef(ctx.route.ref), { signal: ctx.signal });
  ctx.res.writeHead(202, { 'Content-Length': '0' }).end();
}

/**
 * Reads the whole body, failing with ManifestTooLargeError as soon as it exceeds `max` (the rest is
 * not read: the 413 goes out with Connection: close). Manifests are the only bodies we buffer.
 */
function readCapped(req: IncomingMessage, max: number, signal: AbortSignal): Promise<Buffer> {
  const declared = contentLength(req.headers['content-length']);
  if (declared !== undefined && declared > max) return Promise.reject(new ManifestTooLargeError(max));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (err?: unknown) => {
      req.off('data', onData).off('end', onEnd).off('error', done).off('aborted', onAborted);
      signal.removeEventListener('abort', onAborted);
      if (err) { req.pause(); reject(err); } else resolve(Buffer.concat(chunks, total));
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > max) done(new ManifestTooLargeError(max));
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onAborted = () => done(new ClientDisconnectError());
    req.on('data', onData).on('end', onEnd).on('error', done).on('aborted', onAborted);
    signal.addEventListener('abort', onAborted);
  });
}
