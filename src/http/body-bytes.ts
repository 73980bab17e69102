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
  req.push = function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) {
    if (chunk instanceof Uint8Array) c.bytesIn += chunk.byteLength;
    else if (typeof chunk === 'string') c.bytesIn += Buffer.byteLength(chunk, encoding);
    return push.call(this, chunk, encoding);
  };
  const count = (chunk: unknown, encoding?: unknown) => {
    if (typeof chunk === 'string') c.bytesOut += Buffer.byteLength(chunk, typeof encoding === 'string' ? encoding as BufferEncoding : 'utf8');
    else if (chunk instanceof Uint8Array) c.bytesOut += chunk.byteLength;
  };
  // write() and end() have several overloads; the wrappers take what the caller gave and pass it on as is.
  type Passthrough = (this: ServerResponse, ...args: unknown[]) => unknown;
  const write = res.write as Passthrough;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk, rest[0]);
    return write.call(this, chunk, ...rest);
  } as typeof res.write;
  const end = res.end as Passthrough;
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') count(chunk, rest[0]);
    return end.call(this, chunk, ...rest);
  } as typeof res.end;
  return c;
}
