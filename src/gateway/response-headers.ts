// The configured `headers:` (Distribution's http.headers, e.g. X-Content-Type-Options: nosniff) on
// every response of the public listener. They are set when the head is written, so they replace a
// value that a handler, the pipeline or an upstream set for the same name: ours wins, exactly once.
// It never touches status, body or other headers; the debug listener does not use it.
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** Wraps one response's writeHead (which Node also calls for implicit heads: write(), end()). */
export type ResponseHeaderHook = (res: ServerResponse) => void;

/** undefined when there is nothing to add (no per-response cost). */
export function responseHeaderHook(headers: Readonly<Record<string, readonly string[]>>): ResponseHeaderHook | undefined {
  const list = Object.entries(headers).filter(([, v]) => v.length > 0)
    .map(([name, v]) => [name, v.length === 1 ? v[0]! : [...v]] as const);
  if (list.length === 0) return undefined;
  const names = new Set(list.map(([n]) => n.toLowerCase()));
  return (res) => {
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, statusCode: number, ...rest: unknown[]) {
      if (!this.headersSent) {
        for (const [name, value] of list) this.setHeader(name, value);
        const last = rest.length - 1;   // writeHead(status[, message][, headers])
        if (last >= 0 && rest[last] !== null && typeof rest[last] === 'object') rest[last] = without(rest[last] as Headers, names);
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).call(this, statusCode, ...rest);
    } as ServerResponse['writeHead'];
  };
}

/** The raw header lines for answers written straight to the socket (e.g. 400/408/431 before routing). */
export function rawHeaderLines(headers: Readonly<Record<string, readonly string[]>>): string {
  return Object.entries(headers).flatMap(([n, vs]) => vs.map((v) => `${n}: ${v}\r\n`)).join('');
}

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[];

/** writeHead's own headers (an object, or a flat [name, value, …] array) minus the configured names. */
function without(h: Headers, names: ReadonlySet<string>): Headers {
  if (Array.isArray(h)) {
    const out: OutgoingHttpHeader[] = [];
    for (let i = 0; i + 1 < h.length; i += 2) if (!names.has(String(h[i]).toLowerCase())) out.push(h[i]!, h[i + 1]!);
    return out;
  }
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (!names.has(k.toLowerCase())) out[k] = v;
  return out;
}
