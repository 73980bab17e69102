// Blob uploads (spec: "Pushing blobs", end-4a/4b/5/6/11/12/13): session start, monolithic POST, streamed
// and chunked PATCH, final PUT, status GET, cancel DELETE and cross-repo mount. Handlers translate HTTP
// (Content-Range, Content-Length, query) into core calls; locking, range and size checks live in core
// (repo.uploads), made once. Every body is streamed; nothing is buffered.
import type { IncomingMessage } from 'node:http';
import { parseDigest, tryParseDigest } from '../../core/digest.js';
import { DigestInvalidError } from '../../core/errors.js';
import type { Chunk } from '../../core/repository.js';
import type { Ctx } from '../context.js';
import { uploadHeaders } from '../headers.js';
import { contentLength, parseContentRange } from '../range.js';

function blobCreated(ctx: Ctx, digest: string): void {
  ctx.res.writeHead(201, {
    Location: `/v2/${ctx.repo.name}/blobs/${digest}`,
    'Docker-Content-Digest': digest,
    'Content-Length': '0',
  }).end();
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-blobs
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
export async function startUpload(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'uploadStart') return;
  const { repo, query, signal } = ctx;
  if (query.get('mount') !== null) {
    // Any reason we cannot mount (bad digest, bad or missing `from`, blob not there) → a normal session (202).
    const m = ctx.route.mount;
    const d = m && tryParseDigest(m.digest);
    const desc = m && d ? await repo.blobs.mount(m.from, d, { signal }) : undefined;
    if (desc) {
      blobCreated(ctx, desc.digest.text);
      return;
    }
  } else {
    const dq = query.get('digest');
    if (dq !== null) {                         // monolithic upload: POST ?digest= with the whole body
      const d = parseDigest(dq);
      await repo.uploads.upload(d, chunkOf(ctx.req), { signal });
      blobCreated(ctx, d.text);
      return;
    }
  }
  const session = await repo.uploads.start({ signal });
  ctx.res.writeHead(202, uploadHeaders(repo.name, session.id, 0)).end();
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-in-chunks
export async function patchUpload(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'upload') return;
  const { repo, signal } = ctx;
  const status = await repo.uploads.append(ctx.route.id, chunkOf(ctx.req), { signal });
  ctx.res.writeHead(202, uploadHeaders(repo.name, status.id, status.size)).end();
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-in-chunks (closing PUT)
export async function putUpload(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'upload') return;
  const { repo, signal } = ctx;
  const dq = ctx.query.get('digest');
  if (dq === null || dq === '') throw new DigestInvalidError('', 'digest query parameter is required');
  const d = parseDigest(dq);
  await repo.uploads.commit(ctx.route.id, d, hasBody(ctx.req) ? chunkOf(ctx.req) : undefined, { signal });
  blobCreated(ctx, d.text);
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#get-upload-status (end-13)
export async function getUploadStatus(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'upload') return;
  const status = await ctx.repo.uploads.status(ctx.route.id, { signal: ctx.signal });
  ctx.res.writeHead(204, uploadHeaders(ctx.repo.name, status.id, status.size)).end();
}

// Cancel an upload (Distribution's DELETE /v2/<name>/blobs/uploads/<uuid>, end-12 in the table).
export async function cancelUpload(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'upload') return;
  await ctx.repo.uploads.cancel(ctx.route.id, { signal: ctx.signal });
  ctx.res.writeHead(204, { 'Content-Length': '0' }).end();
}

function hasBody(req: IncomingMessage): boolean {
  const cl = contentLength(req.headers['content-length']);
  return (cl !== undefined && cl > 0) || req.headers['transfer-encoding'] !== undefined;
}

/** The request body as a chunk: its Content-Range ('malformed' when unparsable) and Content-Length. */
function chunkOf(req: IncomingMessage): Chunk {
  const cr = parseContentRange(req.headers['content-range'] as string | undefined);
  return { body: req, range: cr === 'invalid' ? 'malformed' : cr, length: contentLength(req.headers['content-length']) };
}
