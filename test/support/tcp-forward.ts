// A TCP listener on 127.0.0.1:0 that forwards every connection to a unix socket, for servers tests run on
// a socket only (redis-server --port 0) but clients must reach over TCP (a config's `host:port`). Real
// TCP without guessing a free port; bytes are piped unchanged both ways. It closes only its own sockets.
// forwardTlsToTcp: the same in front of a plain-TCP server, terminating TLS (an https front for the tests'
// plain-HTTP Ceph RGW, as a store behind a TLS proxy or MinIO with its own certificate is reached).
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface TcpForward {
  /** "127.0.0.1:PORT" */
  addr: string;
  port: number;
  close(): Promise<void>;
}

interface Forwarder extends TcpForward { drop(): void }

export async function forwardTcpToUnix(socketPath: string): Promise<TcpForward> {
  return forward(createServer(), 'connection', () => connect(socketPath));
}

export interface TlsForward extends TcpForward {
  /** Presents `cert` to the connections that come after (a certificate rotation). */
  setCert(cert: { cert: string; key: string }): void;
  /** Ends every connection open now (clients must connect anew, and see the certificate of now). */
  drop(): void;
}

/** TLS with `cert` on 127.0.0.1:0, each connection's bytes forwarded in the clear to `port` on 127.0.0.1. */
export async function forwardTlsToTcp(port: number, cert: { cert: string; key: string }): Promise<TlsForward> {
  const server = createTlsServer({ cert: cert.cert, key: cert.key });
  const f = await forward(server, 'secureConnection', () => connect(port, '127.0.0.1'));
  return { ...f, setCert: (c) => server.setSecureContext({ cert: c.cert, key: c.key }), drop: () => f.drop() };
}

/** `server` forwards each socket it emits as `event` (its clear side) to a new upstream connection. */
async function forward(server: Server, event: 'connection' | 'secureConnection', upstreamOf: () => Socket): Promise<Forwarder> {
  const open = new Set<Socket>();
  server.on(event, (c: Socket) => pipeBoth(c));
  function pipeBoth(client: Socket): void {
    const upstream = upstreamOf();
    for (const s of [client, upstream]) {
      open.add(s);
      s.once('close', () => open.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
  }
  server.on('tlsClientError', () => {});   // a client that refuses the certificate: nothing to forward
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    addr: `127.0.0.1:${port}`,
    port,
    drop() { for (const s of open) s.destroy(); },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}
