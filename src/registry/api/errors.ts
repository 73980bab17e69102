// The OCI error table and the one mapping from domain errors to it (STYLE §3). Statuses are the
// defaults of Distribution's errcode table; overrides (416, 413) sit on the mapping line. Only this
// file decides codes; handlers throw domain errors (or OciError) and the router writes them.
import {
  BlobUnknownError, DigestInvalidError, DigestMismatchError, ManifestBlobUnknownError, ManifestInvalidError,
  ManifestTooLargeError, ManifestUnknownError, NameInvalidError, NameUnknownError, OperationUnsupportedError,
  PaginationNumberInvalidError, SizeInvalidError, TagInvalidError, UploadInvalidError, UploadBusyError, UploadLimitError, UploadRangeError,
  UploadUnknownError,
} from '../core/errors.js';
import { uploadHeaders } from './headers.js';

export const OCI = {   // spec codes → default status; the envelope message is the spec's wording
  BLOB_UNKNOWN: 404, BLOB_UPLOAD_INVALID: 400, BLOB_UPLOAD_UNKNOWN: 404, DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400, MANIFEST_INVALID: 400, MANIFEST_UNKNOWN: 404, NAME_INVALID: 400,
  NAME_UNKNOWN: 404, SIZE_INVALID: 400, UNAUTHORIZED: 401, DENIED: 403, UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  // Distribution's codes beyond the spec table (same names and statuses as registry:2):
  TAG_INVALID: 400, PAGINATION_NUMBER_INVALID: 400, RANGE_INVALID: 416, UNAVAILABLE: 503,
  UNKNOWN: 500,        // ours, 5xx only: 4xx bodies use a code above
} as const;
export type OciCode = keyof typeof OCI;

export const OCI_MESSAGE: Record<OciCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
  TAG_INVALID: 'manifest tag did not match URI',
  PAGINATION_NUMBER_INVALID: 'invalid number of results requested',
  RANGE_INVALID: 'invalid content range',
  UNAVAILABLE: 'service unavailable',
  UNKNOWN: 'unknown error',
};

export class OciError extends Error {
  /** `message` replaces the code's spec wording in the envelope (e.g. UNKNOWN "upstream unavailable" on a 502). */
  constructor(readonly code: OciCode, readonly detail?: Record<string, unknown>,
    readonly status: number = OCI[code], readonly headers?: Record<string, string>, message?: string) {
    super(message ?? OCI_MESSAGE[code]);
  }
}

export function toOciError(err: unknown): OciError {
  if (err instanceof OciError) return err;
  if (err instanceof BlobUnknownError) return new OciError('BLOB_UNKNOWN', { digest: err.digest });
  if (err instanceof UploadUnknownError) return new OciError('BLOB_UPLOAD_UNKNOWN', { uploadId: err.id });
  if (err instanceof UploadRangeError) {
    // 416 with where the session stands, so the client can resume (Location, Range, Docker-Upload-UUID).
    const where = err.session && uploadHeaders(err.session.repo, err.session.id, err.expectedStart);
    return new OciError('BLOB_UPLOAD_INVALID', { expectedStart: err.expectedStart }, 416, where);
  }
  if (err instanceof UploadInvalidError) return new OciError('BLOB_UPLOAD_INVALID', { reason: err.message });
  if (err instanceof UploadBusyError) return new OciError('TOOMANYREQUESTS', { reason: err.message, uploadId: err.id }, 429, { 'Retry-After': String(err.retryAfter) });
  if (err instanceof UploadLimitError) return new OciError('TOOMANYREQUESTS', { reason: err.message }, 429, { 'Retry-After': String(err.retryAfter) });
  if (err instanceof DigestMismatchError) return new OciError('DIGEST_INVALID', { expected: err.expected, actual: err.actual });
  if (err instanceof DigestInvalidError) return new OciError('DIGEST_INVALID', { digest: err.digest, reason: err.message });
  if (err instanceof SizeInvalidError) return new OciError('SIZE_INVALID', { reason: err.message });
  if (err instanceof ManifestTooLargeError) return new OciError('MANIFEST_INVALID', { reason: err.message, limit: err.limit }, 413, { Connection: 'close' });
  if (err instanceof ManifestInvalidError) return new OciError('MANIFEST_INVALID', { reason: err.message });
  if (err instanceof ManifestUnknownError) return new OciError('MANIFEST_UNKNOWN', { reference: err.reference });
  if (err instanceof ManifestBlobUnknownError) return new OciError('MANIFEST_BLOB_UNKNOWN', { digest: err.digest });
  if (err instanceof NameInvalidError) return new OciError('NAME_INVALID', { name: err.repoName });
  if (err instanceof NameUnknownError) return new OciError('NAME_UNKNOWN', { name: err.repoName });
  if (err instanceof TagInvalidError) return new OciError('TAG_INVALID', { tag: err.tag });
  if (err instanceof OperationUnsupportedError) return new OciError('UNSUPPORTED', { reason: err.message });
  if (err instanceof PaginationNumberInvalidError) return new OciError('PAGINATION_NUMBER_INVALID', { n: err.n });
  // The store is down, slow or refusing (storage/driver.ts StorageUnavailableError, checked by its code so api
  // imports no storage module): the request may succeed later.
  if ((err as { code?: unknown } | null)?.code === 'STORAGE_UNAVAILABLE') return new OciError('UNAVAILABLE', undefined, 503, { 'Retry-After': '5' });
  return new OciError('UNKNOWN');        // never put err.message of a 5xx in the body
}

/** The JSON envelope `{"errors":[{code, message, detail}]}`. */
export function errorBody(e: OciError): string {
  const entry: Record<string, unknown> = { code: e.code, message: e.message };
  if (e.detail !== undefined) entry.detail = e.detail;
  return JSON.stringify({ errors: [entry] });
}
