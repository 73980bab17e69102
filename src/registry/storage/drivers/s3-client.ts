// The only module that imports the AWS SDK (loaded with import() by s3.ts when an s3 driver is first used,
// so filesystem and inmemory registries never load it). It builds the S3Client from the driver's parameters
// and maps SDK errors onto driver errors; it knows nothing about registry paths.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand,
  ListObjectsV2Command, ListPartsCommand, PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as UndiciAgent, request as undiciRequest } from 'undici';
import type { Readable } from 'node:stream';
import { PathNotFoundError, StorageUnavailableError } from '../driver.js';
import { BAD_ANSWER, NotLendable, lentGet } from './lent-get.js';
import { UNTRUSTED_CERT, storeCas } from './s3-tls.js';

export const commands = {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand,
  ListObjectsV2Command, ListPartsCommand, PutObjectCommand, UploadPartCommand, UploadPartCopyCommand,
};
export type Commands = typeof commands;

export interface ClientParameters {
  region: string;
  endpoint?: string;          // absolute URL (s3.ts adds the scheme from `secure`)
  forcePathStyle: boolean;
  accessKey?: string;
  secretKey?: string;
  sessionToken?: string;
  skipVerify: boolean;
  /** A PEM file of CAs to trust for the store besides the default ones (AWS_CA_BUNDLE; s3-tls.ts). */
  caBundle?: string;
  userAgent?: string;
  /** Bounds on a slow or stalled store (S3_TIMEOUTS when left out). */
  timeouts?: Partial<S3Timeouts>;
}

export { S3_TIMEOUTS, type S3Timeouts } from './s3-timeouts.js';
import { S3_TIMEOUTS, storeTimeout, type S3Timeouts } from './s3-timeouts.js';

/** A body at most this long, held in memory, counts as small (manifests, links, the XML of a list of parts):
 *  the whole request is bounded (S3Timeouts.attempt). A larger one (an upload's tail, a part) may be slow to send. */
const SMALL_BODY = 64 * 1024;

export interface S3Connection {
  client: S3Client;
  commands: Commands;
  presign(command: GetObjectCommand | HeadObjectCommand, expiresIn: number): Promise<string>;
  /** An object's bytes (a blob GET): see getObject. Errors are the SDK's shapes, for mapS3Error. */
  getObject(input: { Bucket: string; Key: string; Range?: string }, o?: { signal?: AbortSignal }): Promise<Readable>;
  destroy(): void;
}

