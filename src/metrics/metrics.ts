// Prometheus metrics (prom-client), one Registry per server: requests by route/method/status, request
// durations (uploads are route blob_upload), body bytes in/out, and process defaults; process-wide
// sources: storage-call latencies (storage/base.ts), blob-descriptor cache calls (cache/cache-calls.ts)
// and the notification queues (notify/listener.ts stats(), read at scrape time).
// It observes requests; it must never read, buffer or delay a body (no 'data' listeners).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { onCacheCall } from '../registry/cache/cache-calls.js';
import type { EndpointStats } from '../registry/notify/queue.js';
import { stats as notificationStats } from '../registry/notify/listener.js';
import { onUploadCommit } from '../registry/core/upload-calls.js';
import { onStorageCall, uploadBufferStats, type UploadBufferStats } from '../registry/storage/base.js';
import { countBodyBytes } from '../http/body-bytes.js';
import { isV2Path, pathOf, v2Request } from '../http/v2-routes.js';

export interface Metrics {
  readonly registry: Registry;
  /** Call on 'request', before any handler: the request is recorded when its response closes. */
  track(req: IncomingMessage, res: ServerResponse): void;
  /** Detaches the storage and cache hooks. Idempotent. */
  close(): void;
}

/** Distribution-like route names (http/v2-routes.ts's `metric`) for /v2; 'v1' or 'other' outside. Never a
 *  repository name (cardinality). */
export function routeOf(req: IncomingMessage): string {
  const path = pathOf(req.url ?? '/');
  if (isV2Path(path)) return v2Request(req).metric;
  return path === '/v1' || path.startsWith('/v1/') ? 'v1' : 'other';
}

export interface MetricsOptions {
  /** Notification endpoints to report; default: every running registry app's (notify/listener.ts stats()). */
  notifications?: () => EndpointStats[];
}

export function createMetrics(o: MetricsOptions = {}): Metrics {
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
  const detachStorage = onStorageCall((e) => storage.observe({ driver: e.driver, op: e.op, outcome: e.ok ? 'ok' : 'error' }, e.durationMs / 1000));
  const lookups = new Counter({
    name: 'berth_blob_descriptor_cache_lookups_total', help: 'Blob-descriptor cache lookups by cache kind and result (hit, miss, error)',
    labelNames: ['cache', 'result'], registers: [registry],
  });
  const cacheErrors = new Counter({
    name: 'berth_blob_descriptor_cache_errors_total', help: 'Failed blob-descriptor cache calls by cache kind and op (get, set, clear)',
    labelNames: ['cache', 'op'], registers: [registry],
  });
  const detachCache = onCacheCall((e) => {
    if (e.op === 'get') lookups.inc({ cache: e.cache, result: e.result });
    if (e.result === 'error') cacheErrors.inc({ cache: e.cache, op: e.op });
  });
  const uploadSeconds = new Histogram({
    name: 'berth_blob_upload_session_duration_seconds',
    help: 'Blob upload sessions from start (POST) to commit, for sessions that became blobs',
    registers: [registry], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
  });
  const uploadBytes = new Counter({
    name: 'berth_blob_upload_committed_bytes_total', help: 'Bytes of committed blob uploads', registers: [registry],
  });
  const detachUploads = onUploadCommit((e) => { uploadSeconds.observe(e.durationMs / 1000); uploadBytes.inc(e.size); });
  registerNotificationMetrics(registry, o.notifications ?? notificationStats);
  registerUploadBufferMetrics(registry);

  return {
    registry,
    track(req, res) {
      const started = process.hrtime.bigint();
      const bytes = countBodyBytes(req, res);
      res.once('close', () => {
        const l = { method: req.method ?? '', route: routeOf(req) };
        requests.inc({ ...l, status: String(res.statusCode) });
        duration.observe(l, Number(process.hrtime.bigint() - started) / 1e9);
        if (bytes.bytesIn) bytesIn.inc(l, bytes.bytesIn);
        if (bytes.bytesOut && req.method !== 'HEAD') bytesOut.inc(l, bytes.bytesOut);
      });
    },
    close() { detachStorage(); detachCache(); detachUploads(); },
  };
}

/** Read from the queues at scrape time; endpoints of several apps with one name are summed. */
function registerNotificationMetrics(registry: Registry, stats: () => EndpointStats[]): void {
  type Settable = { reset(): void; inc(labels: { endpoint: string }, value: number): void };
  const collect = (pick: (s: EndpointStats) => number) => function (this: Settable) {
    const sums = new Map<string, number>();
    for (const s of stats()) sums.set(s.name, (sums.get(s.name) ?? 0) + pick(s));
    this.reset();
    for (const [endpoint, v] of sums) this.inc({ endpoint }, v);
  };
  const common = { labelNames: ['endpoint'] as const, registers: [registry] };
  new Gauge({
    name: 'berth_notifications_pending', help: 'Journaled events not yet delivered to the endpoint',
    ...common, collect: collect((s) => s.pending),
  });
  new Gauge({
    name: 'berth_notifications_consecutive_failures', help: 'Failed delivery attempts since the endpoint last accepted a batch',
    ...common, collect: collect((s) => s.consecutiveFailures),
  });
  new Counter({
    name: 'berth_notifications_delivered_total', help: 'Events delivered to the endpoint (answered 2xx/3xx)',
    ...common, collect: collect((s) => s.delivered),
  });
  new Counter({
    name: 'berth_notifications_dropped_total',
    help: 'Events the endpoint will never get: dropped by the journal\'s bounds (journalmaxsize, journalmaxage) or not journaled (pulls)',
    ...common, collect: collect((s) => s.dropped),
  });
  new Counter({
    name: 'berth_notifications_failures_total', help: 'Failed delivery attempts (one per POST that failed or was answered 4xx/5xx)',
    ...common, collect: collect((s) => s.failures),
  });
}

/** The S3 driver's part buffers (registry.storage.s3.buffermemory), read at scrape time; none without such a driver. */
function registerUploadBufferMetrics(registry: Registry): void {
  type Settable = { reset(): void; set(labels: { driver: string }, value: number): void };
  const collect = (pick: (s: UploadBufferStats) => number) => function (this: Settable) {
    this.reset();
    for (const [driver, s] of uploadBufferStats()) this.set({ driver }, pick(s));
  };
  const common = { labelNames: ['driver'] as const, registers: [registry] };
  new Gauge({ name: 'berth_upload_buffers_in_use', help: 'Part buffers held by uploads in progress', ...common, collect: collect((s) => s.inUse) });
  new Gauge({ name: 'berth_upload_buffer_bytes', help: 'Memory of the part buffers held by uploads in progress', ...common, collect: collect((s) => s.inUse * s.size) });
  new Gauge({ name: 'berth_upload_buffers_waiting', help: 'Uploads waiting for a part buffer (the buffermemory bound reached)', ...common, collect: collect((s) => s.waiting) });
  new Gauge({ name: 'berth_upload_buffers_limit', help: 'Part buffers at most at once (buffermemory / chunksize)', ...common, collect: collect((s) => s.limit) });
}
