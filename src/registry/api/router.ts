// Routing for /v2: takes the route from the one grammar (http/v2-routes.ts), checks the method, the name
// grammar and read-only mode, runs the handler with the repository from the Registry interface, and
// sends every failure through the one error writer (send-error.ts). Never throws. Run alone (tests, or
// without the gateway) it records the request's facts itself, so events and log lines still have them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { v2Request } from '../../http/v2-routes.js';
import type { Logger } from '../../log/logger.js';
import { currentRequest, runWithRequest } from '../../util/request-context.js';
import type { Registry } from '../core/repository.js';
import type { Ctx, Handler, Route } from './context.js';
import { OciError } from './errors.js';
import { getBase } from './handlers/base.js';
import { deleteBlob, getBlob } from './handlers/blobs.js';
import { getCatalog } from './handlers/catalog.js';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.js';
import { getReferrers } from './handlers/referrers.js';
import { getTags } from './handlers/tags.js';
import { cancelUpload, getUploadStatus, patchUpload, putUpload, startUpload } from './handlers/uploads.js';
import { requestFacts } from './request-facts.js';
import { sendError } from './send-error.js';

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

export interface RouterOptions { registry: Registry; log: Logger; redirect: boolean }

export function createRouter(opts: RouterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { registry, log, redirect } = opts;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const ac = new AbortController();
    res.once('close', () => { if (!res.writableFinished) ac.abort(); });
    const run = async () => {
      const { route, query } = v2Request(req);
      if (!route) throw new OciError('UNSUPPORTED', { reason: 'unknown endpoint' }, 404);
      const method = req.method ?? 'GET';
      const handler = TABLE[route.kind][method];
      if (!handler) throw new OciError('UNSUPPORTED', { reason: `method ${method} not allowed` }, 405, { Allow: ALLOW[route.kind]! });
      const repo = 'name' in route ? registry.repository(route.name) : (undefined as never);
      if (WRITES.has(method)) registry.assertWritable();
      const ctx: Ctx = { req, res, route, query, repo, registry, redirect, signal: ac.signal, log };
      await handler(ctx);
    };
    run().catch((err) => sendError(req, res, err, log));
  };
  return (req, res) => {
    if (currentRequest()) handle(req, res);
    else runWithRequest(requestFacts(req), () => handle(req, res));
  };
}
