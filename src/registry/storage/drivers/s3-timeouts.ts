// The S3 client's bounds on a slow or stalled store, apart from s3-client.ts so that s3.ts (which must not load
// the SDK at start) can use the defaults for its parameters requesttimeout and idletimeout.
/**
 * How long berth waits for the object store before a request counts as failed (StorageUnavailableError: the
 * client gets 503 UNAVAILABLE with Retry-After). A request that sends no body, or a small one held in memory
 * (HEAD, GET's headers, List*, PutObject of a manifest or link, Create/AbortMultipartUpload, DeleteObject; a body
 * up to 64 KiB) must
 * get its response headers within `attempt` per attempt and `call` over all attempts (the SDK retries up to 3
 * times). A request that streams (an UploadPart body arriving at the client's pace, a large part, a GetObject
 * body, a copy or CompleteMultipartUpload the store may take long over) has no total limit: it fails when its
 * socket moves no byte either way for `idle`. `connect` bounds the TCP (and TLS) connect. berth's config keys
 * registry.storage.s3.requesttimeout (`call`, seconds; `attempt` is half of it) and .idletimeout (`idle`) set them.
 */
export interface S3Timeouts { connect: number; attempt: number; call: number; idle: number }
export const S3_TIMEOUTS: Readonly<S3Timeouts> = Object.freeze({ connect: 3000, attempt: 10_000, call: 20_000, idle: 60_000 });

/** The error of a bound above running out (`what` did not happen within `ms`): a TimeoutError, as the SDK's are,
 *  which mapS3Error maps to the store being unavailable. */
export function storeTimeout(what: string, ms: number): Error {
  return Object.assign(new Error(`object store: ${what} within ${ms} ms`), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}
