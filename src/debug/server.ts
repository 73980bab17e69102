// The debug listener (registry.http.debug.addr, as Distribution's): /metrics (Prometheus, path from
// http.debug.prometheus.path), /debug/health (failing checks as JSON, 503 while any fails) and
// /debug/vars (process, memory, uptime, notification endpoints). It is a separate socket: the public
// listener never serves these. It only reads state; it never changes what it reports on.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenHost, listenURL } from '../config/values.js';
import type { HealthRegistry } from '../health/registry.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { stats as notificationStats } from '../registry/notify/listener.js';
import type { EndpointStats } from '../registry/notify/queue.js';

export interface DebugServer {
  /** http://HOST:PORT with the real port. */
  url: string;
  /** Closes the listener and its connections. Idempotent. */
  close(): Promise<void>;
}

export interface DebugServerOptions {
  host: string;
  port: number;
  health: HealthRegistry;
  /** Absent → /metrics answers 404 (prometheus.enabled: false). */
  metrics?: Metrics;
  metricsPath?: string;
  /** Notification endpoints for /debug/vars; default: every running registry app's (notify/listener.ts). */
  notifications?: () => EndpointStats[];
  log: Logger;
}

const started = Date.now();

export async function startDebugServer(o: DebugServerOptions): Promise<DebugServer> {
  const log = o.log.child({ module: 'debug' });
  const metricsPath = o.metricsPath ?? '/metrics';
  const notifications = o.notifications ?? notificationStats;
  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
    if (o.metrics && path === metricsPath) {
      const text = await o.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': o.metrics.registry.contentType, 'Content-Length': Buffer.byteLength(text) });
      return res.end(req.method === 'HEAD' ? undefined : text);
    }
    if (path === '/debug/health') {
      const status = o.health.status();
      return json(res, Object.keys(status).length ? 503 : 200, status);
    }
    if (path === '/debug/vars') {
      return json(res, 200, {
        cmdline: process.argv, pid: process.pid, node: process.version,
        uptimeSeconds: (Date.now() - started) / 1000, memory: process.memoryUsage(),
        resourceUsage: process.resourceUsage(),
        notifications: { endpoints: notifications() },
      });
    }
    return json(res, 404, { error: 'not found' });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      log.error({ err }, 'debug request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' }); else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: o.port, host: listenHost(o.host) }, () => { server.off('error', reject); resolve(); });
  });
  const bound = server.address() as AddressInfo;
  const url = listenURL(o.host, bound.address, bound.port);
  log.info({ url }, 'debug server listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