const SILENT = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Builds the client: static credentials when given (else the SDK's default chain), path style, a bounded
 *  keep-alive agent, checksums only where the API requires them (RGW and other S3 stores reject the rest). */
export function connect(p: ClientParameters): S3Connection {
  const t: S3Timeouts = { ...S3_TIMEOUTS, ...p.timeouts };
  const agentOptions = { keepAlive: true, maxSockets: 256, maxFreeSockets: 32 };
  const httpAgent = new HttpAgent(agentOptions);
  const ca = p.caBundle ? storeCas(p.caBundle) : undefined;   // throws CA_BUNDLE_UNREADABLE: check-config and serve say so
  const httpsAgent = new HttpsAgent({ ...agentOptions, rejectUnauthorized: !p.skipVerify, ca });
  // socketTimeout: idle time of the socket (no byte either way), whatever the request; throwOnRequestTimeout: the
  // requestTimeout set per request by bounded() below fails the attempt.
  const handlerOptions = { connectionTimeout: t.connect, socketTimeout: t.idle, throwOnRequestTimeout: true };
  const client = new S3Client({
    region: p.region,
    endpoint: p.endpoint,
    forcePathStyle: p.forcePathStyle,
    credentials: p.accessKey && p.secretKey
      ? { accessKeyId: p.accessKey, secretAccessKey: p.secretKey, sessionToken: p.sessionToken || undefined }
      : undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    followRegionRedirects: false,
    maxAttempts: 3,
    // The SDK's default (no logger) warns on the console when a streamed request fails; the writer aborts its
    // streamed part on purpose when a PATCH ends mid-part (s3-writer.ts), so those are expected, and errors reach
    // berth's log through the driver's error mapping instead.
    logger: SILENT,
    customUserAgent: p.userAgent || undefined,
    requestHandler: { ...handlerOptions, httpAgent, httpsAgent },
  });
  // See answersWithBody(): on a plain-HTTP endpoint those requests go on connections of their own.
  const fresh = p.endpoint?.startsWith('http:')
    ? new NodeHttpHandler({ ...handlerOptions, httpAgent: new HttpAgent({ keepAlive: false, maxSockets: agentOptions.maxSockets }) })
    : undefined;
  bounded(client, t, [httpAgent, httpsAgent], fresh);
  const bodies = new UndiciAgent({
    connections: agentOptions.maxSockets, keepAliveTimeout: 4_000,
    connect: { timeout: t.connect, rejectUnauthorized: !p.skipVerify, ca },
  });
  const getter: BodyGetter = { lend: true, undici: bodies, tls: { ca, rejectUnauthorized: !p.skipVerify }, userAgent: p.userAgent || undefined, t };
  return {
    client,
    commands,
    presign: (command, expiresIn) => getSignedUrl(client, command, { expiresIn }),
    getObject: (input, o) => getObject(client, getter, input, o?.signal),
    destroy: () => { client.destroy(); fresh?.destroy(); void bodies.destroy(); },
  };
}

/** Presigned URLs of getObject live this long: the request is sent at once. */
const GET_URL_EXPIRY_S = 15 * 60;

/** How getObject fetches bodies: lent-get.ts, or undici for a store whose answers lent-get does not read. */
interface BodyGetter {
  lend: boolean;
  undici: UndiciAgent;
  tls: { ca?: string[]; rejectUnauthorized: boolean };
  userAgent?: string;
  t: S3Timeouts;
}

/**
 * GetObject's body fetched from a presigned URL (the Range header, not signed, rides along) with lent-get.ts, whose
 * socket reads land in buffers the blob GET hands back: a pull with redirect off was bound by this relay's CPU
 * (measured on the tests' Ceph RGW, a 200 MiB object relayed into an http response, Node 24: the SDK's GetObject 4.4
 * CPU-s per GiB, undici 1.4-1.9 on this machine, lent-get 0.5-0.8; bench/RESULTS.md, "S3", item 6). A store whose answer
 * lent-get does not read (chunked, no Content-Length) gets that request again through undici, and every later one.
 * Like the SDK (maxAttempts 3), an attempt that fails before the response headers (a network error, no headers
 * within S3Timeouts.attempt, a 5xx) is retried, twice, within S3Timeouts.call; the body may then be idle
 * S3Timeouts.idle between bytes while its consumer reads. Errors keep the SDK's shapes (name = the S3 error code,
 * $metadata.httpStatusCode), so mapS3Error and the callers read them as before.
 */
async function getObject(client: S3Client, g: BodyGetter, input: { Bucket: string; Key: string; Range?: string },
  signal?: AbortSignal): Promise<Readable> {
  const t = g.t;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const left = started + t.call - Date.now();
    if (left <= 0) throw storeTimeout('no answer', t.call);
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: input.Bucket, Key: input.Key }), { expiresIn: GET_URL_EXPIRY_S });
    let failure: unknown;
    try {
      const r = await fetchBody(g, url, input.Range, Math.min(t.attempt, left), signal);
      if (r.status === 200 || r.status === 206) return r.body;
      failure = await storeError(r.status, r.body);
      if (r.status < 500) throw failure;
    } catch (err) {
      if (err === failure || signal?.aborted || (err as { name?: string } | null)?.name === 'AbortError') throw err;
      failure = err;
    }
    if (attempt >= 3) throw failure;
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
  }
}

