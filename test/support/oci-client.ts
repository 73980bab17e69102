// Minimal OCI Distribution helpers for protocol tests, built on test/support/http.ts (which sends paths
// byte for byte, never normalised, so hostile paths reach the server as written): blob/manifest push
// helpers, manifest builders, sha256 helpers and the OCI error-envelope assertion. They must not hide
// protocol details the tests assert on: every call returns the raw status, headers and (fully consumed) body.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request, type HttpResponse } from './http.js';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function randomBlob(size: number): Buffer {
  return randomBytes(size);
}

/** Path + query of a Location header, resolved against the registry base (it may be relative). */
export function locationPath(base: string, res: HttpResponse): string {
  const loc = res.headers.location;
  assert.ok(typeof loc === 'string' && loc.length > 0, `Location header missing (status ${res.status})`);
  const u = new URL(loc, base);
  assert.equal(u.origin, new URL(base).origin, `Location ${loc} points to another origin`);
  return u.pathname + u.search;
}

/** Appends query parameters to a Location path that may already carry a query (the spec allows it). */
export function withQuery(path: string, params: Record<string, string>): string {
  const q = new URLSearchParams(params).toString();
  return path + (path.includes('?') ? '&' : '?') + q;
}

/** Asserts the header every /v2 response must carry (Docker-Distribution-Api-Version: registry/2.0). */
export function expectApiVersion(res: HttpResponse, what = ''): void {
  assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0',
    `${what} Docker-Distribution-Api-Version missing/wrong (status ${res.status})`);
}

/** Asserts an OCI error response: status, JSON envelope {"errors":[{code,message,...}]} whose FIRST
 *  error code is `code` (or one of `code` when the spec leaves a choice), and the API version header. */
export function expectOciError(res: HttpResponse, status: number | number[], code: string | string[], what = ''): void {
  const statuses = Array.isArray(status) ? status : [status];
  const codes = Array.isArray(code) ? code : [code];
  const ctx = `${what} → ${res.status} ${res.text().slice(0, 300)}`;
  assert.ok(statuses.includes(res.status), `expected status ${statuses.join('|')}: ${ctx}`);
  expectApiVersion(res, what);
  assert.match(String(res.headers['content-type'] ?? ''), /^application\/json/, `error Content-Type: ${ctx}`);
  let env: any;
  try { env = res.json(); } catch { assert.fail(`error body is not JSON: ${ctx}`); }
  assert.ok(Array.isArray(env?.errors) && env.errors.length > 0, `no errors[] in envelope: ${ctx}`);
  for (const e of env.errors) {
    assert.equal(typeof e.code, 'string', `error code not a string: ${ctx}`);
    assert.equal(typeof e.message, 'string', `error message not a string: ${ctx}`);
  }
  assert.ok(codes.includes(env.errors[0].code), `expected code ${codes.join('|')}: ${ctx}`);
}

/** POST /v2/<name>/blobs/uploads/ → the upload Location path (asserts 202). */
export async function startUpload(base: string, name: string): Promise<string> {
  const res = await request(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
  assert.equal(res.status, 202, `POST upload ${name}: ${res.status} ${res.text()}`);
  return locationPath(base, res);
}

/** Monolithic push (POST, then PUT <location>?digest=) → digest. */
export async function pushBlob(base: string, name: string, bytes: Uint8Array | string): Promise<string> {
  const digest = sha256(bytes);
  const loc = await startUpload(base, name);
  const res = await request(`${base}${withQuery(loc, { digest })}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' }, body: bytes,
  });
  assert.equal(res.status, 201, `PUT blob ${name}@${digest}: ${res.status} ${res.text()}`);
  return digest;
}

export interface Descriptor {
  mediaType: string; digest: string; size: number;
  artifactType?: string; annotations?: Record<string, string>;
}

export function descriptor(mediaType: string, bytes: Uint8Array | string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: sha256(bytes), size: Buffer.byteLength(bytes), ...extra };
}

export function makeImageManifest(o: {
  config: Descriptor; layers: Descriptor[]; subject?: Descriptor; artifactType?: string;
  annotations?: Record<string, string>; mediaType?: string;
}): Record<string, unknown> {
  const m: Record<string, unknown> = { schemaVersion: 2, mediaType: o.mediaType ?? MT.ociManifest };
  if (o.artifactType) m.artifactType = o.artifactType;
  m.config = o.config;
  m.layers = o.layers;
  if (o.subject) m.subject = o.subject;
  if (o.annotations) m.annotations = o.annotations;
  return m;
}

export function makeIndex(manifests: Descriptor[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { schemaVersion: 2, mediaType: MT.ociIndex, manifests, ...extra };
}

export function manifestBytes(m: Record<string, unknown> | Uint8Array | string): Buffer {
  return typeof m === 'string' || m instanceof Uint8Array ? Buffer.from(m) : Buffer.from(JSON.stringify(m));
}

/** PUT /v2/<name>/manifests/<ref> (asserts nothing; returns the response and the manifest digest). */
export async function putManifest(base: string, name: string, ref: string,
  m: Record<string, unknown> | Uint8Array | string, mediaType: string = MT.ociManifest) {
  const bytes = manifestBytes(m);
  const res = await request(`${base}/v2/${name}/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes });
  return { res, digest: sha256(bytes), bytes };
}

/** PUT a manifest and assert 201 → its digest. */
export async function pushManifest(base: string, name: string, ref: string,
  m: Record<string, unknown> | Uint8Array | string, mediaType: string = MT.ociManifest): Promise<string> {
  const { res, digest } = await putManifest(base, name, ref, m, mediaType);
  assert.equal(res.status, 201, `PUT manifest ${name}:${ref}: ${res.status} ${res.text()}`);
  return digest;
}

export interface PushedImage {
  config: Descriptor; layer: Descriptor; manifest: Record<string, unknown>;
  bytes: Buffer; digest: string; configBytes: Buffer; layerBytes: Buffer;
}

/** Pushes a small random image (one config, one layer) and its manifest under `ref` (tag or digest). */
export async function pushImage(base: string, name: string, ref?: string, o: {
  subject?: Descriptor; artifactType?: string; configMediaType?: string; annotations?: Record<string, string>;
} = {}): Promise<PushedImage> {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  const layerBytes = randomBlob(512);
  await pushBlob(base, name, configBytes);
  await pushBlob(base, name, layerBytes);
  const config = descriptor(o.configMediaType ?? MT.ociConfig, configBytes);
  const layer = descriptor(MT.ociLayer, layerBytes);
  const manifest = makeImageManifest({ config, layers: [layer], subject: o.subject, artifactType: o.artifactType, annotations: o.annotations });
  const bytes = manifestBytes(manifest);
  const digest = sha256(bytes);
  await pushManifest(base, name, ref ?? digest, bytes);
  return { config, layer, manifest, bytes, digest, configBytes, layerBytes };
}

/** Parses `Link: <url>; rel="next"` → the URL's path and query params, or null when absent. */
export function parseNextLink(res: HttpResponse): { path: string; params: URLSearchParams } | null {
  const link = res.headers.link;
  if (link === undefined) return null;
  const m = /^<([^>]+)>;\s*rel="?next"?$/.exec(String(link).trim());
  assert.ok(m, `malformed Link header: ${link}`);
  const u = new URL(m[1], 'http://x.invalid');
  return { path: u.pathname, params: u.searchParams };
}
