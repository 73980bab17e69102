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
import { PathNotFoundError, StorageUnavailableError } from '../driver.js';

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
  userAgent?: string;
}

export interface S3Connection {
  client: S3Client;
  commands: Commands;
  presign(command: GetObjectCommand | HeadObjectCommand, expiresIn: number): Promise<string>;
  destroy(): void;
}

const SILENT = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Builds the client: static credentials when given (else the SDK's default chain), path style, a bounded
 *  keep-alive agent, checksums only where the API requires them (RGW and other S3 stores reject the rest). */
export function connect(p: ClientParameters): S3Connection {
  const agentOptions = { keepAlive: true, maxSockets: 256, maxFreeSockets: 32 };
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
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent({ ...agentOptions, rejectUnauthorized: !p.skipVerify }),
      connectionTimeout: 3000,
      requestTimeout: 60_000,   // socket idle time, not the whole request: long streams are fine
    },
  });
  return {
    client,
    commands,
    presign: (command, expiresIn) => getSignedUrl(client, command, { expiresIn }),
    destroy: () => client.destroy(),
  };
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

/**
 * An SDK error as a driver error: missing keys → PathNotFoundError; network errors, timeouts, 5xx and refused
 * credentials or a missing bucket → StorageUnavailableError (503: the request may succeed later); aborts and
 * anything else unchanged.
 */
export function mapS3Error(err: unknown, path: string, driver: string): unknown {
  const e = err as { name?: string; code?: string; Code?: string; $metadata?: { httpStatusCode?: number }; message?: string } | null;
  if (!e || typeof e !== 'object') return err;
  if (e.name === 'AbortError') return err;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? e.Code ?? '';
  if (NOT_FOUND.has(name) || (status === 404 && name !== 'NoSuchBucket')) return new PathNotFoundError(path, driver, { cause: err });
  if ((e.code && NETWORK.has(e.code)) || name === 'TimeoutError' || name === 'RequestTimeout' || (status !== undefined && status >= 500)
    || name === 'SlowDown' || name === 'ServiceUnavailable' || name === 'InternalError'
    || name === 'NoSuchBucket' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied' || status === 403) {
    return new StorageUnavailableError(`object store: ${name || e.code || 'error'}${status ? ` (HTTP ${status})` : ''} on ${path}`, driver, { cause: err });
  }
  if (status === undefined && e.code === undefined && /socket|ECONN|network/i.test(e.message ?? '')) {
    return new StorageUnavailableError(`object store unreachable on ${path}`, driver, { cause: err });
  }
  return err;
}
