// The one OCI error writer of the public listener: the registry router, the gateway's own answers (401,
// old clients, unknown paths, 503) and the upstream proxy's 502 all go through sendError. It maps with
// toOciError, writes `{"errors":[{code, message, detail}]}`, logs once (5xx at error with the cause, 4xx at
// info, challenges at debug), and closes the connection when a request body was left unread. It never sets
// Docker-Distribution-Api-Version: the gateway's pipeline does that once per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../log/logger.js';
import { ClientDisconnectError, isDisconnect } from '../core/errors.js';
import { errorBody, toOciError } from './errors.js';
import { JSON_TYPE } from './headers.js';

/** Writes err as an OCI error response; destroys the socket instead when the response already started. */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, log: Logger): void {
  try {
    if (err instanceof ClientDisconnectError) {
      log.info({ method: req.method, url: pathOnly(req), ...err.context }, 'client disconnected');
      res.destroy();
      return;
    }
    if (res.headersSent || res.destroyed || req.socket?.destroyed) {
      if (isDisconnect(err) || res.destroyed || req.socket?.destroyed) {
        log.info({ method: req.method, url: pathOnly(req) }, 'client disconnected');
      } else {
        log.error({ err, method: req.method, url: pathOnly(req) }, 'error after response started');
      }
      res.destroy();
      return;
    }
    const e = toOciError(err);
    const fields = { method: req.method, url: pathOnly(req), status: e.status, code: e.code };
    if (e.status >= 500) log.error({ ...fields, err }, 'request failed');
    else if (e.code === 'UNAUTHORIZED') log.debug(fields, 'request rejected');
    else log.info({ ...fields, detail: e.detail }, 'request rejected');
    // A body still on its way is not read: close after the answer instead of draining what we refused.
    if (!req.complete && hasBody(req)) res.shouldKeepAlive = false;
    const body = errorBody(e);
    res.writeHead(e.status, {
      ...e.headers,
      'Content-Type': JSON_TYPE,
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (inner) {
    log.error({ err: inner }, 'failed to write error response');
    res.destroy();
  }
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** The query may carry upload state or tokens: never logged. */
function pathOnly(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
