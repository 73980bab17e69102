// Delivers one envelope body to one endpoint with undici: POST, Distribution's media type, the
// endpoint's headers (plus Basic auth from the URL's userinfo, as Go's client sends it), an optional
// HMAC-SHA256 signature, a hard timeout. 2xx/3xx is success (as Distribution's httpSink). Always
// consumes the response body; never retries (queue.ts does).
import { createHmac } from 'node:crypto';
import { EVENTS_MEDIA_TYPE } from '../events.js';

export const SIGNATURE_HEADER = 'X-Berth-Signature';

export interface HttpSinkOptions {
  url: string;
  headers: Record<string, readonly string[]>;
  timeout: number;          // ms, for connect + headers + body
  signingkey?: string;
}

export class DeliveryError extends Error {
  readonly code = 'BERTH_NOTIFY_DELIVERY';
}

/** The URL with a password in its userinfo replaced by `xxxxx` (Go's URL.Redacted), for logs, errors and /debug/vars. */
export function redactURL(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = 'xxxxx';
    return u.toString();
  } catch {
    return url;
  }
}

export function signature(key: string, body: Buffer): string {
  return 'sha256=' + createHmac('sha256', key).update(body).digest('hex');
}

export async function deliver(o: HttpSinkOptions, body: Buffer, signal?: AbortSignal): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(o.headers)) headers[k.toLowerCase()] = [...v];
  headers['content-type'] = EVENTS_MEDIA_TYPE;
  if (o.signingkey) headers[SIGNATURE_HEADER.toLowerCase()] = signature(o.signingkey, body);
  const where = redactURL(o.url);
  const { url, basic } = splitUserinfo(o.url);
  if (basic && headers.authorization === undefined) headers.authorization = basic;   // as Go's http.Client
  // undici (~110 CommonJS modules, ~70 ms) loads on the first delivery (before its timeout starts), not at startup.
  const { request } = await import('undici');
  const timeout = AbortSignal.timeout(o.timeout);
  const res = await request(url, {
    method: 'POST', body, headers,
    headersTimeout: o.timeout, bodyTimeout: o.timeout,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  }).catch((err: unknown) => { throw new DeliveryError(`POST ${where}: ${(err as Error).message}`, { cause: err }); });
  await res.body.dump().catch(() => undefined);
  if (res.statusCode < 200 || res.statusCode >= 400) throw new DeliveryError(`POST ${where}: status ${res.statusCode}`);
}

/** `http://user:pass@host/…` → the URL without userinfo and `Basic base64(user:pass)` (undici ignores userinfo). */
function splitUserinfo(raw: string): { url: string; basic?: string } {
  let u: URL;
  try { u = new URL(raw); } catch { return { url: raw }; }
  if (!u.username && !u.password) return { url: raw };
  const creds = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  u.username = '';
  u.password = '';
  return { url: u.toString(), basic: `Basic ${Buffer.from(creds).toString('base64')}` };
}
