// Per-request id and the one `request completed` log line (method, path without query, status,
// durationMs, bytesIn, bytesOut, reqId, plus what later steps note: user, client). It observes the request; it must never read or buffer the
// body itself (no 'data' listeners: that would switch the stream to flowing mode and lose bytes).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The client's X-Request-Id if it is ≤128 chars of [A-Za-z0-9._-], else a fresh UUID. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export interface TrackedRequest {
  reqId: string;
  /** The request's child logger (bound to reqId). */
  log: Logger;
  /** Adds fields (e.g. `user`) to the `request completed` line. */
  note(fields: Record<string, unknown>): void;
}

/**
 * Assigns the request id (echoed as X-Request-Id, and written back to req.headers so handlers see
 * the accepted one), counts body bytes in and out, and logs `request completed` when the response
 * closes.
 */
export function trackRequest(req: IncomingMessage, res: ServerResponse, log: Logger): TrackedRequest {
  const started = process.hrtime.bigint();
  const reqId = requestId(req);
  req.headers['x-request-id'] = reqId;
  res.setHeader('X-Request-Id', reqId);
  const reqLog = log.child({ reqId });
  const method = req.method ?? '';
  const path = (req.url ?? '/').split('?')[0];   // the query may carry upload state or tokens: never logged
  reqLog.debug({ method, path }, 'request started');

  // Count bytes where they pass anyway: the parser pushes body chunks into req; handlers write to res.
  let bytesIn = 0;
  let bytesOut = 0;
  const push = req.push;
  req.push = function (chunk: any, encoding?: BufferEncoding) {
    if (chunk) bytesIn += chunk.length;
    return push.call(this, chunk, encoding);
  };
  const count = (chunk: unknown, encoding?: unknown) => {
    if (typeof chunk === 'string') bytesOut += Buffer.byteLength(chunk, typeof encoding === 'string' ? encoding as BufferEncoding : 'utf8');
    else if (chunk instanceof Uint8Array) bytesOut += chunk.byteLength;
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

  const noted: Record<string, unknown> = {};
  res.once('close', () => {
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const fields: Record<string, unknown> = {
      method, path, status: res.statusCode, durationMs: Math.round(durationMs * 1000) / 1000,
      bytesIn, bytesOut: method === 'HEAD' ? 0 : bytesOut, ...noted,
    };
    if (!res.writableFinished) fields.aborted = true;   // client went away before the response ended
    reqLog.info(fields, 'request completed');
  });
  return { reqId, log: reqLog, note: (f) => { Object.assign(noted, f); } };
}
