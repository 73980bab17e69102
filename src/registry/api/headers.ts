// Header names and builders shared by the handlers (Location, Range, ETag, upload headers). Pure
// functions; nothing here writes to a response.
export const API_VERSION_HEADER = 'Docker-Distribution-Api-Version';
export const API_VERSION = 'registry/2.0';
export const OCTET = 'application/octet-stream';
/** As Distribution sends it on every JSON answer (base, catalog, tags list, errors). */
export const JSON_TYPE = 'application/json; charset=utf-8';

/** Distribution's upload Range: "0-<size-1>", and "0-0" for an empty upload. */
export function uploadRange(size: number): string {
  return `0-${size > 0 ? size - 1 : 0}`;
}

export function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

export function uploadHeaders(name: string, id: string, size: number): Record<string, string> {
  return {
    Location: uploadLocation(name, id),
    Range: uploadRange(size),
    'Docker-Upload-UUID': id,
    'Content-Length': '0',
  };
}

export function etag(digest: string): string {
  return `"${digest}"`;
}

/** True when If-None-Match lists this entity (quoted or bare digest, weak or not, or "*"). */
export function ifNoneMatch(header: string | undefined, digest: string): boolean {
  if (!header) return false;
  for (const raw of header.split(',')) {
    let t = raw.trim();
    if (t === '*') return true;
    if (t.startsWith('W/')) t = t.slice(2);
    if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1);
    if (t === digest) return true;
  }
  return false;
}
