// OCI distribution calls for e2e/interop tests, on test/support/http.ts: manifests, catalog, tags, and pushing
// a generated image (files on disk) without a client, monolithic or in chunks. Every response body is consumed.
// It asserts nothing about the server beyond the status it is told to expect.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request, type HttpResponse } from './http.js';
import type { GeneratedImage } from './images.js';
import { MT } from './images.js';

export const ACCEPT_ALL = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');

export async function expectStatus(p: Promise<HttpResponse>, status: number, what: string): Promise<HttpResponse> {
  const r = await p;
  if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.body.toString('utf8').slice(0, 500)}`);
  return r;
}

export const sha256Hex = (b: Uint8Array) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export async function fileDigest(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return 'sha256:' + h.digest('hex');
}

export function getManifest(base: string, repo: string, ref: string, method: 'GET' | 'HEAD' = 'GET'): Promise<HttpResponse> {
  return request(`${base}/v2/${repo}/manifests/${ref}`, { method, headers: { accept: ACCEPT_ALL } });
}

/** Full catalog, following Link headers. */
export async function catalog(base: string, n = 1000): Promise<string[]> {
  const out: string[] = [];
  let next: string | undefined = `/v2/_catalog?n=${n}`;
  const seen = new Set<string>();
  while (next) {
    if (seen.has(next)) throw new Error(`GET catalog: the Link header leads back to ${next}`);   // a loop would never end
    seen.add(next);
    const r = await expectStatus(request(new URL(next, base).href), 200, 'GET catalog');
    out.push(...(JSON.parse(r.body.toString()).repositories ?? []));
    next = /<([^>]+)>;\s*rel="?next"?/.exec(r.headers.link ?? '')?.[1];
  }
  return out;
}

export async function tags(base: string, repo: string): Promise<string[]> {
  const r = await expectStatus(request(`${base}/v2/${repo}/tags/list`), 200, `GET tags of ${repo}`);
  return JSON.parse(r.body.toString()).tags ?? [];
}

export type UploadMode = 'monolithic' | 'post-digest' | 'chunked';

/** Pushes one blob: monolithic (POST, then PUT with the body), post-digest (single POST ?digest=) or chunked
 *  (POST, PATCHes of chunkSize with Content-Range, then an empty PUT ?digest=). Returns the path taken. */
export async function pushBlob(base: string, repo: string, path: string, digest: string, mode: UploadMode, chunkSize = 256 * 1024): Promise<string> {
  const size = (await stat(path)).size;
  const octet = { 'content-type': 'application/octet-stream' };
  if (mode === 'post-digest') {
    const r = await request(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...octet, 'content-length': String(size) }, body: createReadStream(path) });
    if (r.status === 201) return 'post';
    // The spec lets a registry ignore ?digest= on POST and answer 202 (Distribution 2.8 does): PUT the body.
    if (r.status !== 202) throw new Error(`monolithic POST of ${digest}: ${r.status} ${r.body.toString().slice(0, 300)}`);
    await finish(new URL(r.headers.location!, base).href, true);
    return 'post-then-put';
  }
  const start = await expectStatus(request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } }), 202, 'POST upload');
  let loc = new URL(start.headers.location!, base).href;
  if (mode === 'chunked') {
    for (let off = 0; off < size; off += chunkSize) {
      const end = Math.min(size, off + chunkSize) - 1;
      const r = await expectStatus(request(loc, {
        method: 'PATCH',
        headers: { ...octet, 'content-range': `${off}-${end}`, 'content-length': String(end - off + 1) },
        body: createReadStream(path, { start: off, end }),
      }), 202, `PATCH ${off}-${end}`);
      if (r.headers.range !== `0-${end}`) throw new Error(`PATCH ${off}-${end}: Range header ${r.headers.range}`);
      loc = new URL(r.headers.location!, base).href;
    }
  }
  await finish(loc, mode === 'monolithic');
  return mode;

  async function finish(location: string, withBody: boolean) {
    const put = new URL(location);
    put.searchParams.set('digest', digest);
    const r = await request(put.href, { method: 'PUT', headers: { ...octet, 'content-length': String(withBody ? size : 0) }, body: withBody ? createReadStream(path) : undefined });
    if (r.status !== 201) throw new Error(`PUT ${digest} (${mode}): ${r.status} ${r.body.toString().slice(0, 300)}`);
    if (r.headers['docker-content-digest'] !== digest) throw new Error(`PUT ${digest}: Docker-Content-Digest ${r.headers['docker-content-digest']}`);
  }
}

/** Pushes a generated image (blobs then manifest) with raw HTTP; returns the manifest digest the server reports. */
export async function pushImage(base: string, repo: string, tag: string, img: GeneratedImage, mode: UploadMode, onBlob?: (how: string) => void): Promise<string> {
  for (const [digest, path] of img.blobs) {
    const how = await pushBlob(base, repo, path, digest, mode);
    onBlob?.(how);
  }
  const r = await request(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': img.mediaType }, body: img.manifestBytes });
  if (r.status !== 201) throw new Error(`PUT manifest ${repo}:${tag}: ${r.status} ${r.body.toString().slice(0, 300)}`);
  return r.headers['docker-content-digest']!;
}
