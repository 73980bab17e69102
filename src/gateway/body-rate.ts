// The minimum request-body rate (Apache mod_reqtimeout's `body=20,MinRate=500`): a request body must have
// arrived, byte for byte, by `timeoutMs + received / minBytesPerSecond` after its request began. Time in which
// berth itself holds the body back (its consumer is behind, or `100 Continue` is not sent yet) does not count.
// A body too slow is cut: 408 when no response has started (the connection then closes), else the connection
// is closed. It never reads the body (the parser's own byte count, http/body-bytes.ts) and never parses paths.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { countBodyBytes, type BodyBytes } from '../http/body-bytes.js';
import type { Logger } from '../log/logger.js';
import { OciError } from '../registry/api/errors.js';
import { sendError } from '../registry/api/send-error.js';

export interface BodyRateOptions {
  /** The grace period in ms (proxy.bodytimeout). */
  timeoutMs: number;
  /** Bytes per second a body must average after the grace period (proxy.bodyminrate); 0: no limit. */
  minBytesPerSecond: number;
  log: Logger;
  /** How often watched bodies are checked; default timeoutMs / 4, between 50 ms and 1 s. */
  checkIntervalMs?: number;
}

export interface BodyRateGuard {
  /** Watches this request's body until it is complete or the response closes. Call before the handler runs. */
  watch(req: IncomingMessage, res: ServerResponse): void;
  /** Bodies being watched now. */
  readonly watched: number;
  /** Stops the timer; watched bodies are left alone. */
  close(): void;
}

interface Watched {
  req: IncomingMessage;
  res: ServerResponse;
  bytes: BodyBytes;
  started: number;
  /** ms in which berth held the body back (not the client's fault). */
  excused: number;
  lastCheck: number;
}

/** undefined when the rate limit is off (minBytesPerSecond 0). */
export function createBodyRateGuard(o: BodyRateOptions): BodyRateGuard | undefined {
  if (!(o.minBytesPerSecond > 0)) return undefined;
  const log = o.log.child({ module: 'body-rate' });
  const every = o.checkIntervalMs ?? Math.max(50, Math.min(1000, Math.floor(o.timeoutMs / 4)));
  const bodies = new Set<Watched>();
  let timer: NodeJS.Timeout | undefined;

  const check = (): void => {
    const now = Date.now();
    for (const w of bodies) {
      if (w.req.complete) { bodies.delete(w); continue; }   // all arrived; the handler may read it later
      if (heldBack(w)) w.excused += now - w.lastCheck;
      w.lastCheck = now;
      const allowedMs = o.timeoutMs + (w.bytes.bytesIn * 1000) / o.minBytesPerSecond;
      if (now - w.started - w.excused > allowedMs) cut(w, now);
    }
    if (bodies.size === 0 && timer) { clearInterval(timer); timer = undefined; }
  };

  const cut = (w: Watched, now: number): void => {
    bodies.delete(w);
    const { req, res } = w;
    const fields = { method: req.method, received: w.bytes.bytesIn, durationMs: now - w.started,
      minBytesPerSecond: o.minBytesPerSecond, timeoutMs: o.timeoutMs, remoteAddress: req.socket.remoteAddress };
    if (res.headersSent || res.writableEnded) {
      log.info(fields, 'request body too slow: connection closed');
      req.socket.destroy();
      return;
    }
    log.info(fields, 'request body too slow: 408');
    // Once the answer is out, the body stream ends as a disconnect (Node does not abort a request whose response
    // finished): the handler's read fails, and an upload session keeps what reached storage and stays resumable.
    res.shouldKeepAlive = false;
    res.once('close', () => { if (!req.complete) req.destroy(); });
    sendError(req, res, new OciError('BLOB_UPLOAD_INVALID',
      { reason: 'request body too slow', minBytesPerSecond: o.minBytesPerSecond, received: w.bytes.bytesIn },
      408, undefined, 'request body arrived too slowly'), log);
  };

  return {
    watch(req, res) {
      if (!hasBody(req) || req.complete) return;
      const now = Date.now();
      const w: Watched = { req, res, bytes: countBodyBytes(req, res), started: now, excused: 0, lastCheck: now };
      bodies.add(w);
      const done = () => { bodies.delete(w); };
      req.once('end', done);
      res.once('close', done);
      if (!timer) { timer = setInterval(check, every); timer.unref(); }
    },
    get watched() { return bodies.size; },
    close() { if (timer) clearInterval(timer); timer = undefined; },
  };
}

/** berth, not the client, is why no bytes move: data waits in the request's buffer, or the client waits for 100 Continue. */
function heldBack(w: Watched): boolean {
  if (w.req.readableLength > 0) return true;
  const expect = w.req.headers.expect;
  return typeof expect === 'string' && /100-continue/i.test(expect) && !(w.res as unknown as { _sent100?: boolean })._sent100;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}
