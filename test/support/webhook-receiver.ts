// A real webhook receiver for notification tests: an http.Server on 127.0.0.1 that records every
// envelope, answers 500 while `failing` is set, and can be stopped and started again on the same port
// (the endpoint URL in the registry's config stays valid). It never touches other ports or processes.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitUntil } from './wait.js';

export interface ReceivedPost { status: number; headers: IncomingHttpHeaders; events: any[] }

export interface WebhookReceiver {
  /** http://127.0.0.1:PORT/hook (fixed across stop/start). */
  url: string;
  port: number;
  got: ReceivedPost[];
  /** While true every POST is answered 500. */
  failing: boolean;
  /** Events of the POSTs answered 200, in arrival order. */
  delivered(): any[];
  /** Waits (a short poll, bounded by `ms`, default 10 s) until at least `n` events were accepted. */
  waitDelivered(n: number, ms?: number): Promise<any[]>;
  /** Closes the listener and every connection: the registry sees refused connections until start(). */
  stop(): Promise<void>;
  /** Listens again on the same port (retries briefly if the port is still in TIME_WAIT-like use). */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const got: ReceivedPost[] = [];
  let server: Server | undefined;
  let port = 0;
  const r: WebhookReceiver = {
    url: '', port: 0, got, failing: false,
    delivered: () => got.filter((p) => p.status === 200).flatMap((p) => p.events),
    async waitDelivered(n, ms = 10_000) {
      await waitUntil(`${n} events delivered`, () => r.delivered().length >= n,
        { timeoutMs: ms, detail: () => `${r.delivered().length}/${n} delivered` });
      return r.delivered();
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      await new Promise<void>((res) => { s.close(() => res()); s.closeAllConnections(); });
    },
    async start() {
      if (server) return;
      for (let attempt = 0; ; attempt++) {
        const s = createServer((req, res) => {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            const status = r.failing ? 500 : 200;
            got.push({ status, headers: req.headers, events: JSON.parse(Buffer.concat(chunks).toString('utf8')).events });
            res.writeHead(status, { 'content-length': '0' }).end();
          });
        });
        try {
          await new Promise<void>((res, rej) => { s.once('error', rej); s.listen(port, '127.0.0.1', () => { s.off('error', rej); res(); }); });
          server = s;
          port = (s.address() as AddressInfo).port;
          return;
        } catch (err) {
          // Restarting on a fixed port: another process may hold it for a moment; give up after a few tries.
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw err;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
    },
    close: () => r.stop(),
  };
  await r.start();
  r.port = port;
  r.url = `http://127.0.0.1:${port}/hook`;
  return r;
}
