// The health checks Distribution offers (health.file, health.http, health.tcp; the storage driver's is
// the registry app's own probe, see registry.ts), each a function that resolves when healthy and rejects with the reason when not. They run no
// timers and keep no state (registry.ts schedules them); every check is bounded by a timeout.
import { access } from 'node:fs/promises';
import { connect } from 'node:net';

export type Check = () => Promise<void>;

/** Unhealthy while `file` exists (an operator's maintenance switch); any stat error counts as absent. */
export function fileCheck(file: string): Check {
  return async () => {
    let exists = false;
    try { await access(file); exists = true; } catch { /* absent or unreadable: healthy, as in Distribution */ }
    if (exists) throw new Error('file exists');
  };
}

/** HEAD `uri` (as Distribution does); any status other than `statuscode`, or no answer within `timeout`, fails. */
export function httpCheck(o: { uri: string; headers: Record<string, string[]>; statuscode: number; timeout: number }): Check {
  return async () => {
    // undici (~110 CommonJS modules, ~70 ms) is loaded by the first http check, not when the registry starts.
    const { request } = await import('undici');
    const res = await request(o.uri, {
      method: 'HEAD',
      headers: o.headers,
      reset: true,                                   // Connection: close: no idle socket outlives the check
      headersTimeout: o.timeout,
      bodyTimeout: o.timeout,
      signal: AbortSignal.timeout(o.timeout),
    }).catch((err: Error) => { throw new Error(`HEAD ${o.uri} failed: ${err.message}`); });
    await res.body.dump().catch(() => undefined);
    if (res.statusCode !== o.statuscode) throw new Error(`downstream service returned unexpected status: ${res.statusCode}`);
  };
}

/** Opens (and closes) a TCP connection to host:port within `timeout`. */
export function tcpCheck(o: { host: string; port: number; timeout: number }): Check {
  const addr = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  return () => new Promise<void>((resolve, reject) => {
    const socket = connect({ host: o.host, port: o.port });
    const timer = setTimeout(() => fail(new Error('timeout')), o.timeout);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`connection to ${addr} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    };
    socket.once('error', fail);
    socket.once('connect', () => { clearTimeout(timer); socket.destroy(); resolve(); });
  });
}

/** Lists the storage root through the driver; a missing root (an empty registry) is healthy. */
