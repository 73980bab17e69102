// The S3 driver (after Distribution's s3-aws): the same keys (`<rootdirectory>/docker/registry/v2/...`), so
// registry:2 and berth can share a bucket. It registers "s3" with Distribution's parameters; the AWS SDK is
// loaded (s3-client.ts, import()) on the first operation, never at start. It knows no registry layout.
import { totalmem } from 'node:os';
import { Readable, addAbortSignal } from 'node:stream';
import {
  InvalidPathError, PathNotFoundError, StorageDriverError,
  type FileInfo, type FileWriter, type OpOptions, type StorageDriver,
} from '../driver.js';
import { StorageParameterError, addUploadBuffers, comparePaths, isAncestor, isValidComponent, readSpan } from '../base.js';
import { parseParameters, type ParsedParameters } from '../parameters.js';
import { registerDriver } from '../registration.js';
import type { ClientParameters, S3Connection } from './s3-client.js';
import { S3_TIMEOUTS } from './s3-timeouts.js';
import { CA_BUNDLE_UNREADABLE, UNTRUSTED_CERT } from './s3-tls.js';
import { OVERLAP_BUFFERS, PartBuffers, S3Writer, TAIL, TAIL_PARTS, copyRanges, objectVersion, pendingVersion, type Part, type PutOptions } from './s3-writer.js';
import { Recent } from '../../../util/recent.js';

const NAME = 's3';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Presigned URLs live as long as Distribution's (20 minutes). */
const REDIRECT_EXPIRY_S = 20 * 60;

/** Distribution's s3-aws parameters and defaults (docs/content/storage-drivers/s3.md); forcepathstyle and
 *  loglevel are Distribution 3's, sessiontoken and objectacl 2.8's. region and bucket are required. */
export const S3_PARAMETERS = [
  { name: 'accesskey', kind: 'string' },
  { name: 'secretkey', kind: 'string' },
  { name: 'sessiontoken', kind: 'string' },
  { name: 'region', kind: 'string' },
  { name: 'regionendpoint', kind: 'string' },
  { name: 'forcepathstyle', kind: 'bool' },
  { name: 'bucket', kind: 'string' },
  { name: 'rootdirectory', kind: 'string', default: '' },
  { name: 'encrypt', kind: 'bool', default: false },
  { name: 'keyid', kind: 'string' },
  { name: 'secure', kind: 'bool', default: true },
  { name: 'skipverify', kind: 'bool', default: false },
  { name: 'v4auth', kind: 'bool', default: true },
  { name: 'chunksize', kind: 'int', default: 10 * MiB, min: 5 * MiB, max: 5 * GiB },
  { name: 'multipartcopychunksize', kind: 'int', default: 32 * MiB, min: 5 * MiB, max: 5 * GiB },
  { name: 'multipartcopymaxconcurrency', kind: 'int', default: 100, min: 1 },
  { name: 'multipartcopythresholdsize', kind: 'int', default: 32 * MiB, min: 0, max: 5 * GiB },
  { name: 'storageclass', kind: 'string', default: 'STANDARD' },
  { name: 'objectacl', kind: 'string', default: 'private' },
  { name: 'useragent', kind: 'string' },
  { name: 'loglevel', kind: 'string', default: 'off' },
  // berth only (Distribution has no such bounds and ignores keys it does not know): seconds, see S3_TIMEOUTS.
  { name: 'requesttimeout', kind: 'int', default: S3_TIMEOUTS.call / 1000, min: 1, max: 3600 },
  { name: 'idletimeout', kind: 'int', default: S3_TIMEOUTS.idle / 1000, min: 1, max: 3600 },
  // berth only: bytes of upload part buffers in all (PartBuffers in s3-writer.ts); unset: partBufferMemory().
  { name: 'buffermemory', kind: 'int', min: 5 * MiB },
] as const;
export type S3Parameters = ParsedParameters<typeof S3_PARAMETERS>;

