// Prometheus metrics (prom-client), one Registry per server so two servers in one process never mix
// counts: requests by route/method/status, request durations (uploads are route blob_upload),
// body bytes in/out, storage-call latencies (fed by storage/base.ts) and process defaults.
// It observes requests; it must never read, buffer or delay a body (no 'data' listeners).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { onStorageCall } from '../registry/storage/base.js';
import { countBodyBytes } from '../http/body-bytes.js';

export interface Metrics {
  readonly registry: Registry;
  /** Call on 'request', before any handler: the request is recorded when its response closes. */
  track(req: IncomingMessage, res: ServerResponse): void;
  /** Detaches the storage hook. Idempotent. */
  close(): void;
}

/** Distribution-like route names for /v2 paths; 'other' outside /v2. Never a repository name (cardinality). */
export function routeOf(url: string): string {
  const path = url.split('?')[0]!;
  if (path === '/v2' || path === '/v2/') return 'base';
  if (!path.startsWith('/v2/')) return path.startsWith('/v1/') || path === '/v1' ? 'v1' : 'other';
  if (path === '/v2/_catalog') return 'catalog';
  if (/\/blobs\/uploads(\/|$)/.test(path)) return 'blob_upload';
  if (/\/blobs\/[^/]+$/.test(path)) return 'blob';
  if (/\/manifests\/[^/]+$/.test(path)) return 'manifest';
  if (/\/tags\/list$/.test(path)) return 'tags';
  if (/\/referrers\/[^/]+$/.test(path)) return 'referrers';
  return 'unknown';
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'berth_' });
  const labels = ['method', 'route'] as const;
  const requests = new Counter({
    name: 'berth_http_requests_total', help: 'HTTP requests by method, route and status',
    labelNames: [...labels, 'status'], registers: [registry],
  });
  const duration = new Histogram({
    name: 'berth_http_request_duration_seconds', help: 'HTTP request durations (route blob_upload: upload requests)',
    labelNames: labels, registers: [registry], buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600],
  });
  const bytesIn = new Counter({
    name: 'berth_http_request_bytes_total', help: 'Request body bytes received', labelNames: labels, registers: [registry],
  });
  const bytesOut = new Counter({
    name: 'berth_http_response_bytes_total', help: 'Response body bytes sent', labelNames: labels, registers: [registry],
  });
  const storage = new Histogram({
    name: 'berth_storage_operation_duration_seconds', help: 'Storage driver call latencies (all drivers in this process)',
    labelNames: ['driver', 'op', 'outcome'], registers: [registry], buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2, 10, 60],
  });
  const detach = onStorageCall((e) => storage.observe({ driver: e.driver, op: e.op, outcome: e.ok ? 'ok' : 'error' }, e.durationMs / 1000));

  return {
    registry,
    track(req, res) {
      const started = process.hrtime.bigint();
      const bytes = countBodyBytes(req, res);
      res.once('close', () => {
        const l = { method: req.method ?? '', route: routeOf(req.url ?? '/') };
        requests.inc({ ...l, status: String(res.statusCode) });
        duration.observe(l, Number(process.hrtime.bigint() - started) / 1e9);
        if (bytes.bytesIn) bytesIn.inc(l, bytes.bytesIn);
        if (bytes.bytesOut && req.method !== 'HEAD') bytesOut.inc(l, bytes.bytesOut);
      });
    },
    close: detach,
  };
}