/** One attempt's answer, its headers in within `headersTimeout` ms. */
async function fetchBody(g: BodyGetter, url: string, range: string | undefined, headersTimeout: number,
  signal?: AbortSignal): Promise<{ status: number; body: Readable }> {
  const headers: Record<string, string> = {};
  if (range) headers.range = range;
  if (g.userAgent) headers['user-agent'] = g.userAgent;
  if (g.lend) {
    try {
      const r = await lentGet(new URL(url), {
        headers, tls: g.tls, connectTimeout: g.t.connect, headersTimeout, idleTimeout: g.t.idle, signal,
      });
      return { status: r.status, body: r.body };
    } catch (err) {
      if (!(err instanceof NotLendable)) throw err;
      g.lend = false;   // the store frames its answers so: undici from now on
    }
  }
  const r = await undiciRequest(url, { dispatcher: g.undici, signal, headers, headersTimeout, bodyTimeout: g.t.idle });
  return { status: r.statusCode, body: r.body };
}

/** An S3 error response as the SDK would throw it: name = its <Code>, $metadata.httpStatusCode = the status. */
async function storeError(status: number, body: AsyncIterable<Uint8Array> & { destroy(): void }): Promise<Error> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += Buffer.from(chunk).toString('utf8');
      if (text.length > 16_384) break;   // S3 errors are a few hundred bytes; never read a large body here
    }
  } catch { /* the code is optional */ } finally { body.destroy(); }
  const code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
  return Object.assign(new Error(`object store: ${code ?? 'error'} (HTTP ${status})`), {
    name: code ?? (status === 404 ? 'NotFound' : status === 416 ? 'InvalidRange' : 'UnknownError'),
    $metadata: { httpStatusCode: status },
  });
}

type Handler = { handle(request: unknown, options?: { abortSignal?: AbortSignal; requestTimeout?: number }): Promise<unknown> };
export type Req = { method: string; headers: Record<string, string>; query?: Record<string, unknown>; body?: unknown };

/**
 * Bounds each small request (S3Timeouts.attempt, and what is left of .call since send() began) through the
 * handler's per-request requestTimeout; streaming requests get none (only the socket's idle timeout). A middleware
 * notes when send() began (before the SDK's retries) and, per attempt, what the handler may allow the request.
 */
function bounded(client: S3Client, t: S3Timeouts, agents: HttpAgent[], fresh?: Handler): void {
  const started = Symbol('berthCallStarted');
  const allowed = new WeakMap<object, number>();
  client.middlewareStack.add((next, context) => (args) => {
    (context as Record<symbol, number>)[started] = Date.now();
    return next(args);
  }, { step: 'initialize', name: 'berthCallDeadline', override: true });
  client.middlewareStack.add((next, context) => (args) => {
    const req = args.request as Req;
    if (!streams(req)) {
      const left = (context as Record<symbol, number>)[started] + t.call - Date.now();
      if (left <= 0) {
        return Promise.reject(storeTimeout('no answer', t.call));
      }
      allowed.set(req, Math.min(t.attempt, left));
    }
    return next(args);
  }, { step: 'deserialize', name: 'berthAttemptDeadline', override: true });
  const inner = client.config.requestHandler as unknown as Handler;
  const wrapper = Object.create(inner) as Handler;
  const budget = new Budget(FRESH_PER_S);
  wrapper.handle = (request, options) => (fresh && answersWithBody(request as Req) && budget.take() ? fresh : inner)
    .handle(request, { ...options, requestTimeout: allowed.get(request as object) ?? 0 })
    .catch((err: unknown) => {
      // A request that timed out says the path to the store may be dead (a NAT or load balancer that dropped
      // the connections' state answers nothing, not even a reset): the idle keep-alive connections are closed,
      // so the SDK's retry and later requests connect anew instead of trying them one by one.
      if ((err as { name?: string } | null)?.name === 'TimeoutError') dropIdle(agents);
      throw err;
    });
  (client.config as { requestHandler: unknown }).requestHandler = wrapper;
}