const STORAGE_CLASSES = ['STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'NONE'];
const ACLS = ['private', 'public-read', 'public-read-write', 'authenticated-read', 'aws-exec-read', 'bucket-owner-read', 'bucket-owner-full-control'];

registerDriver(NAME, {
  parameters: S3_PARAMETERS,
  create(params) { return new S3Driver(checkS3Parameters(params)); },
  check: checkStoreAccess,
});

/** One ListObjectsV2 under the root (GET, so the store answers with an error code): refused credentials or a
 *  missing bucket become a problem at their key; anything else (unreachable, slow) is left to the health check. */
async function checkStoreAccess(params: Readonly<Record<string, unknown>>): Promise<{ key: string; message: string } | undefined> {
  const d = new S3Driver(checkS3Parameters(params));
  try {
    const c = await d.connection();
    await c.client.send(new c.commands.ListObjectsV2Command({ Bucket: d.bucket, Prefix: d.key('/'), MaxKeys: 1 }), { abortSignal: AbortSignal.timeout(15_000) });
    return undefined;
  } catch (err) {
    const name = (err as { name?: string }).name ?? '';
    const where = d.params.regionendpoint || `region ${d.params.region}`;
    if (name === 'InvalidAccessKeyId') return { key: 'accesskey', message: `the store at ${where} does not know this access key (${name})` };
    if (name === 'SignatureDoesNotMatch') return { key: 'secretkey', message: `the store at ${where} refused the secret key (${name})` };
    if (name === 'NoSuchBucket') return { key: 'bucket', message: `bucket ${JSON.stringify(d.bucket)} does not exist at ${where}` };
    if (name === 'AccessDenied') return { key: 'bucket', message: `the store at ${where} denies these credentials access to bucket ${JSON.stringify(d.bucket)} (${name})` };
    const tls = tlsProblem(err, where);
    if (tls) return { key: 'regionendpoint', message: tls };
    return undefined;
  } finally {
    await d.close();
  }
}

/** A TLS failure that is the configuration's (an untrusted certificate, a CA bundle that cannot be read, TLS
 *  against a plain-HTTP port), in words that say what to change; undefined for anything else. */
function tlsProblem(err: unknown, where: string): string | undefined {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (code === CA_BUNDLE_UNREADABLE) return (err as Error).message;
  if (UNTRUSTED_CERT.has(code)) {
    return `the store at ${where} presented a certificate berth does not trust (${code}): give its CA in AWS_CA_BUNDLE or NODE_EXTRA_CA_CERTS, or set skipverify: true`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the store's certificate does not name ${where} (${code}): use the name it was issued for, or set skipverify: true`;
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `the store at ${where} does not answer TLS (${code}): is it a plain-HTTP endpoint (http://, secure: false)?`;
  return undefined;
}

/**
 * The default of `buffermemory`: a quarter of the memory the process may use (its cgroup's limit in a container,
 * else the machine's), at most 1 GiB, at least two buffers. Each upload in progress holds one chunksize buffer; past
 * the bound, PATCHes wait for one (s3-writer.ts PartBuffers) instead of the process running out of memory.
 */
export function partBufferMemory(chunksize: number, memory = availableMemory()): number {
  return Math.max(2 * chunksize, Math.min(GiB, Math.floor(memory / 4)));
}

function availableMemory(): number {
  const limit = process.constrainedMemory?.() ?? 0;   // 0 (or a huge number) without a limit
  return limit > 0 ? Math.min(limit, totalmem()) : totalmem();
}

/** parseParameters plus the checks across keys, each error naming its config key. */
export function checkS3Parameters(params: Readonly<Record<string, unknown>>): S3Parameters {
  const p = parseParameters(NAME, S3_PARAMETERS, params);
  const err = (key: string, message: string) => new StorageParameterError(`registry.storage.s3.${key}`, message, NAME);
  if (!p.region) throw err('region', 'required');
  if (!p.bucket) throw err('bucket', 'required');
  if (!p.v4auth) throw err('v4auth', 'v2 signatures are not supported: set true');
  if (!!p.accesskey !== !!p.secretkey) throw err(p.accesskey ? 'secretkey' : 'accesskey', 'accesskey and secretkey go together');
  if (!STORAGE_CLASSES.includes(p.storageclass.toUpperCase())) throw err('storageclass', `expected one of: ${STORAGE_CLASSES.join(', ')}`);
  if (!ACLS.includes(p.objectacl)) throw err('objectacl', `expected one of: ${ACLS.join(', ')}`);
  if (p.regionendpoint && !/^(https?:\/\/)?[^\s/]+(\/.*)?$/.test(p.regionendpoint)) throw err('regionendpoint', 'expected a URL such as http://host:port');
  if (p.buffermemory !== undefined && p.buffermemory < p.chunksize) throw err('buffermemory', `at least chunksize (${p.chunksize}): every upload in progress holds a buffer of chunksize`);
  return p;
}


/** An object's HEAD. */
interface ObjectHead { size: number; modTime: Date; etag?: string }

/** A closed, uncommitted writer's state in the store (S3Driver.pendingState). */
export interface PendingState {
  size: number; modTime: Date; uploadId?: string; parts: Part[]; tailSize: number; version: string;
  /** A tail object exists, counted or stale (a commit or cancel deletes it; without one it asks nothing). */
  tailObject: boolean;
}

interface ListedPart { PartNumber: number; ETag: string; Size: number; LastModified?: Date }
interface TailHead { size: number; modTime: Date; parts?: number; etag?: string }

/** A closed writer's state from its tail's HEAD and its multipart upload's parts (either may be missing). */
function pendingOf(tailHead: TailHead | undefined, upload: { UploadId: string; Initiated?: Date } | undefined, listed: ListedPart[]): PendingState | undefined {
  const parts: Part[] = [];
  let size = 0;
  let modTime = upload?.Initiated ?? new Date(0);
  for (const part of listed) {
    parts.push({ PartNumber: part.PartNumber, ETag: part.ETag });
    size += part.Size;
    if (part.LastModified && part.LastModified > modTime) modTime = part.LastModified;
  }
  parts.sort((a, b) => a.PartNumber - b.PartNumber);
  // A tail written when the upload had another number of parts than now is stale (TAIL_PARTS): a writer that
  // continued the upload died before its commit (its bytes are in the parts), or a commit completed the upload
  // and died before deleting the tail (no upload left: the object itself is the truth). A tail without the count
  // is taken as is.
  const tail = tailHead && (tailHead.parts === undefined || tailHead.parts === parts.length) ? tailHead : undefined;
  if (!tail && !upload) return undefined;
  if (tail) {
    size += tail.size;
    if (tail.modTime > modTime) modTime = tail.modTime;
  }
  return { size, modTime, uploadId: upload?.UploadId, parts, tailSize: tail?.size ?? 0, version: pendingVersion(parts, tail?.etag), tailObject: tailHead !== undefined };
}

/** A multipart upload this process started or found (S3Driver.known): a shortcut, never the truth (see pendingState). */
export interface KnownUpload { uploadId: string; initiated: Date }

export class S3Driver implements StorageDriver {
  readonly name = NAME;
  readonly bucket: string;
  readonly chunkSize: number;
  readonly put: PutOptions;
  private readonly rootKey: string;
  private conn?: Promise<S3Connection>;
  /** What stat(p, { pending: true }) found behind each FileInfo it returned, for writer(p, { append, from }). */
  private readonly found = new WeakMap<FileInfo, { pending?: PendingState; object?: ObjectHead }>();
  /** Multipart uploads this process found or started, by key (pendingState lists their parts without finding them
   *  first); dropped when the store no longer knows the upload, and after an hour unused, at most 10,000. */
  readonly known = new Recent<KnownUpload>(10_000, 3600_000, Date.now);
  /** Its writers' part buffers (one each, a second for OVERLAP_BUFFERS of them at a time, at most buffermemory in
   *  all: s3-writer.ts). */
  readonly buffers: PartBuffers;
  private readonly unlist: () => void;

  constructor(readonly params: S3Parameters) {
    this.bucket = params.bucket!;
    this.chunkSize = params.chunksize;
    this.buffers = new PartBuffers(params.chunksize, OVERLAP_BUFFERS, Math.max(1, Math.floor((params.buffermemory ?? partBufferMemory(params.chunksize)) / params.chunksize)));
    this.unlist = addUploadBuffers(NAME, this.buffers);   // for metrics (berth_upload_buffers_*)
    this.rootKey = params.rootdirectory.replace(/\/+$/, '').replace(/^\/+/, '');
    const sc = params.storageclass.toUpperCase();
    this.put = {
      ContentType: 'application/octet-stream',
      ACL: params.objectacl as PutOptions['ACL'],
      ...(sc === 'NONE' ? {} : { StorageClass: sc as PutOptions['StorageClass'] }),
      ...(params.encrypt ? { ServerSideEncryption: (params.keyid ? 'aws:kms' : 'AES256') as PutOptions['ServerSideEncryption'] } : {}),
      ...(params.encrypt && params.keyid ? { SSEKMSKeyId: params.keyid } : {}),
    };
  }

  /** The SDK client, loaded and built on first use. */
  connection(): Promise<S3Connection> {
    this.conn ??= import('./s3-client.js').then((m) => m.connect(clientParameters(this.params)));
    return this.conn;
  }

  /** Closes the client's sockets (tests; a serving process keeps it for its lifetime). */
  async close(): Promise<void> {
    this.unlist();
    if (this.conn) (await this.conn.catch(() => undefined))?.destroy();   // a client never built has nothing to close
  }

  /** The object key of a path: Distribution's s3Path (`TrimLeft(TrimRight(root,"/")+p, "/")`). */
  key(p: string): string { return this.rootKey ? `${this.rootKey}${p}` : p.slice(1); }

  /** The key prefix of a directory's children. */
  private dirPrefix(p: string): string { return p === '/' ? (this.rootKey ? this.rootKey + '/' : '') : this.key(p) + '/'; }

  private pathOf(key: string): string { return '/' + key.slice(this.rootKey ? this.rootKey.length + 1 : 0); }

  /** Runs one SDK call, mapping its errors (path: for the message and PathNotFoundError). */
  async call<T>(path: string, fn: (c: S3Connection) => Promise<T>): Promise<T> {
    const c = await this.connection();
    try {
      return await fn(c);
    } catch (err) {
      if (err instanceof StorageDriverError) throw err;
      throw (await import('./s3-client.js')).mapS3Error(err, path, NAME);
    }
  }

  async getContent(p: string, o?: OpOptions): Promise<Buffer> {
    return this.call(p, async (c) => {
      const r = await c.client.send(new c.commands.GetObjectCommand({ Bucket: this.bucket, Key: this.key(p) }), { abortSignal: o?.signal });
      return Buffer.from(await r.Body!.transformToByteArray());
    });
  }

  async putContent(p: string, data: Uint8Array, o?: OpOptions): Promise<void> {
    await this.call(p, (c) => c.client.send(new c.commands.PutObjectCommand({
      Bucket: this.bucket, Key: this.key(p), Body: data, ContentLength: data.length, ...this.put,
    }), { abortSignal: o?.signal }));
  }

  async head(p: string, o?: OpOptions): Promise<ObjectHead | undefined> {
    try {
      return await this.call(p, async (c) => {
        const r = await c.client.send(new c.commands.HeadObjectCommand({ Bucket: this.bucket, Key: this.key(p) }), { abortSignal: o?.signal });
        return { size: r.ContentLength ?? 0, modTime: r.LastModified ?? new Date(0), etag: r.ETag };
      });
    } catch (err) {
      if (err instanceof PathNotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * One GetObject, with a Range when a span is asked for (a blob GET always gives its length): no HEAD first. A
   * start at or past the end answers 416, and only then one HEAD tells an empty read at the end from an offset
   * past it (InvalidOffsetError); a zero length needs it at once (there is no empty Range).
   */
  async reader(p: string, o?: OpOptions & { offset?: number; length?: number }): Promise<Readable> {
    const span = readSpan(p, o, NAME);
    const length = o?.length;
    const atEnd = async (): Promise<Readable> => {
      const h = await this.head(p, o);
      if (!h) throw new PathNotFoundError(p, NAME);
      span.end(h.size);   // throws past the end
      return Readable.from([]);
    };
    if (length === 0) return atEnd();
    const range = span.offset !== 0 || length !== undefined
      ? `bytes=${span.offset}-${length !== undefined ? span.offset + length - 1 : ''}` : undefined;
    try {
      return await this.call(p, async (c) => {
        const body = await c.getObject({ Bucket: this.bucket, Key: this.key(p), Range: range }, { signal: o?.signal });
        return o?.signal ? addAbortSignal(o.signal, body) : body;
      });
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (range && (e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416)) return atEnd();
      throw err;
    }
  }

  async writer(p: string, o?: OpOptions & { append?: boolean; sizeHint?: number; from?: FileInfo }): Promise<FileWriter> {
    // What stat(p, { pending: true }) found for this operation saves asking again (StorageDriver.writer's `from`):
    // 3 requests a PATCH, more as the upload grows (ListParts lists every part so far). Used once.
    const seen = o?.append && o.from?.path === p ? this.found.get(o.from) : undefined;
    if (seen) this.found.delete(o!.from!);
    if (o?.append) {
      const pend = seen ? seen.pending : await this.pendingState(p, o);
      if (pend) {
        const prior = pend.tailSize > 0 ? await this.getContent(p + TAIL, o) : undefined;
        return new S3Writer(this, p, {
          base: pend.size, existed: true, prior, pending: { uploadId: pend.uploadId, parts: pend.parts, tail: pend.tailObject }, version: pend.version,
          expect: o.sizeHint,
        }, o?.signal);
      }
    }
    const h = o?.append ? (seen ? seen.object : await this.head(p, o)) : undefined;
    const prior = h && h.size > 0 && h.size < this.chunkSize ? await this.getContent(p, o) : undefined;
    return new S3Writer(this, p, {
      base: prior?.length ?? h?.size ?? 0, existed: !!h, prior, version: objectVersion(h?.etag), expect: o?.sizeHint,
    }, o?.signal);
  }

  /**
   * A closed, uncommitted writer at `p`: its multipart upload (the newest on the key, found by
   * ListMultipartUploads as Distribution finds it) with its parts, and its tail object; undefined when neither exists.
   */
  async pendingState(p: string, o?: OpOptions): Promise<PendingState | undefined> {
    const key = this.key(p);
    // An upload this process found or started before (the PATCHes of one session, on one replica): its parts are
    // listed at once, alongside the tail's HEAD, instead of finding it by ListMultipartUploads first. The store
    // answers NoSuchUpload when it was completed or aborted since (here or on another replica): then it is looked
    // up as below. (Another replica continues the same upload: it finds this one, the newest on the key.)
    const known = this.known.get(key);
    if (known) {
      const [tailHead, listed] = await Promise.all([
        this.headTail(p, o),
        this.listParts(p, key, known.uploadId, o).catch((err) => { if (err instanceof PathNotFoundError) return undefined; throw err; }),
      ]);
      if (listed) return pendingOf(tailHead, { UploadId: known.uploadId, Initiated: known.initiated }, listed);
      this.known.delete(key);
    }
    const [tailHead, uploads] = await Promise.all([
      this.headTail(p, o),
      this.call(p, (c) => c.client.send(new c.commands.ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key }), { abortSignal: o?.signal })),
    ]);
    const upload = (uploads.Uploads ?? []).filter((u) => u.Key === key)
      .sort((a, b) => (b.Initiated?.getTime() ?? 0) - (a.Initiated?.getTime() ?? 0))[0];
    if (!tailHead && !upload) return undefined;
    const listed = upload ? await this.listParts(p, key, upload.UploadId!, o) : [];
    if (upload) this.known.set(key, { uploadId: upload.UploadId!, initiated: upload.Initiated ?? new Date(0) });
    return pendingOf(tailHead, upload && { UploadId: upload.UploadId!, Initiated: upload.Initiated }, listed);
  }

  /** Every part of a multipart upload (ListParts, page by page); NoSuchUpload is PathNotFoundError. */
  private async listParts(p: string, key: string, UploadId: string, o?: OpOptions): Promise<ListedPart[]> {
    const parts: ListedPart[] = [];
    let marker: string | undefined;
    do {
      const r = await this.call(p, (c) => c.client.send(new c.commands.ListPartsCommand({
        Bucket: this.bucket, Key: key, UploadId, PartNumberMarker: marker,
      }), { abortSignal: o?.signal }));
      for (const part of r.Parts ?? []) parts.push({ PartNumber: part.PartNumber!, ETag: part.ETag!, Size: part.Size ?? 0, LastModified: part.LastModified });
      marker = r.IsTruncated ? r.NextPartNumberMarker : undefined;
    } while (marker);
    return parts;
  }

  /** The tail object of a closed writer at `p`: size, time and the part count it was written at (TAIL_PARTS). */
  private async headTail(p: string, o?: OpOptions): Promise<TailHead | undefined> {
    try {
      return await this.call(p, async (c) => {
        const r = await c.client.send(new c.commands.HeadObjectCommand({ Bucket: this.bucket, Key: this.key(p) + TAIL }), { abortSignal: o?.signal });
        const n = r.Metadata?.[TAIL_PARTS];
        return { size: r.ContentLength ?? 0, modTime: r.LastModified ?? new Date(0), parts: n !== undefined && /^\d+$/.test(n) ? Number(n) : undefined, etag: r.ETag };
      });
    } catch (err) {
      if (err instanceof PathNotFoundError) return undefined;
      throw err;
    }
  }

  async stat(p: string, o?: OpOptions & { pending?: boolean; file?: boolean }): Promise<FileInfo> {
    if (o?.pending) {
      const pend = await this.pendingState(p, o);
      if (pend) {
        const fi: FileInfo = { path: p, size: pend.size, modTime: pend.modTime, isDir: false, pending: true, version: pend.version };
        this.found.set(fi, { pending: pend });
        return fi;
      }
    }
    const h = await this.head(p, o);
    if (h && o?.pending) {
      const fi: FileInfo = { path: p, size: h.size, modTime: h.modTime, isDir: false, version: objectVersion(h.etag) };
      this.found.set(fi, { object: h });
      return fi;
    }
    if (h) return { path: p, size: h.size, modTime: h.modTime, isDir: false };
    if (o?.file) throw new PathNotFoundError(p, NAME);   // a directory is not asked for: no listing
    const r = await this.call(p, (c) => c.client.send(new c.commands.ListObjectsV2Command({
      Bucket: this.bucket, Prefix: this.key(p) + '/', MaxKeys: 1,
    }), { abortSignal: o?.signal }));
    if (!r.KeyCount) throw new PathNotFoundError(p, NAME);
    return { path: p, size: 0, modTime: new Date(0), isDir: true };
  }

  /** The direct children of directory `p` (files and subdirectories, names sorted); empty when none. */
  private async children(p: string, o?: OpOptions): Promise<FileInfo[]> {
    const prefix = this.dirPrefix(p);
    const out: FileInfo[] = [];
    let token: string | undefined;
    do {
      const r = await this.call(p, (c) => c.client.send(new c.commands.ListObjectsV2Command({
        Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token,
      }), { abortSignal: o?.signal }));
      for (const obj of r.Contents ?? []) {
        const name = obj.Key!.slice(prefix.length);
        if (isValidComponent(name)) out.push({ path: this.pathOf(obj.Key!), size: obj.Size ?? 0, modTime: obj.LastModified ?? new Date(0), isDir: false });
      }
      for (const cp of r.CommonPrefixes ?? []) {
        const name = cp.Prefix!.slice(prefix.length, -1);
        if (isValidComponent(name)) out.push({ path: this.pathOf(cp.Prefix!.slice(0, -1)), size: 0, modTime: new Date(0), isDir: true });
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => comparePaths(a.path, b.path) || Number(a.isDir) - Number(b.isDir));
  }

  async list(p: string, o?: OpOptions): Promise<string[]> {
    const kids = await this.children(p, o);
    if (kids.length === 0 && p !== '/') throw new PathNotFoundError(p, NAME);
    return [...new Set(kids.map((k) => k.path))];
  }

  async move(from: string, to: string, o?: OpOptions): Promise<void> {
    const h = await this.head(from, o);
    if (!h) throw new PathNotFoundError(from, NAME);
    if (from === to) return;
    if (isAncestor(from, to)) throw new InvalidPathError(to, NAME);
    const source = `${this.bucket}/${encodeURIComponent(this.key(from)).replaceAll('%2F', '/')}`;
    if (h.size <= this.params.multipartcopythresholdsize) {
      await this.call(from, (c) => c.client.send(new c.commands.CopyObjectCommand({
        Bucket: this.bucket, Key: this.key(to), CopySource: source, ...this.put,
      }), { abortSignal: o?.signal }));
    } else {
      await this.multipartCopy(source, to, h.size, o);
    }
    await this.call(from, (c) => c.client.send(new c.commands.DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(from) })));
  }

  /** Copies `size` bytes of `source` to `to` as a multipart upload of UploadPartCopy ranges (Distribution's
   *  move above multipartcopythresholdsize), at most multipartcopymaxconcurrency (capped at 16) at once. */
  private async multipartCopy(source: string, to: string, size: number, o?: OpOptions): Promise<void> {
    const ranges = copyRanges(size, this.params.multipartcopychunksize);
    const Key = this.key(to);
    const { UploadId } = await this.call(to, (c) => c.client.send(new c.commands.CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ...this.put })));
    try {
      const parts: { PartNumber: number; ETag: string }[] = new Array(ranges.length);
      let next = 0;
      const worker = async () => {
        while (next < ranges.length) {
          const i = next++;
          const [a, b] = ranges[i];
          const r = await this.call(to, (c) => c.client.send(new c.commands.UploadPartCopyCommand({
            Bucket: this.bucket, Key, UploadId, PartNumber: i + 1, CopySource: source, CopySourceRange: `bytes=${a}-${b - 1}`,
          }), { abortSignal: o?.signal }));
          parts[i] = { PartNumber: i + 1, ETag: r.CopyPartResult!.ETag! };
        }
      };
      await Promise.all(Array.from({ length: Math.min(ranges.length, this.params.multipartcopymaxconcurrency, 16) }, worker));
      await this.call(to, (c) => c.client.send(new c.commands.CompleteMultipartUploadCommand({
        Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts },
      })));
    } catch (err) {
      await this.call(to, (c) => c.client.send(new c.commands.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))).catch(() => {});
      throw err;
    }
  }

  /** Deletes every object at or under `p` (DeleteObjects, 1000 a batch) and aborts the multipart uploads there. */
  async delete(p: string, o?: OpOptions): Promise<void> {
    const key = this.key(p);
    const under = (k: string) => k === key || k === key + TAIL || k.startsWith(key + '/');
    // The objects and the multipart uploads under p are independent: one round trip to the store, not two in a row.
    const [objects, uploads] = await Promise.all([this.deleteObjects(p, under, o), this.abortUploads(p, under)]);
    if (objects + uploads === 0) throw new PathNotFoundError(p, NAME);
  }

  /** Deletes the objects whose key satisfies `match` under path `p`'s key; returns how many. */
  private async deleteObjects(p: string, match: (key: string) => boolean, o?: OpOptions): Promise<number> {
    const key = this.key(p);
    let found = 0;
    let token: string | undefined;
    do {
      const r = await this.call(p, (c) => c.client.send(new c.commands.ListObjectsV2Command({
        Bucket: this.bucket, Prefix: key, ContinuationToken: token,
      }), { abortSignal: o?.signal }));
      const keys = (r.Contents ?? []).map((c) => c.Key!).filter(match);
      found += keys.length;
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const d = await this.call(p, (c) => c.client.send(new c.commands.DeleteObjectsCommand({
          Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        })));
        const failed = (d.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (failed.length) throw new StorageDriverError('STORAGE_DELETE_FAILED', `delete ${p}: ${failed.length} objects not deleted (${failed[0].Code}: ${failed[0].Key})`, NAME);
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return found;
  }

  /** Aborts the multipart uploads whose key satisfies `match` under path `p`'s key; returns how many. */
  async abortUploads(p: string, match: (key: string) => boolean): Promise<number> {
    let n = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const r = await this.call(p, (c) => c.client.send(new c.commands.ListMultipartUploadsCommand({
        Bucket: this.bucket, Prefix: this.key(p), KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker,
      })));
      for (const u of r.Uploads ?? []) {
        if (!match(u.Key!)) continue;
        this.known.delete(u.Key!);
        await this.call(p, (c) => c.client.send(new c.commands.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key!, UploadId: u.UploadId! })))
          .catch((err) => { if (!(err instanceof PathNotFoundError)) throw err; });
        n++;
      }
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      uploadIdMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return n;
  }

  async redirectURL(p: string, method: 'GET' | 'HEAD'): Promise<string | null> {
    return this.call(p, (c) => {
      const input = { Bucket: this.bucket, Key: this.key(p) };
      return c.presign(method === 'GET' ? new c.commands.GetObjectCommand(input) : new c.commands.HeadObjectCommand(input), REDIRECT_EXPIRY_S);
    });
  }

  async *walk(p: string, o?: OpOptions & { startAfter?: string }): AsyncGenerator<FileInfo> {
    const kids = await this.children(p, o);
    if (kids.length === 0 && p !== '/') throw new PathNotFoundError(p, NAME);
    yield* this.walkKids(kids, o?.startAfter, o);
  }

  private async *walkKids(kids: FileInfo[], startAfter: string | undefined, o?: OpOptions): AsyncGenerator<FileInfo> {
    for (const fi of kids) {
      o?.signal?.throwIfAborted();
      if (startAfter !== undefined && comparePaths(fi.path, startAfter) <= 0) {
        if (fi.isDir && (fi.path === startAfter || isAncestor(fi.path, startAfter))) {
          yield* this.walkKids(await this.children(fi.path, o), startAfter, o);
        }
        continue;
      }
      yield fi;
      if (fi.isDir) yield* this.walkKids(await this.children(fi.path, o), undefined, o);
    }
  }
}

