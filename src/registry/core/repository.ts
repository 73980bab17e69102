// The registry core's seam: Registry and Repository as interfaces, the only way from registry/api down
// (Distribution's distribution.Namespace / distribution.Repository). The storage implementation is
// storage-registry.ts; features that cut across (notifications, the blob-descriptor cache, later access
// and pull-through) are RepositoryDecorators that wrap this interface. No HTTP here: ranges, digests and
// sizes come in parsed; errors are core/errors.ts's domain errors.
import type { Readable } from 'node:stream';
import type { OpOptions } from '../storage/driver.js';
import type { Digest } from './digest.js';

export type { OpOptions };

export interface BlobDescriptor { digest: Digest; size: number }

/** A blob being pulled: its descriptor, and its bytes either straight from storage or behind a redirect. */
export interface BlobContent {
  readonly descriptor: BlobDescriptor;
  /** A URL the client may fetch the bytes from directly (e.g. a presigned S3 URL), or null to stream. */
  redirectURL(o?: OpOptions): Promise<string | null>;
  /** Streams `length` bytes from `offset` (default: the whole blob). Never buffers the blob. */
  open(span?: { offset: number; length: number }, o?: OpOptions): Promise<Readable>;
}

export interface Blobs {
  /** The descriptor of a blob linked into this repository; BlobUnknownError otherwise. No side effects (HEAD). */
  stat(d: Digest, o?: OpOptions): Promise<BlobDescriptor>;
  /** A pull of the blob (GET): same lookup and errors as stat, plus access to the bytes. */
  get(d: Digest, o?: OpOptions): Promise<BlobContent>;
  /**
   * Cross-repository mount: links blob d of repository `from` into this one. Resolves with the descriptor,
   * or undefined when `from` is not a valid name or does not hold d (the caller then starts a normal upload).
   */
  mount(from: string, d: Digest, o?: OpOptions): Promise<BlobDescriptor | undefined>;
  /** Unlinks the blob from this repository (data stays for GC). BlobUnknownError when it was not linked;
   *  OperationUnsupportedError when deletes are disabled or the registry is read-only. */
  delete(d: Digest, o?: OpOptions): Promise<void>;
}

/** What a client sees of an upload session (Location, Range, Docker-Upload-UUID). */
export interface UploadStatus { id: string; size: number; startedAt: Date }

/**
 * One chunk of an upload. `range` is the chunk's Content-Range (inclusive), 'malformed' when the header was
 * present but unparsable; `length` its declared Content-Length. Checked once, in core: the chunk must start
 * at the session's size (else UploadRangeError, carrying the session's state for the 416), and the bytes
 * received must equal the declared length (else SizeInvalidError).
 */
export interface Chunk {
  body: Readable;
  range?: { start: number; end: number } | 'malformed';
  length?: number;
}

/**
 * Blob upload sessions. Work on one session id is serialised inside the implementation (callers never
 * lock). A client that goes away mid-chunk (`o.signal` aborted, or the body stream fails with a
 * disconnect) gets ClientDisconnectError and the session stays resumable at its stored size.
 */
export interface Uploads {
  start(o?: OpOptions): Promise<UploadStatus>;
  /** UploadUnknownError when there is no such session. */
  status(id: string, o?: OpOptions): Promise<UploadStatus>;
  append(id: string, chunk: Chunk, o?: OpOptions): Promise<UploadStatus>;
  /**
   * Appends the final chunk (if any), verifies the stored bytes against `digest`, makes the blob visible
   * in this repository and ends the session. DigestMismatchError ends the session too (as Distribution).
   */
  commit(id: string, digest: Digest, last?: Chunk, o?: OpOptions): Promise<BlobDescriptor>;
  /** Monolithic upload (POST ?digest= with the body): a session that ends here, committed or discarded. */
  upload(digest: Digest, chunk: Chunk, o?: OpOptions): Promise<BlobDescriptor>;
  /** Ends the session and deletes what it stored; UploadUnknownError when there is none. */
  cancel(id: string, o?: OpOptions): Promise<void>;
}

export type ManifestRef = { digest: Digest } | { tag: string };

export interface StoredManifest {
  digest: Digest;
  bytes: Buffer;
  mediaType: string;
  /** The tag it was looked up by, if any. */
  tag?: string;
}

