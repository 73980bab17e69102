// Connection caps of the public listener: in total, and per client address, with the total kept under a
// share of the process's open-file limit (RLIMIT_NOFILE) so storage, upstreams and redis always find a
// descriptor. Over the total, Node closes the accepted handle before any socket object exists
// (net.Server.maxConnections); over the per-address cap the new socket is destroyed on accept. It counts
// raw TCP sockets (a TLS handshake in progress counts); it never reads a byte and never answers HTTP.
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../log/logger.js';

/** Client connections may use at most this share of RLIMIT_NOFILE; the rest is kept for files and upstreams. */
export const FD_SHARE = 0.5;
/** At most one `connections refused` line per this period (a flood would otherwise flood the log). */
const LOG_EVERY_MS = 10_000;

export interface ConnectionLimitOptions {
  /** Open connections in total (proxy.maxconnections). */
  max: number;
  /** Open connections from one client address (proxy.maxconnectionsperaddress). */
  perAddress: number;
  log: Logger;
  /** The soft RLIMIT_NOFILE; default read from /proc/self/limits (null: unknown, no descriptor bound). */
  fileLimit?: number | null;
}

export interface ConnectionLimits {
  /** The total cap in force: min(max, FD_SHARE × RLIMIT_NOFILE). */
  readonly max: number;
  readonly perAddress: number;
  /** Open connections now (all addresses). */
  open(): number;
  /** Connections refused so far, by cause. */
  refused(): { total: number; perAddress: number };
  /** Destroys every connection without a request in flight: fresh ones that never sent a byte and TLS handshakes
   *  (Node's closeIdleConnections does not see them), and idle keep-alive ones (the start of a drain). */
  closeIdle(): void;
  /** Destroys every open connection (the end of a drain). */
  destroyAll(): void;
}

export function limitConnections(server: Server, o: ConnectionLimitOptions): ConnectionLimits {
  const log = o.log.child({ module: 'connections' });
  const fileLimit = o.fileLimit === undefined ? readFileLimit() : o.fileLimit;
  const fdCap = fileLimit ? Math.max(1, Math.floor(fileLimit * FD_SHARE)) : Infinity;
  const max = Math.min(o.max, fdCap);
  if (max < o.max) {
    log.warn({ configured: o.max, max, fileLimit }, 'proxy.maxconnections lowered to half the open-file limit (raise it with ulimit -n)');
  }
  const sockets = new Set<Socket>();
  const isTls = server instanceof TlsServer;
  /** TLS: raw socket → the TLSSocket the HTTP layer uses, once the handshake is done. */
  const secured = new WeakMap<Socket, Socket>();
  if (isTls) {
    server.on('secureConnection', (s: TLSSocket) => {
      const raw = (s as TLSSocket & { _parent?: Socket })._parent;
      if (raw) secured.set(raw, s);
    });
  }
  const byAddress = new Map<string, number>();
  const refused = { total: 0, perAddress: 0 };
  let logged = { at: 0, total: 0, perAddress: 0 };

  const report = (address: string | undefined): void => {
    const now = Date.now();
    if (now - logged.at < LOG_EVERY_MS) return;
    log.warn({ address, open: sockets.size, max, perAddress: o.perAddress,
      refusedTotal: refused.total - logged.total, refusedPerAddress: refused.perAddress - logged.perAddress },
    'connections refused: limit reached');
    logged = { at: now, ...refused };
  };

  server.maxConnections = max;
  server.on('drop', (d?: { remoteAddress?: string }) => { refused.total++; report(d?.remoteAddress); });
  // First among the 'connection' listeners: a refused socket never reaches TLS or the HTTP parser.
  server.prependListener('connection', (socket: Socket) => {
    const address = peer(socket);
    if (address === undefined) { socket.destroy(); return; }
    const n = byAddress.get(address) ?? 0;
    if (n >= o.perAddress) {
      refused.perAddress++;
      socket.destroy();
      report(address);
      return;
    }
    byAddress.set(address, n + 1);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (byAddress.get(address) ?? 1) - 1;
      if (left > 0) byAddress.set(address, left); else byAddress.delete(address);
    });
  });

  return {
    max,
    perAddress: o.perAddress,
    open: () => sockets.size,
    refused: () => ({ ...refused }),
    closeIdle() {
      for (const s of sockets) {
        const http = isTls ? secured.get(s) : s;
        if (!http || !(http as Socket & { _httpMessage?: unknown })._httpMessage) s.destroy();
      }
    },
    destroyAll: () => { for (const s of sockets) s.destroy(); },
  };
}

function peer(socket: Socket): string | undefined {
  const a = socket.remoteAddress;
  return a?.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The soft "Max open files" of /proc/self/limits (Linux; Node raises it to the hard limit at start),
 *  or null where there is no such file or it says unlimited. */
export function readFileLimit(text?: string): number | null {
  let t = text;
  if (t === undefined) {
    try { t = readFileSync('/proc/self/limits', 'utf8'); } catch { return null; }
  }
  const m = /^Max open files\s+(\S+)/m.exec(t);
  const n = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}
