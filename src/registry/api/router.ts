// Routing for /v2: parses the path from the right (names contain '/'), checks the method, the name
// grammar and read-only mode, runs the handler, and is the ONE place that writes errors (sendError).
// No per-request regex compilation; never throws; never decodes percent-escapes (names, tags and
// digests cannot contain '%', so an escaped '..' or '/' simply fails the grammar → 400).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../log/logger.js';
import { ClientDisconnectError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import type { Notifier } from '../notify/listener.js';
import type { Ctx, Handler, Route } from './context.js';
import { errorBody, OciError, toOciError } from './errors.js';
import { API_VERSION, API_VERSION_HEADER, JSON_TYPE } from './headers.js';
import { getBase } from './handlers/base.js';
import { deleteBlob, getBlob } from './handlers/blobs.js';
import { getCatalog } from './handlers/catalog.js';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.js';
import { getReferrers } from './handlers/referrers.js';
import { getTags } from './handlers/tags.js';
import { cancelUpload, getUploadStatus, patchUpload, putUpload, startUpload } from './handlers/uploads.js';

type Methods = Partial<Record<string, Handler>>;
const TABLE: Record<Route['kind'], Methods> = {
  base: { GET: getBase, HEAD: getBase },
  catalog: { GET: getCatalog },
  tags: { GET: getTags },
  manifest: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  blob: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob },
  uploadStart: { POST: startUpload },
  upload: { GET: getUploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: cancelUpload },
  referrers: { GET: getReferrers },
};
const ALLOW = Object.fromEntries(Object.entries(TABLE).map(([k, m]) => [k, Object.keys(m).join(', ')]));
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Maps a raw /v2 path (no query) to a route, parsing from the right; undefined for unknown paths. */
export function matchRoute(path: string): Route | undefined {
  if (path === '/v2' || path === '/v2/') return { kind: 'base' };
  if (!path.startsWith('/v2/')) return undefined;
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  const segs = path.slice(4).split('/');
  const n = segs.length;
  const name = (drop: number) => segs.slice(0, n - drop).join('/');
  if (n >= 3 && segs[n - 2] === 'tags' && segs[n - 1] === 'list') return { kind: 'tags', name: name(2) };
  if (n >= 3 && segs[n - 2] === 'manifests') return { kind: 'manifest', name: name(2), ref: segs[n - 1] };
  if (n >= 3 && segs[n - 2] === 'referrers') return { kind: 'referrers', name: name(2), digest: segs[n - 1] };
  if (n >= 4 && segs[n - 3] === 'blobs' && segs[n - 2] === 'uploads') {
    return segs[n - 1] === '' ? { kind: 'uploadStart', name: name(3) } : { kind: 'upload', name: name(3), id: segs[n - 1] };
  }
  if (n >= 3 && segs[n - 2] === 'blobs') {
    return segs[n - 1] === 'uploads' ? { kind: 'uploadStart', name: name(2) } : { kind: 'blob', name: name(2), digest: segs[n - 1] };
  }
  return undefined;
}

export interface RouterOptions { registry: Registry; log: Logger; redirect: boolean; notifier?: Notifier }

export function createRouter(opts: RouterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { registry, log, redirect, notifier } = opts;
  return (req, res) => {
    const ac = new AbortController();
    res.once('close', () => { if (!res.writableFinished) ac.abort(); });
    const reqLog = log;
    let ctx: Ctx | undefined;
    const run = async () => {
      res.setHeader(API_VERSION_HEADER, API_VERSION);
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const route = matchRoute(path);
      if (!route) throw new OciError('UNSUPPORTED', { reason: 'unknown endpoint' }, 404);
      const method = req.method ?? 'GET';
      const handler = TABLE[route.kind][method];
      if (!handler) throw new OciError('UNSUPPORTED', { reason: `method ${method} not allowed` }, 405, { Allow: ALLOW[route.kind] });
      const repo = 'name' in route ? registry.repository(route.name) : (undefined as never);
      if (WRITES.has(method)) registry.assertWritable();
      ctx = {
        req, res, route, repo, registry, redirect, signal: ac.signal, log: reqLog,
        query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
        notify: notifier && ((action, target) => notifier.record(action, target, req)),
      };
      await handler(ctx);
    };
    run().catch((err) => sendError(req, res, err, reqLog));
  };
}

const DISCONNECT_CODES = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR', 'EPIPE']);

/** True for errors that only mean "the client went away". */
export function isDisconnect(err: unknown): boolean {
  if (err instanceof ClientDisconnectError) return true;
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && DISCONNECT_CODES.has(code);
}

/** The single error writer: OCI JSON, logged once (4xx info, 5xx error), socket destroyed if too late. */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, log: Logger): void {
  try {
    if (err instanceof ClientDisconnectError) {
      log.info({ method: req.method, url: req.url, ...err.context }, 'client disconnected');
      res.destroy();
      return;
    }
    if (res.headersSent || res.destroyed || req.socket?.destroyed) {
      if (isDisconnect(err) || res.destroyed || req.socket?.destroyed) {
        log.info({ method: req.method, url: req.url }, 'client disconnected');
      } else {
        log.error({ err, method: req.method, url: req.url }, 'error after response started');
      }
      res.destroy();
      return;
    }
    const e = toOciError(err);
    if (e.status >= 500) log.error({ err, method: req.method, url: req.url, status: e.status }, 'request failed');
    else log.info({ method: req.method, url: req.url, status: e.status, code: e.code, detail: e.detail }, 'request rejected');
    const body = errorBody(e);
    res.setHeader(API_VERSION_HEADER, API_VERSION);
    res.writeHead(e.status, {
      ...e.headers,
      'Content-Type': JSON_TYPE,
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  } catch (inner) {
    log.error({ err: inner }, 'failed to write error response');
    res.destroy();
  }
}
