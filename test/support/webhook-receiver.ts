// A real webhook receiver for notification tests: an http.Server on 127.0.0.1 that records every
// envelope, answers 500 while `failing` is set, and can be taken down and brought back. Down, it keeps
// its listening socket (so no other process of a parallel test run can take the port, and the endpoint
// URL in the registry's config stays valid) and closes every connection the moment it is accepted: the
// registry's POSTs fail without reaching a handler. It never touches other ports or processes.
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
  /** Down: every open connection is closed and every new one closed as it is accepted, until start(). */
  stop(): Promise<void>;
  /** Up again, on the same port. */
  start(): Promise<void>;
  /** Closes the listener for good. */
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const got: ReceivedPost[] = [];
  let down = false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (down) { res.destroy(); return; }
      const status = r.failing ? 500 : 200;
      got.push({ status, headers: req.headers, events: JSON.parse(Buffer.concat(chunks).toString('utf8')).events });
      res.writeHead(status, { 'content-length': '0' }).end();
    });
  });
  server.on('connection', (socket) => { if (down) socket.destroy(); });
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(0, '127.0.0.1', () => { server.off('error', rej); res(); }); });
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  const r: WebhookReceiver = {
    url: `http://127.0.0.1:${port}/hook`, port, got, failing: false,
    delivered: () => got.filter((p) => p.status === 200).flatMap((p) => p.events),
    async waitDelivered(n, ms = 10_000) {
      await waitUntil(`${n} events delivered`, () => r.delivered().length >= n,
        { timeoutMs: ms, detail: () => `${r.delivered().length}/${n} delivered` });
      return r.delivered();
    },
    async stop() {
      down = true;
      server.closeAllConnections();
    },
    async start() {
      down = false;
    },
    async close() {
      if (closed) return;
      closed = true;
      down = true;
      await new Promise<void>((res) => { server.close(() => res()); server.closeAllConnections(); });
    },
  };
  return r;
}