export interface PutManifest {
  bytes: Buffer;
  contentType: string | undefined;
  /** PUT by digest: the body must hash to it (DigestMismatchError otherwise). */
  digest?: Digest;
  /** Tags to point at the manifest once stored (PUT by tag, or OCI 1.1's ?tag=). */
  tags: string[];
}

export interface PutManifestResult { digest: Digest; mediaType: string; subject?: Digest; size: number }

export interface Manifests {
  /** Resolves a tag or digest to the exact stored bytes (HEAD). ManifestUnknownError, or NameUnknownError
   *  when the repository does not exist at all (as Distribution). */
  stat(ref: ManifestRef, o?: OpOptions): Promise<StoredManifest>;
  /** The same lookup as a pull (GET). */
  get(ref: ManifestRef, o?: OpOptions): Promise<StoredManifest>;
  /** Validates, stores and tags a manifest (ManifestInvalidError, ManifestBlobUnknownError, DigestMismatchError). */
  put(m: PutManifest, o?: OpOptions): Promise<PutManifestResult>;
  /** A tag: removes the tag. A digest: removes every tag pointing at it, then the revision (bytes stay for GC). */
  delete(ref: ManifestRef, o?: OpOptions): Promise<void>;
}

export interface Tags {
  /** Tag names in lexical order; NameUnknownError when the repository does not exist. */
  list(o?: OpOptions): Promise<string[]>;
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface Referrers {
  /** The referrers of `subject` (manifests whose subject it is), optionally filtered by artifactType. */
  list(subject: Digest, artifactType: string | undefined, o?: OpOptions): Promise<ReferrerDescriptor[]>;
}

export interface Repository {
  readonly name: string;
  readonly blobs: Blobs;
  readonly uploads: Uploads;
  readonly manifests: Manifests;
  readonly tags: Tags;
  readonly referrers: Referrers;
}

export interface CatalogOptions extends OpOptions {
  /** Lists only the names it accepts; the page is filled with accepted names, so `n`, `last` and Link stay right. */
  filter?: (name: string) => boolean;
}

export interface Registry {
  /** A repository view; NameInvalidError for names outside the spec grammar. Decorators already applied. */
  repository(name: string): Repository;
  /** Repository names in lexical order after `last`, at most n; `more` when the walk stopped early. `o.filter`:
   *  only names it accepts are listed (and count towards n), e.g. the caller's pull rights. */
  catalog(n: number, last: string | undefined, o?: CatalogOptions): Promise<{ names: string[]; more: boolean }>;
  /** OperationUnsupportedError when the registry is read-only (asked once per write request by the router). */
  assertWritable(): void;
}

/**
 * Wraps a repository (Distribution's notifications.Listen, registry/proxy): override what the feature needs,
 * delegate the rest to `inner`. Applied by the Registry to every repository it hands out, first = innermost.
 */
export type RepositoryDecorator = (inner: Repository) => Repository;

/**
 * A repository that forwards every call to `inner`: what a decorator spreads and then overrides, so it
 * names only the calls it changes (`{ ...f, blobs: { ...f.blobs, get } }`).
 */
export function forwarding(inner: Repository): Repository {
  const { blobs: b, uploads: u, manifests: m, tags: t, referrers: r } = inner;
  return {
    name: inner.name,
    blobs: { stat: (d, o) => b.stat(d, o), get: (d, o) => b.get(d, o), mount: (f, d, o) => b.mount(f, d, o), delete: (d, o) => b.delete(d, o) },
    uploads: {
      start: (o) => u.start(o), status: (id, o) => u.status(id, o), append: (id, c, o) => u.append(id, c, o),
      commit: (id, d, c, o) => u.commit(id, d, c, o), upload: (d, c, o) => u.upload(d, c, o), cancel: (id, o) => u.cancel(id, o),
    },
    manifests: { stat: (x, o) => m.stat(x, o), get: (x, o) => m.get(x, o), put: (x, o) => m.put(x, o), delete: (x, o) => m.delete(x, o) },
    tags: { list: (o) => t.list(o) },
    referrers: { list: (s, a, o) => r.list(s, a, o) },
  };
}
