// The one grammar of /v2 request paths: parses a request's method and URL once into the route it names and
// the access it needs (Distribution's router plus its appendAccessRecords). The gateway authorizes with
// `access`, the registry router dispatches on `route`, metrics label by `metric`. Pure: it reads no body,
// validates no names (the registry answers NAME_INVALID) and never decodes percent-escapes (names, tags and
// digests cannot contain '%', so an escaped '..' or '/' simply fails the registry's grammar → 400).
import type { IncomingMessage } from 'node:http';

export type Action = 'pull' | 'push' | 'delete';

/** One thing a request wants to do, in the token-auth scope shape (`repository:<name>:pull,push`). */
export type Access =
  | { type: 'repository'; name: string; actions: Action[] }
  | { type: 'registry'; name: 'catalog'; actions: ['*'] };

export type V2Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; ref: string }
  | { kind: 'blob'; name: string; digest: string }
  /** POST …/blobs/uploads/: `mount` and `from` are the cross-repository mount's query (both present or neither). */
  | { kind: 'uploadStart'; name: string; mount?: { digest: string; from: string } }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string };

export type RouteKind = V2Route['kind'];

/** The metric label of a route kind: Distribution's route names, never a repository name (cardinality). */
const METRIC: Record<RouteKind, string> = {
  base: 'base', catalog: 'catalog', tags: 'tags', manifest: 'manifest', blob: 'blob',
  uploadStart: 'blob_upload', upload: 'blob_upload', referrers: 'referrers',
};

export interface V2Request {
  /** undefined: a /v2 path this registry does not serve (the router answers 404). */
  route: V2Route | undefined;
  /** What the request needs, for access control: [] for the base check and unknown paths. */
  access: Access[];
  /** `base`, `catalog`, `tags`, `manifest`, `blob`, `blob_upload`, `referrers`, or `unknown`. */
  metric: string;
  /** The query string, parsed (empty without one). */
  query: URLSearchParams;
}

/** True for `/v2`, `/v2/` and everything below (no query string in `path`). */
export function isV2Path(path: string): boolean {
  return path === '/v2' || path.startsWith('/v2/');
}

/** The path part of a request target (no query). */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Maps a raw /v2 path (no query) to a route, parsing from the right (names contain '/'). */
export function matchRoute(path: string, query?: URLSearchParams): V2Route | undefined {
  if (path === '/v2' || path === '/v2/') return { kind: 'base' };
  if (!path.startsWith('/v2/')) return undefined;
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  const segs = path.slice(4).split('/');
  const n = segs.length;
  const name = (drop: number) => segs.slice(0, n - drop).join('/');
  if (n >= 3 && segs[n - 2] === 'tags' && segs[n - 1] === 'list') return { kind: 'tags', name: name(2) };
  if (n >= 3 && segs[n - 2] === 'manifests') return { kind: 'manifest', name: name(2), ref: segs[n - 1]! };
  if (n >= 3 && segs[n - 2] === 'referrers') return { kind: 'referrers', name: name(2), digest: segs[n - 1]! };
  if (n >= 4 && segs[n - 3] === 'blobs' && segs[n - 2] === 'uploads') {
    return segs[n - 1] === '' ? uploadStart(name(3), query) : { kind: 'upload', name: name(3), id: segs[n - 1]! };
  }
  if (n >= 3 && segs[n - 2] === 'blobs') {
    return segs[n - 1] === 'uploads' ? uploadStart(name(2), query) : { kind: 'blob', name: name(2), digest: segs[n - 1]! };
  }
  return undefined;
}

function uploadStart(name: string, query: URLSearchParams | undefined): V2Route {
  const digest = query?.get('mount');
  const from = query?.get('from');
  return digest && from ? { kind: 'uploadStart', name, mount: { digest, from } } : { kind: 'uploadStart', name };
}

/**
 * The access a request needs (Distribution's appendAccessRecords): GET/HEAD pull; POST/PUT/PATCH pull and
 * push; DELETE delete; a cross-repository mount also pull on `from`; the catalog `registry:catalog:*`.
 */
export function accessFor(method: string, route: V2Route | undefined): Access[] {
  if (!route || route.kind === 'base') return [];
  if (route.kind === 'catalog') return [{ type: 'registry', name: 'catalog', actions: ['*'] }];
  const actions: Action[] = method === 'GET' || method === 'HEAD' ? ['pull']
    : method === 'POST' || method === 'PUT' || method === 'PATCH' ? ['pull', 'push']
      : method === 'DELETE' ? ['delete'] : [];
  const out: Access[] = actions.length ? [{ type: 'repository', name: route.name, actions }] : [];
  if (route.kind === 'uploadStart' && route.mount && method === 'POST') {
    out.push({ type: 'repository', name: route.mount.from, actions: ['pull'] });
  }
  return out;
}

/** Parses method and URL; pure (see v2Request for the per-request memo). */
export function parseV2Request(method: string, url: string): V2Request {
  const q = url.indexOf('?');
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const route = matchRoute(q < 0 ? url : url.slice(0, q), query);
  return { route, access: accessFor(method, route), metric: route ? METRIC[route.kind] : 'unknown', query };
}

const parsed = new WeakMap<IncomingMessage, V2Request>();

/** Drops the memo of req: the gateway rewrote its URL (a refused cross-repository mount loses mount and from). */
export function forgetV2Request(req: IncomingMessage): void {
  parsed.delete(req);
}

/** The parsed request, computed on first use and shared by every later caller for the same request. */
export function v2Request(req: IncomingMessage): V2Request {
  let r = parsed.get(req);
  if (!r) {
    r = parseV2Request(req.method ?? 'GET', req.url ?? '/');
    parsed.set(req, r);
  }
  return r;
}
