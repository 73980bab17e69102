// Plain HTTP sent to the TLS port: looks at the first bytes of each connection before TLS sees them, and
// answers a plain request line with 400 and a body that says so (nginx: "The plain HTTP request was sent to
// HTTPS port") instead of a TLS alert the client reads as an empty reply or EOF. Everything else goes to TLS
// untouched (the bytes are put back). It never reads past the first chunk and never answers a TLS client.
import type { Socket } from 'node:net';
import type * as tls from 'node:tls';
import type { Logger } from '../log/logger.js';

export const PLAIN_HTTP_MESSAGE = 'The plain HTTP request was sent to HTTPS port';
/** At most one warning line per this period; the others are counted into the next. */
const LOG_EVERY_MS = 10_000;
/** How long the answer waits for the client to read it and close, while what it still sends is discarded. */
const LINGER_MS = 2_000;

export interface PlainHttpOptions {
  log: Logger;
  /** A connection that sends nothing for this long is closed (the TLS handshake deadline, proxy.headertimeout). */
  firstByteTimeoutMs: number;
  /** Extra raw header lines (`Name: value\r\n`…) for the answer, e.g. the configured `headers:`. */
  extraHeaders?: string;
}

/** An HTTP/1.x request line starts with a method token; a TLS ClientHello with 0x16 (SSLv2's with a high bit). */
export function looksLikePlainHttp(first: Buffer): boolean {
  return /^[A-Z]{3,16} /.test(first.subarray(0, 17).toString('latin1')) || /^[A-Z]{1,16}$/.test(first.toString('latin1'));
}

/**
 * Puts itself in front of `server`'s TLS connection handling: must be called right after the server is
 * created (it takes over the listeners present then; listeners added later, e.g. connection caps, still run).
 */
export function answerPlainHttp(server: tls.Server, o: PlainHttpOptions): void {
  const toTls = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const log = o.log.child({ module: 'tls' });
  let logged = { at: 0, suppressed: 0 };

  server.on('connection', (socket: Socket) => {
    if (socket.destroyed) return;   // refused by a connection cap
    // Nothing sent at all: what Node does when a handshake is not finished in time (the server's tlsClientError
    // path logs and closes it), so a silent connection looks the same with or without this layer.
    socket.setTimeout(o.firstByteTimeoutMs, () => {
      const err = Object.assign(new Error('TLS handshake timeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' });
      server.emit('tlsClientError', err, socket);
      if (!socket.destroyed) socket.destroy();
    });
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      if (!looksLikePlainHttp(first)) {
        socket.unshift(first);   // TLSSocket feeds what is buffered to OpenSSL before reading on
        for (const l of toTls) l.call(server, socket);
        return;
      }
      const line = first.toString('latin1').split('\r\n', 1)[0]!.slice(0, 200);
      const [method, target] = line.split(' ');
      const now = Date.now();
      if (now - logged.at >= LOG_EVERY_MS) {
        log.warn({ remoteAddress: socket.remoteAddress, method, path: target?.split('?')[0], suppressed: logged.suppressed },
          'plain HTTP request on the TLS port: answered 400');
        logged = { at: now, suppressed: 0 };
      } else {
        logged.suppressed++;
      }
      socket.end(answer(target ?? '', o.extraHeaders ?? ''));
      socket.resume();   // read and drop the rest, so the client is not reset before it reads the answer
      socket.on('error', () => socket.destroy());
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    });
    socket.on('error', () => socket.destroy());
  });
}

function answer(target: string, extraHeaders: string): string {
  const body = JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: PLAIN_HTTP_MESSAGE,
    detail: { reason: 'this port serves HTTPS only: use an https:// URL' } }] });
  const v2 = target === '/v2' || target.startsWith('/v2/') ? 'Docker-Distribution-Api-Version: registry/2.0\r\n' : '';
  return `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n${v2}${extraHeaders}` +
    `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
