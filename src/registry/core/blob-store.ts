// Repository-scoped blob access (Distribution's linkedBlobStore for `_layers`): a blob is visible in a
// repository only through its `_layers/<alg>/<hex>/link`, and only while the content-addressed data
// exists. Bytes are opened here, never by callers' paths. Deleting unlinks; blob data is never removed
// here (that is GC's job). Caching of lookups is a decorator's business (registry/cache/), not this file's.
import type { Readable } from 'node:stream';
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { tryParseDigest, type Digest } from './digest.js';
import { contentIfExists, deleteIfExists, fileIfExists, sizeIfExists } from './driver-util.js';
import { BlobUnknownError } from './errors.js';
import { isValidName } from './names.js';
import type { Policy } from './policy.js';
import type { BlobContent, BlobDescriptor, Blobs } from './repository.js';

export class BlobStore implements Blobs {
  constructor(private readonly driver: StorageDriver, readonly name: string, private readonly policy: Policy) {}

  /** The storage answer, from the link and the data's size. */
  async stat(d: Digest, o?: OpOptions): Promise<BlobDescriptor> {
    const linkPath = pathFor({ kind: 'layerLink', name: this.name, digest: d });
    if (linkNamesItself(d)) {
      // The link and the data are asked for side by side: one round trip to an object store instead of two, and
      // a HEAD instead of a GET (on an object store a GET answers with a body, a 404 with an XML one).
      const [link, size] = await Promise.all([
        fileIfExists(this.driver, linkPath, o), sizeIfExists(this.driver, blobDataPath(d), o),
      ]);
      if (!link || size === undefined) throw new BlobUnknownError(d.text);
      return { digest: d, size };
    }
    const target = await linkTarget(this.driver, linkPath, d, o);
    if (!target) throw new BlobUnknownError(d.text);
    const size = await sizeIfExists(this.driver, blobDataPath(target), o);
    if (size === undefined) throw new BlobUnknownError(d.text);
    return { digest: target, size };
  }

  async get(d: Digest, o?: OpOptions): Promise<BlobContent> {
    return this.content(await this.stat(d, o));
  }

  /** Byte access for a descriptor this repository's stat() returned (never for one from elsewhere). */
  private content(descriptor: BlobDescriptor): BlobContent {
    const path = blobDataPath(descriptor.digest);
    const driver = this.driver;
    return {
      descriptor,
      redirectURL: () => driver.redirectURL(path, 'GET'),
      open(span, o): Promise<Readable> {
        return driver.reader(path, { offset: span?.offset ?? 0, length: span?.length ?? descriptor.size, signal: o?.signal });
      },
    };
  }

  async mount(from: string, d: Digest, o?: OpOptions): Promise<BlobDescriptor | undefined> {
    if (!isValidName(from)) return undefined;
    let desc: BlobDescriptor;
    try {
      desc = await new BlobStore(this.driver, from, this.policy).stat(d, o);
    } catch (err) {
      if (err instanceof BlobUnknownError) return undefined;
      throw err;
    }
    await this.link(desc.digest, o);
    return desc;
  }

  async delete(d: Digest, o?: OpOptions): Promise<void> {
    this.policy.assertDeletable();
    await this.stat(d, o);
    // Distribution deletes the link file's directory content; we delete the link file itself.
    if (!(await deleteIfExists(this.driver, pathFor({ kind: 'layerLink', name: this.name, digest: d }), o))) {
      throw new BlobUnknownError(d.text);
    }
  }

  async exists(d: Digest, o?: OpOptions): Promise<boolean> {
    try {
      await this.stat(d, o);
      return true;
    } catch (err) {
      if (err instanceof BlobUnknownError) return false;
      throw err;
    }
  }

  /** Links existing blob data into this repository (idempotent, atomic putContent). */
  async link(d: Digest, o?: OpOptions): Promise<void> {
    await this.driver.putContent(pathFor({ kind: 'layerLink', name: this.name, digest: d }), Buffer.from(d.text), o);
  }
}

/**
 * Whether a link at d's path can only name d itself, so that it need not be read. Distribution's linkBlob writes
 * the canonical (sha256) digest of the content at the path of every digest the client gave for it: at a sha256
 * path that is the path's own digest; only a link at another algorithm's path may name a different digest
 * (registry/storage/linkedblobstore.go). berth writes the path's own digest always.
 */
function linkNamesItself(d: Digest): boolean {
  return d.algorithm === 'sha256';
}

/** The digest the link at `path` (d's link) names, or undefined when there is no link (or a garbled one: "unknown",
 *  as before). A link that names itself (linkNamesItself) is only HEADed. */
export async function linkTarget(driver: StorageDriver, path: string, d: Digest, o?: OpOptions): Promise<Digest | undefined> {
  if (linkNamesItself(d)) return (await fileIfExists(driver, path, o)) ? d : undefined;
  const link = await contentIfExists(driver, path, o);
  return (link && tryParseDigest(link.toString('utf8').trim())) || undefined;
}

/** Path of the content-addressed bytes. */
export function blobDataPath(d: Digest): string {
  return pathFor({ kind: 'blobData', digest: d });
}
