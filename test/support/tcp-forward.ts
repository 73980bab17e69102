// A TCP listener on 127.0.0.1:0 that forwards every connection to a unix socket, for servers tests run on
// a socket only (redis-server --port 0) but clients must reach over TCP (a config's `host:port`). Real
// TCP without guessing a free port; bytes are piped unchanged both ways. It closes only its own sockets.
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface TcpForward {
  /** "127.0.0.1:PORT" */
  addr: string;
  port: number;
  close(): Promise<void>;
}

export async function forwardTcpToUnix(socketPath: string): Promise<TcpForward> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(socketPath);
    for (const s of [client, upstream]) {
      open.add(s);
      s.once('close', () => open.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    addr: `127.0.0.1:${port}`,
    port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}
