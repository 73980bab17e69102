// The health checks Distribution offers (health.file, health.http, health.tcp; the storage driver's is
// the registry app's own probe, see registry.ts), each a function that resolves when healthy and rejects with the reason when not. They run no
// timers and keep no state (registry.ts schedules them); every check is bounded by a timeout. A reason
// never carries credentials: URIs appear as redactURI gives them (no user:password@, no query values).
import { access } from 'node:fs/promises';
import { connect } from 'node:net';

export type Check = () => Promise<void>;

/** Unhealthy while `file` exists (an operator's maintenance switch); any stat error counts as absent. */
export function fileCheck(file: string): Check {
  return async () => {
    let exists = false;
    try { await access(file); exists = true; } catch { /* absent or unreadable: healthy, as in Distribution */ }
    if (exists) throw new Error(`file exists: ${file}`);
  };
}

/** HEAD `uri` (as Distribution does); any status other than `statuscode`, or no answer within `timeout`, fails. */
export function httpCheck(o: { uri: string; headers: Record<string, string[]>; statuscode: number; timeout: number }): Check {
  const shown = redactURI(o.uri);
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
    }).catch((err: Error) => { throw new Error(`HEAD ${shown} failed: ${scrub(err.message, o.uri, shown)}`); });
    await res.body.dump().catch(() => undefined);
    if (res.statusCode !== o.statuscode) throw new Error(`HEAD ${shown}: downstream service returned unexpected status: ${res.statusCode}`);
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

/**
 * A URI as it may be shown or logged: user and password become `***`, and so does every query value
 * (`?token=***&deep=***`); scheme, host, port, path and the query's names stay. Unparsable → `(invalid uri)`.
 */
export function redactURI(uri: string): string {
  let u: URL;
  try { u = new URL(uri); } catch { return '(invalid uri)'; }
  const auth = u.username || u.password ? '***@' : '';
  const query = [...u.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&');
  return `${u.protocol}//${auth}${u.host}${u.pathname}${query ? `?${query}` : u.search ? '?***' : ''}`;
}

/** `text` with any occurrence of the raw URI (as written, or as URL normalises it) replaced by `shown`. */
function scrub(text: string, uri: string, shown: string): string {
  let out = text.replaceAll(uri, shown);
  try { out = out.replaceAll(new URL(uri).href, shown); } catch { /* not a URL: nothing more to find */ }
  return out;
}
