// Repository-scoped blob access (Distribution's linkedBlobStore for `_layers`): a blob is visible in
// a repository only through its `_layers/<alg>/<hex>/link`, and only while the content-addressed
// data exists. Deleting unlinks; blob data is never removed here (that is GC's job).
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { tryParseDigest, type Digest } from './digest.js';
import { contentIfExists, deleteIfExists, sizeIfExists } from './driver-util.js';
import { BlobUnknownError } from './errors.js';

export interface BlobDescriptor { digest: Digest; size: number }

/** Answers "is blob d linked in this repository, and what is it" (Distribution's BlobDescriptorService). */
export interface BlobDescriber {
  /** The descriptor; throws BlobUnknownError when d is not linked here (or its data is gone). */
  stat(d: Digest, o?: OpOptions): Promise<BlobDescriptor>;
  /** Called after the repository's link for d was removed: forget what was remembered. Never rejects. */
  forget(d: Digest): Promise<void>;
}

/** Wraps one repository's describer (e.g. with a descriptor cache, see registry/cache/). */
export type BlobDescriberDecorator = (backend: BlobDescriber, repo: string) => BlobDescriber;

export class BlobStore {
  private readonly describer: BlobDescriber;

  constructor(private readonly driver: StorageDriver, readonly name: string, decorate?: BlobDescriberDecorator) {
    const backend: BlobDescriber = { stat: (d, o) => this.statLink(d, o), forget: async () => {} };
    this.describer = decorate ? decorate(backend, name) : backend;
  }

  /** Path of the content-addressed bytes (for readers and redirects). */
  dataPath(d: Digest): string {
    return pathFor({ kind: 'blobData', digest: d });
  }

  /** Descriptor of a blob linked into this repository; throws BlobUnknownError otherwise. */
  stat(d: Digest, o?: OpOptions): Promise<BlobDescriptor> {
    return this.describer.stat(d, o);
  }

  /** Drops anything a decorator remembers about d here (after a link was removed elsewhere). */
  forget(d: Digest): Promise<void> {
    return this.describer.forget(d);
  }

  /** The storage answer, never cached. */
  private async statLink(d: Digest, o?: OpOptions): Promise<BlobDescriptor> {
    const link = await contentIfExists(this.driver, pathFor({ kind: 'layerLink', name: this.name, digest: d }), o);
    // The link names the canonical digest; Distribution trusts it. A garbled link means "unknown".
    const target = link && tryParseDigest(link.toString('utf8').trim());
    if (!target) throw new BlobUnknownError(d.text);
    const size = await sizeIfExists(this.driver, this.dataPath(target), o);
    if (size === undefined) throw new BlobUnknownError(d.text);
    return { digest: target, size };
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

  /** Removes the repository's link; throws BlobUnknownError when it was not linked. */
  async unlink(d: Digest, o?: OpOptions): Promise<void> {
    try {
      await this.statLink(d, o);
      const linkPath = pathFor({ kind: 'layerLink', name: this.name, digest: d });
      // Distribution deletes the link file's directory content; we delete the link file itself.
      if (!(await deleteIfExists(this.driver, linkPath, o))) throw new BlobUnknownError(d.text);
    } finally {
      await this.describer.forget(d);
    }
  }
}

/** Size of content-addressed blob data regardless of any repository, or undefined. */
export function globalBlobSize(driver: StorageDriver, d: Digest, o?: OpOptions): Promise<number | undefined> {
  return sizeIfExists(driver, pathFor({ kind: 'blobData', digest: d }), o);
}
