// Domain errors of the registry core. They describe what went wrong in registry terms and carry the
// data a client needs (digest, expected offset, ...); they know nothing about HTTP — api/errors.ts
// maps them to OCI codes and statuses in one table.

export class RegistryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NameInvalidError extends RegistryError {
  constructor(readonly repoName: string, reason = 'invalid repository name') { super(reason); }
}
export class NameUnknownError extends RegistryError {
  constructor(readonly repoName: string) { super(`repository not known: ${repoName}`); }
}
export class TagInvalidError extends RegistryError {
  constructor(readonly tag: string) { super('invalid tag'); }
}
export class DigestInvalidError extends RegistryError {
  constructor(readonly digest: string, reason = 'invalid digest') { super(reason); }
}
/** The uploaded bytes do not hash to the digest the client gave. */
export class DigestMismatchError extends RegistryError {
  constructor(readonly expected: string, readonly actual: string) { super('digest did not match content'); }
}
export class BlobUnknownError extends RegistryError {
  constructor(readonly digest: string) { super(`blob unknown: ${digest}`); }
}
export class UploadUnknownError extends RegistryError {
  constructor(readonly id: string) { super(`upload unknown: ${id}`); }
}
/** A chunk did not start where the upload currently ends; `session` says where it is (the 416's headers). */
export class UploadRangeError extends RegistryError {
  constructor(readonly expectedStart: number, readonly got: string, readonly session?: { repo: string; id: string }) {
    super(`chunk must start at ${expectedStart}`);
  }
}
/**
 * A user or a client address already holds as many open upload sessions as allowed (core/upload-limits.ts):
 * no session was started. `scope` says which bound was hit; `retryAfter` (seconds) is a hint for the client.
 */
export class UploadLimitError extends RegistryError {
  constructor(readonly scope: 'user' | 'address', readonly limit: number, readonly retryAfter: number) {
    super(`too many open upload sessions for this ${scope} (limit ${limit})`);
  }
}
/**
 * Another request (in this or another replica) holds the upload session's lock (core/upload-lock.ts) for longer
 * than a request waits, or this request lost the lock while it ran: nothing was appended by this request after
 * that, and the session stays at its stored size. `retryAfter` (seconds) is a hint for the client.
 */
export class UploadBusyError extends RegistryError {
  constructor(readonly id: string, readonly retryAfter: number, reason = 'another request is writing to this upload session') {
    super(reason);
  }
}
export class UploadInvalidError extends RegistryError {
  constructor(reason: string) { super(reason); }
}
/** A declared length (Content-Length / Content-Range) did not match the bytes received. */
export class SizeInvalidError extends RegistryError {
  constructor(reason: string) { super(reason); }
}
export class ManifestInvalidError extends RegistryError {
  constructor(reason: string) { super(reason); }
}
export class ManifestTooLargeError extends RegistryError {
  constructor(readonly limit: number) { super(`manifest exceeds ${limit} bytes`); }
}
export class ManifestUnknownError extends RegistryError {
  constructor(readonly reference: string) { super(`manifest unknown: ${reference}`); }
}
export class ManifestBlobUnknownError extends RegistryError {
  constructor(readonly digest: string) { super(`manifest references unknown blob or manifest: ${digest}`); }
}
/** Operation switched off by configuration (deletes disabled, read-only mode). */
export class OperationUnsupportedError extends RegistryError {
  constructor(reason: string) { super(reason); }
}
export class PaginationNumberInvalidError extends RegistryError {
  constructor(readonly n: string) { super('invalid number of results requested'); }
}
/** The client went away mid-request: not an error of ours, never reported as 4xx/5xx. */
export class ClientDisconnectError extends RegistryError {
  constructor(options?: { cause?: unknown }, readonly context: Record<string, unknown> = {}) { super('client disconnected', options); }
}

const DISCONNECT_CODES = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR', 'EPIPE']);

/** True for errors that only mean "the client went away" (a body stream cut, an aborted signal). */
export function isDisconnect(err: unknown): boolean {
  if (err instanceof ClientDisconnectError) return true;
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && DISCONNECT_CODES.has(code);
}