function clientParameters(p: S3Parameters): ClientParameters {
  let endpoint = p.regionendpoint || undefined;
  if (endpoint && !/^https?:\/\//.test(endpoint)) endpoint = `${p.secure ? 'https' : 'http'}://${endpoint}`;
  if (!endpoint && !p.secure) endpoint = `http://s3.${p.region}.amazonaws.com`;
  return {
    region: p.region!,
    endpoint,
    // Distribution 2.8 forces path style whenever regionendpoint is set; forcepathstyle (Distribution 3) overrides.
    forcePathStyle: p.forcepathstyle ?? !!p.regionendpoint,
    accessKey: p.accesskey || undefined,
    secretKey: p.secretkey || undefined,
    sessionToken: p.sessiontoken || undefined,
    skipVerify: p.skipverify,
    // Distribution's driver (the AWS SDK for Go) trusts the CAs of the PEM file AWS_CA_BUNDLE names for the store;
    // the AWS SDK for JavaScript does not read it, so berth does, for an https store only.
    caBundle: (endpoint === undefined || endpoint.startsWith('https:')) && !p.skipverify ? process.env.AWS_CA_BUNDLE || undefined : undefined,
    userAgent: p.useragent || undefined,
    // A small request gets half the call's time per attempt, so one retry fits (the defaults: 10 s of 20 s).
    timeouts: { call: p.requesttimeout * 1000, attempt: p.requesttimeout * 500, idle: p.idletimeout * 1000, connect: Math.min(S3_TIMEOUTS.connect, p.requesttimeout * 500) },
  };
}
