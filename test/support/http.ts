// The one HTTP client for tests (undici). request() sends the path exactly as written in the URL (never
// normalised: hostile paths such as /v2/a/../b or %2e%2e reach the server byte for byte), takes the body
// as a Buffer, string or stream, trusts a given CA or none (rejectUnauthorized: false), always reads the
// whole response body, and fails with a message naming the request when it has no complete response
// within its timeout. It hides nothing tests assert on: status, headers and raw body bytes come back as
// the server sent them. Tests that need what HTTP clients refuse to send (malformed requests, slow or
// vanishing clients, plain HTTP to a TLS port) use raw sockets instead.
import type { Readable } from 'node:stream';
import { Agent, Client, type Dispatcher } from 'undici';

export type RequestBody = string | Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface RequestOptions {
  method?: string;                       // default GET
  /** Header values may be numbers (sent as strings); undefined values are left out. */
  headers?: Record<string, string | string[] | number | undefined>;
  body?: RequestBody;
  /** HTTPS: trust these certificates (PEM) instead of the system's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** HTTPS: false accepts any certificate (default true). */
  rejectUnauthorized?: boolean;
  /** HTTPS: the SNI name to send (default: the URL's host name unless it is an IP address). */
  servername?: string;
  /** The whole exchange, headers and body, must complete within this (default 60 s). */
  timeoutMs?: number;
  /** On a connection of its own, closed after the response (Connection: close); default: a pooled keep-alive one. */
  fresh?: boolean;
  /** The local address to connect from (e.g. 127.0.0.2, to be another loopback peer). */
  localAddress?: string;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; a header the server repeated is joined with ', '. */
  headers: Record<string, string>;
  /** Every value of header `name` as sent, one per header line, in order ([] when absent). */
  headerValues(name: string): string[];
  /** The whole body (empty for HEAD, 204 and 304). */
  body: Buffer;
  text(): string;
  json(): any;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

// Pooled keep-alive connections, one agent per TLS trust setting. Keep-alive also exposes servers that
// answer early without draining a request body (the next request on the socket would then be garbage).
const agents = new Map<string, Agent>();
function agentFor(tls: TlsOptions, localAddress: string | undefined): Agent {
  const key = JSON.stringify([tls, localAddress]);
  let a = agents.get(key);
  if (!a) { a = new Agent({ connections: 64, connect: tls, localAddress }); agents.set(key, a); }
  return a;
}

interface TlsOptions { ca?: Array<string | Buffer> | string | Buffer; rejectUnauthorized?: boolean; servername?: string }

/** Splits a URL into origin and path without normalising the path (`new URL` would resolve dot segments). */
function split(url: string | URL): { origin: string; path: string } {
  if (url instanceof URL) return { origin: url.origin, path: url.pathname + url.search };
  const m = /^(https?:\/\/[^/?#]+)([^#]*)/i.exec(url);
  if (!m) throw new Error(`request: not an absolute http(s) URL: ${url}`);
  const path = m[2] || '/';
  return { origin: m[1]!, path: path.startsWith('/') ? path : `/${path}` };
}

/** Sends one request and reads the whole response. Rejects on connection errors and on timeout. */
export async function request(url: string | URL, o: RequestOptions = {}): Promise<HttpResponse> {
  const { origin, path } = split(url);
  const method = (o.method ?? 'GET').toUpperCase();
  const timeoutMs = o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(o.headers ?? {})) if (v !== undefined) headers[k] = typeof v === 'number' ? String(v) : v;
  if (o.fresh) headers.connection = 'close';
  const tls: TlsOptions = {};
  if (o.ca !== undefined) tls.ca = o.ca;
  if (o.rejectUnauthorized !== undefined) tls.rejectUnauthorized = o.rejectUnauthorized;
  if (o.servername !== undefined) tls.servername = o.servername;
  const own = o.fresh ? new Client(origin, { connect: tls, pipelining: 0, localAddress: o.localAddress }) : undefined;
  const dispatcher: Dispatcher = own ?? agentFor(tls, o.localAddress);
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const r = await dispatcher.request({
      origin, path, method: method as Dispatcher.HttpMethod, headers, body: o.body as Dispatcher.DispatchOptions['body'],
      signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    });
    const body = Buffer.from(await r.body.arrayBuffer());
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : v;
    const lines = r.headers;
    return {
      status: r.statusCode, headers: h, body,
      headerValues: (name) => { const v = lines[name.toLowerCase()]; return v === undefined ? [] : Array.isArray(v) ? [...v] : [v]; },
      text: () => body.toString('utf8'),
      json: () => JSON.parse(body.toString('utf8')),
    };
  } catch (err) {
    if (signal.aborted) throw new Error(`${method} ${origin}${path}: no complete response within ${timeoutMs} ms`, { cause: err });
    throw err;
  } finally {
    if (own) await own.close().catch(() => undefined);
  }
}
