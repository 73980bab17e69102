// An HTTP proxy in front of the test store (Ceph RGW) that records each S3 request's operation and key, in order:
// real requests to the real store, only observed. For tests that say how many requests an API call costs.
import { createServer, request as httpRequest, Agent, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Request { op: string; key: string }

export interface S3RequestLog {
  /** http://127.0.0.1:PORT: the regionendpoint to give the driver. */
  url: string;
  /** Requests so far (clear with `requests.length = 0`). */
  readonly requests: S3Request[];
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

export async function startS3RequestLog(endpoint: string): Promise<S3RequestLog> {
  const t = new URL(endpoint);
  const agent = new Agent({ keepAlive: true });
  const requests: S3Request[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    requests.push(s3Operation(req.method ?? 'GET', req.url ?? '/', req.headers['x-amz-copy-source'] !== undefined));
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.on('error', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
