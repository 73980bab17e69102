// Counts request and response body bytes where they pass anyway (the parser's req.push, the
// handlers' res.write/res.end), once per request: the access log and the metrics share one counter
// instead of each wrapping the streams. Never buffers or alters what passes.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface BodyBytes { readonly bytesIn: number; readonly bytesOut: number }

const counters = new WeakMap<ServerResponse, BodyBytes>();

/** The counter for this request, installed on first call; later calls return the same one. */
export function countBodyBytes(req: IncomingMessage, res: ServerResponse): BodyBytes {
  const existing = counters.get(res);
  if (existing) return existing;
  const c = { bytesIn: 0, bytesOut: 0 };
  counters.set(res, c);
  const push = req.push;
  req.push = function (chunk: any, encoding?: BufferEncoding) {
    if (chunk) c.bytesIn += chunk.length;
    return push.call(this, chunk, encoding);
  };
  const count = (chunk: unknown, encoding?: unknown) => {
    if (typeof chunk === 'string') c.bytesOut += Buffer.byteLength(chunk, typeof encoding === 'string' ? encoding as BufferEncoding : 'utf8');
    else if (chunk instanceof Uint8Array) c.bytesOut += chunk.byteLength;
  };
  const write = res.write;
  res.write = function (this: ServerResponse, chunk: any, ...rest: any[]) {
    count(chunk, rest[0]);
    return (write as any).call(this, chunk, ...rest);
  } as typeof res.write;
  const end = res.end;
  res.end = function (this: ServerResponse, chunk?: any, ...rest: any[]) {
    if (typeof chunk !== 'function') count(chunk, rest[0]);
    return (end as any).call(this, chunk, ...rest);
  } as typeof res.end;
  return c;
}
