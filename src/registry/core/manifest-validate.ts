// Parses and validates a pushed manifest (Docker schema2, Docker manifest list, OCI image manifest,
// OCI image index) into the few fields the registry needs. Structure only: whether referenced blobs
// exist is checked by manifest-store.ts. Docker schema1 is rejected (unsupported).
import { tryParseDigest, type Digest } from './digest.js';
import { ManifestInvalidError } from './errors.js';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

const IMAGE_TYPES = new Set<string>([MT.dockerManifest, MT.ociManifest]);
const INDEX_TYPES = new Set<string>([MT.dockerList, MT.ociIndex]);

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  config?: Descriptor;
  layers: Descriptor[];
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Media type without parameters, lowercased; '' when absent. */
export function normalizeContentType(ct: string | undefined): string {
  if (!ct) return '';
  const i = ct.indexOf(';');
  return (i < 0 ? ct : ct.slice(0, i)).trim().toLowerCase();
}

/**
 * The media type of stored manifest bytes, as Distribution infers it on GET: the body's `mediaType`,
 * or for OCI content without one, an index when it has `manifests`, else an image manifest.
 */
export function storedMediaType(json: Record<string, unknown>): string {
  if (typeof json.mediaType === 'string' && json.mediaType) return json.mediaType;
  return Array.isArray(json.manifests) ? MT.ociIndex : MT.ociManifest;
}

export function parseManifestJson(bytes: Uint8Array): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw new ManifestInvalidError('manifest is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ManifestInvalidError('manifest is not a JSON object');
  return json as Record<string, unknown>;
}

/** Validates bytes pushed with `contentType`; throws ManifestInvalidError naming the problem. */
export function validateManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  const ct = normalizeContentType(contentType);
  if (ct === MT.schema1 || ct === MT.schema1Signed) throw new ManifestInvalidError('Docker schema1 manifests are not supported');
  const json = parseManifestJson(bytes);
  if (json.schemaVersion === 1) throw new ManifestInvalidError('Docker schema1 manifests are not supported');
  if (json.schemaVersion !== 2) throw new ManifestInvalidError('schemaVersion must be 2');

  let mediaType: string;
  if (json.mediaType !== undefined) {
    if (typeof json.mediaType !== 'string') throw new ManifestInvalidError('mediaType must be a string');
    mediaType = json.mediaType;
    if (mediaType === MT.schema1 || mediaType === MT.schema1Signed) throw new ManifestInvalidError('Docker schema1 manifests are not supported');
    if (ct && ct !== mediaType) throw new ManifestInvalidError(`Content-Type ${ct} does not match mediaType ${mediaType}`);
  } else if (ct === MT.ociManifest || ct === MT.ociIndex) {
    mediaType = ct;
  } else if (ct === MT.dockerManifest || ct === MT.dockerList) {
    throw new ManifestInvalidError(`mediaType is required for ${ct}`);
  } else {
    mediaType = storedMediaType(json);
  }
  if (!IMAGE_TYPES.has(mediaType) && !INDEX_TYPES.has(mediaType)) throw new ManifestInvalidError(`unsupported manifest media type: ${mediaType}`);
  // Without a mediaType field, GET infers the type from the body; refuse bodies it would misread.
  if (json.mediaType === undefined && storedMediaType(json) !== mediaType) {
    throw new ManifestInvalidError('manifest without mediaType is ambiguous (has "manifests")');
  }
  const oci = mediaType === MT.ociManifest || mediaType === MT.ociIndex;
  const m: ParsedManifest = { mediaType, kind: IMAGE_TYPES.has(mediaType) ? 'image' : 'index', layers: [], manifests: [] };

  if (m.kind === 'image') {
    m.config = descriptor(json.config, 'config');
    if (!Array.isArray(json.layers)) throw new ManifestInvalidError('layers must be an array');
    m.layers = json.layers.map((l, i) => descriptor(l, `layers[${i}]`));
  } else {
    if (!Array.isArray(json.manifests)) throw new ManifestInvalidError('manifests must be an array');
    m.manifests = json.manifests.map((d, i) => descriptor(d, `manifests[${i}]`));
  }
  if (oci && json.subject !== undefined) m.subject = descriptor(json.subject, 'subject');
  if (json.artifactType !== undefined) {
    if (typeof json.artifactType !== 'string') throw new ManifestInvalidError('artifactType must be a string');
    m.artifactType = json.artifactType;
  }
  if (json.annotations !== undefined) m.annotations = stringMap(json.annotations, 'annotations');
  return m;
}

function descriptor(v: unknown, where: string): Descriptor {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ManifestInvalidError(`${where} must be a descriptor object`);
  const o = v as Record<string, unknown>;
  if (typeof o.mediaType !== 'string' || !o.mediaType) throw new ManifestInvalidError(`${where}.mediaType must be a non-empty string`);
  const digest = typeof o.digest === 'string' ? tryParseDigest(o.digest) : undefined;
  if (!digest) throw new ManifestInvalidError(`${where}.digest is not a valid sha256/sha512 digest`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new ManifestInvalidError(`${where}.size must be a non-negative integer`);
  }
  const d: Descriptor = { mediaType: o.mediaType, digest, size: o.size };
  if (o.urls !== undefined) {
    if (!Array.isArray(o.urls) || o.urls.some((u) => typeof u !== 'string')) throw new ManifestInvalidError(`${where}.urls must be an array of strings`);
    d.urls = o.urls as string[];
  }
  if (o.annotations !== undefined) stringMap(o.annotations, `${where}.annotations`);
  return d;
}

function stringMap(v: unknown, where: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new ManifestInvalidError(`${where} must be a map of strings`);
  }
  return v as Record<string, string>;
}