/**
 * True for a request whose answer has a body: GET (lists, small objects: blob bodies go through getObject), POST
 * (CreateMultipartUpload, CompleteMultipartUpload, DeleteObjects) and copies. On a kept-alive connection such an
 * answer waits ~40 ms on Ceph RGW as it runs by default (its beast frontend without `tcp_nodelay`: the body is held
 * behind the headers until the client's delayed ACK, bench/RESULTS.md "The store's frontend"); a new connection
 * acknowledges at once (Linux starts it in quick-ACK mode). Measured on the tests' RGW (bench/s3-latency.ts, berth's
 * client): GetObject 48 → 4 ms, ListObjectsV2 and ListMultipartUploads ~50 → ~10 ms. So on plain-HTTP endpoints (an
 * in-cluster store) these requests go on connections of their own (`Connection: close`), up to FRESH_PER_S a second:
 * each leaves a socket in TIME_WAIT on berth's side for a minute, and a busy registry must not run out of ephemeral
 * ports (~28,000 per store address); beyond the budget they share the kept-alive connections, as before. HEAD, PUT,
 * DELETE and UploadPart (no body in the answer) keep their connections, and so does every request to an https
 * endpoint (a TLS handshake per request costs more than it saves on a store without the delay, AWS S3 among them).
 */
export function answersWithBody(req: Req): boolean {
  return req.method === 'GET' || req.method === 'POST' || (req.method === 'PUT' && req.headers['x-amz-copy-source'] !== undefined);
}

/** New connections a second for answersWithBody() requests: at most 6,000 sockets in TIME_WAIT (60 s each). */
export const FRESH_PER_S = 100;

/** A token bucket: `perS` a second, bursts of as many. */
export class Budget {
  private tokens: number;
  private last: number;
  constructor(private readonly perS: number, private readonly now: () => number = Date.now) {
    this.tokens = perS;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.perS, this.tokens + ((t - this.last) * this.perS) / 1000);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

function dropIdle(agents: HttpAgent[]): void {
  for (const a of agents) for (const list of Object.values(a.freeSockets)) for (const socket of list ?? []) socket.destroy();
}

/** True for a request whose duration follows its size or the client's pace: a streamed or large body, a copy,
 *  a CompleteMultipartUpload or a multi-object delete (the store's work grows with the object or the batch). */
function streams(req: Req): boolean {
  const b = req.body;
  if (b !== undefined && b !== null && !(typeof b === 'string' && b.length <= SMALL_BODY) && !(b instanceof Uint8Array && b.length <= SMALL_BODY)) return true;
  if (req.headers['x-amz-copy-source'] !== undefined) return true;
  if (req.method === 'POST' && req.query && ('uploadId' in req.query || 'delete' in req.query)) return true;
  return false;
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED',
  // getObject's: lent-get's, undici's
  BAD_ANSWER, 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);

/**
 * An SDK error as a driver error: missing keys → PathNotFoundError; network errors, timeouts, 5xx, a certificate
 * the store presents that berth does not trust, and refused credentials or a missing bucket → StorageUnavailableError (503: the request may succeed later); aborts and
 * anything else unchanged.
 */
export function mapS3Error(err: unknown, path: string, driver: string): unknown {
  const e = err as { name?: string; code?: string; Code?: string; $metadata?: { httpStatusCode?: number }; message?: string } | null;
  if (!e || typeof e !== 'object') return err;
  if (e.name === 'AbortError') return err;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? e.Code ?? '';
  if (NOT_FOUND.has(name) || (status === 404 && name !== 'NoSuchBucket')) return new PathNotFoundError(path, driver, { cause: err });
  if ((e.code && (NETWORK.has(e.code) || UNTRUSTED_CERT.has(e.code) || e.code === 'ERR_TLS_CERT_ALTNAME_INVALID')) || name === 'TimeoutError' || name === 'RequestTimeout' || (status !== undefined && status >= 500)
    || name === 'SlowDown' || name === 'ServiceUnavailable' || name === 'InternalError'
    || name === 'NoSuchBucket' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied' || status === 403) {
    return new StorageUnavailableError(`object store: ${name || e.code || 'error'}${status ? ` (HTTP ${status})` : ''} on ${path}`, driver, { cause: err });
  }
  if (status === undefined && e.code === undefined && /socket|ECONN|network/i.test(e.message ?? '')) {
    return new StorageUnavailableError(`object store unreachable on ${path}`, driver, { cause: err });
  }
  return err;
}
