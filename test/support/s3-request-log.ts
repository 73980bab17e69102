// An HTTP proxy in front of the test store (Ceph RGW) that records each S3 request's operation and key, in order:
// real requests to the real store, only observed. For tests that say how many requests an API call costs.
import { createServer, request as httpRequest, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Request { op: string; key: string }

export interface S3RequestLog {
  /** http://127.0.0.1:PORT: the regionendpoint to give the driver. */
  url: string;
  /** Requests so far (clear with `requests.length = 0`). */
  readonly requests: S3Request[];
  /** Connections the client opened to the proxy so far, and the one each request came on (its index in order). */
  readonly connections: () => number;
  readonly requestConnection: number[];
  /** Holds the requests `match` picks (recorded, not yet forwarded) until the returned function is called. */
  hold(match: (r: S3Request) => boolean): () => void;
  close(): Promise<void>;
}

/** The S3 operation of a request (path style: /bucket/key). */
export function s3Operation(method: string, url: string, copySource: boolean): S3Request {
  const u = new URL(url, 'http://x');
  const q = u.searchParams;
  const key = decodeURIComponent(u.pathname.split('/').slice(2).join('/'));
  const op = method === 'PUT' && q.has('partNumber') ? (copySource ? 'UploadPartCopy' : 'UploadPart')
    : method === 'PUT' ? (copySource ? 'CopyObject' : 'PutObject')
    : method === 'POST' && q.has('uploads') ? 'CreateMultipartUpload'
    : method === 'POST' && q.has('uploadId') ? 'CompleteMultipartUpload'
    : method === 'POST' && q.has('delete') ? 'DeleteObjects'
    : method === 'DELETE' ? (q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject')
    : method === 'HEAD' ? 'HeadObject'
    : method === 'GET' && q.has('uploads') ? 'ListMultipartUploads'
    : method === 'GET' && q.has('uploadId') ? 'ListParts'
    : method === 'GET' && !key ? 'ListObjectsV2'
    : 'GetObject';
  return { op, key: key || (q.get('prefix') ?? '') };
}

/** Relays the store's response to the client. */
const relay = (res: ServerResponse) => (r: IncomingMessage) => { res.writeHead(r.statusCode ?? 502, r.headers); r.pipe(res); };

/** Sends the request on to the store at `t`; `answer` gets the store's response. */
function forward(req: IncomingMessage, res: ServerResponse, t: URL, agent: Agent, answer: (r: IncomingMessage) => void): void {
  const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, answer);
  up.on('error', () => res.destroy());
  req.on('error', () => up.destroy());
  req.pipe(up);
}

/** Listens on 127.0.0.1:0; close() ends every connection and the agent to the store. */
async function listenLocal(server: Server, agent: Agent, beforeClose?: () => void): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      beforeClose?.();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

export async function startS3RequestLog(endpoint: string): Promise<S3RequestLog> {
  const t = new URL(endpoint);
  const agent = new Agent({ keepAlive: true });
  const requests: S3Request[] = [];
  const requestConnection: number[] = [];
  const ids = new WeakMap<object, number>();
  let opened = 0;
  const holds = new Set<{ match: (r: S3Request) => boolean; held: (() => void)[] }>();
  const server = createServer((req: IncomingMessage, res) => {
    const r = s3Operation(req.method ?? 'GET', req.url ?? '/', req.headers['x-amz-copy-source'] !== undefined);
    requests.push(r);
    requestConnection.push(ids.get(req.socket) ?? -1);
    const go = () => forward(req, res, t, agent, relay(res));
    const h = [...holds].find((x) => x.match(r));
    if (h) h.held.push(go);
    else go();
  });
  server.on('connection', (socket) => { ids.set(socket, opened++); });
  const listening = await listenLocal(server, agent);
  return {
    requests, ...listening, connections: () => opened, requestConnection,
    hold(match) {
      const h = { match, held: [] as (() => void)[] };
      holds.add(h);
      return () => { holds.delete(h); for (const go of h.held.splice(0)) go(); };
    },
  };
}

export interface S3PartGate {
  /** http://127.0.0.1:PORT: the regionendpoint to give the driver. */
  url: string;
  /** Holds each UploadPart's answer until the next part's request arrives (or `holdMs` passed), to show parts
   *  overlap (parts 1 to `last`); the part numbers whose answer the next part's arrival released. */
  holdUntilNext(holdMs: number, last: number): void;
  readonly overlapped: number[];
  /** Holds the store's answer to UploadPart `part` for `ms`; resolves, when it is released, with how many bytes of
   *  part `part + 1` had come by then. */
  holdAnswer(part: number, ms: number): Promise<number>;
  /** The next `times` UploadParts numbered `part` (1 unless said) are read whole and answered 500 InternalError;
   *  the store never sees them. */
  failAfterBody(part: number, times?: number): void;
  /** Part numbers answered 500 by failAfterBody, in order. */
  readonly failed: number[];
  /** UploadPart numbers the store received in full and acknowledged (200), in order of their answers. */
  readonly stored: number[];
  /** UploadPart numbers of every request that came (streamed ones cut short and aborted too), in order. */
  readonly requested: number[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy to the test store that can hold or fail multipart parts after their whole body arrived: for the
 * writer's overlapping parts (s3-writer.ts). Every other request passes to the real store unchanged.
 */
export async function startS3PartGate(endpoint: string): Promise<S3PartGate> {
  const t = new URL(endpoint);
  const agent = new Agent({ keepAlive: true });
  let holdMs: number | undefined;
  let holdLast = 0;
  let failPart: number | undefined;
  let failTimes = 0;
  const failed: number[] = [];
  const overlapped: number[] = [];
  const stored: number[] = [];
  const waiting = new Map<number, () => void>();   // part number → releases its held answer
  const received = new Map<number, number>();      // part number → body bytes come so far
  let held: { part: number; ms: number; report: (bytes: number) => void } | undefined;
  const arrived = new Set<number>();               // part numbers whose request came
  const requested: number[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const part = s3Operation(req.method ?? 'GET', req.url ?? '/', req.headers['x-amz-copy-source'] !== undefined).op === 'UploadPart'
      ? Number(u.searchParams.get('partNumber')) : undefined;
    if (part !== undefined) {
      arrived.add(part);
      requested.push(part);
      waiting.get(part - 1)?.();
      received.set(part, 0);
      req.on('data', (c: Buffer) => received.set(part, (received.get(part) ?? 0) + c.length));
    }
    if (part !== undefined && part === failPart && failTimes > 0) {
      failTimes--;
      req.resume();
      req.on('end', () => {
        failed.push(part);
        res.writeHead(500, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected after the body</Message></Error>');
      });
      return;
    }
    forward(req, res, t, agent, (r) => {
      const answer = () => relay(res)(r);
      if (part === undefined) { answer(); return; }
      if (r.statusCode === 200) stored.push(part);
      const h = held;
      if (h?.part === part) {
        held = undefined;
        setTimeout(() => { h.report(received.get(part + 1) ?? 0); answer(); }, h.ms);
        return;
      }
      if (holdMs === undefined || part > holdLast) { answer(); return; }
      if (arrived.has(part + 1)) { overlapped.push(part); answer(); return; }   // the next part came first
      const timer = setTimeout(() => { waiting.delete(part); answer(); }, holdMs);
      waiting.set(part, () => { clearTimeout(timer); waiting.delete(part); overlapped.push(part); answer(); });
    });
  });
  return {
    holdUntilNext(ms, last) { holdMs = ms; holdLast = last; },
    overlapped,
    holdAnswer: (part, ms) => new Promise<number>((report) => { held = { part, ms, report }; }),
    failAfterBody(n, times = 1) { failPart = n; failTimes = times; },
    failed,
    stored,
    requested,
    ...await listenLocal(server, agent, () => { for (const release of [...waiting.values()]) release(); }),
  };
}
