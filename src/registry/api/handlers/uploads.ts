// Blob uploads (spec: "Pushing blobs", end-4a/4b/5/6/11/12/13): session start, monolithic POST,
// streamed and chunked PATCH, final PUT, status GET, cancel DELETE and cross-repo mount. Every body
// is streamed through the hashing tap into the driver; work on one upload id is serialised.
import type { IncomingMessage } from 'node:http';
import { parseDigest, tryParseDigest } from '../../core/digest.js';
import { BlobUnknownError, ClientDisconnectError, DigestInvalidError, RegistryError, SizeInvalidError, UploadRangeError } from '../../core/errors.js';
import { isValidName } from '../../core/names.js';
import type { UploadSession } from '../../core/upload.js';
import type { Ctx } from '../context.js';
import { OCTET, uploadHeaders, uploadLocation, uploadRange } from '../headers.js';
import { contentLength, parseContentRange } from '../range.js';
import { isDisconnect } from '../router.js';

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
  const { repo, query, signal } = ctx;
  const mount = query.get('mount');
  if (mount !== null) {
    // Any reason we cannot mount (bad digest, bad or missing `from`, blob not there) → a normal session (202).
    const d = tryParseDigest(mount);
    const from = query.get('from');
    if (d && from && isValidName(from)) {
      const desc = await ctx.registry.repository(from).blobs.stat(d, { signal }).catch((err) => {
        if (err instanceof BlobUnknownError) return undefined;
        throw err;
      });
      if (desc) {
        await repo.blobs.link(desc.digest, { signal });
        await ctx.notify?.('mount', { repository: repo.name, kind: 'blob', mediaType: OCTET, size: desc.size, digest: desc.digest.text, fromRepository: from });
        blobCreated(ctx, desc.digest.text);
        return;
      }
    }
  } else {
    const dq = query.get('digest');
    if (dq !== null) {                         // monolithic upload: POST ?digest= with the whole body
      const d = parseDigest(dq);
      const session = await repo.uploads.start({ signal, algorithm: d.algorithm });
      const desc = await repo.uploads.locked(session.id, async () => {
        await appendBody(ctx, session);
        return session.commit(d, { signal });
      });
      await ctx.notify?.('push', { repository: repo.name, kind: 'blob', mediaType: OCTET, size: desc.size, digest: desc.digest.text });
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
  const id = ctx.route.id;
  await repo.uploads.locked(id, async () => {
    const session = await repo.uploads.resume(id, { signal });
    await appendBody(ctx, session);
    ctx.res.writeHead(202, uploadHeaders(repo.name, session.id, session.size)).end();
  });
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-in-chunks (closing PUT)
export async function putUpload(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'upload') return;
  const { repo, signal } = ctx;
  const id = ctx.route.id;
  const dq = ctx.query.get('digest');
  if (dq === null || dq === '') throw new DigestInvalidError('', 'digest query parameter is required');
  const d = parseDigest(dq);
  const desc = await repo.uploads.locked(id, async () => {
    const session = await repo.uploads.resume(id, { signal });
    if (hasBody(ctx.req)) await appendBody(ctx, session);
    return session.commit(d, { signal });
  });
  await ctx.notify?.('push', { repository: repo.name, kind: 'blob', mediaType: OCTET, size: desc.size, digest: desc.digest.text });
  blobCreated(ctx, d.text);
}

// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#get-upload-status (end-13)
export async function getUploadStatus(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'upload') return;
  const { repo, signal } = ctx;
  const id = ctx.route.id;
  // Under the lock, so the size reported is never that of a half-appended chunk.
  const session = await repo.uploads.locked(id, () => repo.uploads.resume(id, { signal }));
  ctx.res.writeHead(204, uploadHeaders(repo.name, session.id, session.size)).end();
}

// Cancel an upload (Distribution's DELETE /v2/<name>/blobs/uploads/<uuid>, end-12 in the table).
export async function cancelUpload(ctx: Ctx): Promise<void> {
  if (ctx.route.kind !== 'upload') return;
  const { repo, signal } = ctx;
  const id = ctx.route.id;
  await repo.uploads.locked(id, async () => {
    const session = await repo.uploads.resume(id, { signal });
    await session.cancel({ signal });
  });
  ctx.res.writeHead(204, { 'Content-Length': '0' }).end();
}

function hasBody(req: IncomingMessage): boolean {
  const cl = contentLength(req.headers['content-length']);
  return (cl !== undefined && cl > 0) || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Streams the request body into the session, honouring Content-Range (must start at the current
 * size: else 416 with the current Range and Location) and Content-Length (must equal the range).
 */
async function appendBody(ctx: Ctx, session: UploadSession): Promise<void> {
  const { req, res, signal } = ctx;
  const cr = parseContentRange(req.headers['content-range'] as string | undefined);
  const cl = contentLength(req.headers['content-length']);
  try {
    if (cr === 'invalid') throw new UploadRangeError(session.size, String(req.headers['content-range']).slice(0, 100));
    let length: number | undefined;
    if (cr) {
      length = cr.end - cr.start + 1;
      if (cl !== undefined && cl !== length) throw new SizeInvalidError(`Content-Length ${cl} does not match Content-Range ${cr.start}-${cr.end}`);
      if (cr.start !== session.size) throw new UploadRangeError(session.size, String(cr.start));
    }
    await session.append(req, { start: cr?.start, length, signal });
  } catch (err) {
    if (err instanceof UploadRangeError) {
      res.setHeader('Location', uploadLocation(ctx.repo.name, session.id));
      res.setHeader('Range', uploadRange(err.expectedStart));
      res.setHeader('Docker-Upload-UUID', session.id);
    }
    if (err instanceof RegistryError) throw err;
    if (signal.aborted || isDisconnect(err)) {
      throw new ClientDisconnectError({ cause: err }, { uploadId: session.id, repo: ctx.repo.name, sizeBefore: session.size, sessionKept: true });
    }
    throw err;
  }
}
