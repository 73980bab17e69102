// Manifests of one repository (Distribution's manifestStore): exact bytes stored as a blob under
// blobs/<alg>/../data, visible through `_manifests/revisions/<alg>/<hex>/link`. Validates structure
// and that every referenced blob/child exists in THIS repository before anything is written; keeps
// the referrers index in step. Tag links are TagStore's; this file resolves, sets and removes them
// through it (a PUT by tag tags, a DELETE by digest untags), so handlers make one call per request.
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { linkTarget, type BlobStore } from './blob-store.js';
import { digestOf, tryParseDigest, type Digest } from './digest.js';
import { contentIfExists, deleteIfExists, sizeIfExists } from './driver-util.js';
import { DigestMismatchError, ManifestBlobUnknownError, ManifestUnknownError, NameUnknownError } from './errors.js';
import type { ManifestCache } from './manifest-cache.js';
import { parseManifestJson, storedMediaType, validateManifest, type Descriptor } from './manifest-validate.js';
import { assertTag } from './names.js';
import type { Policy } from './policy.js';
import type { ReferrersIndex } from './referrers.js';
import type { ManifestRef, Manifests, PutManifest, PutManifestResult, StoredManifest } from './repository.js';
import { repositoryExists, type TagStore } from './tag-store.js';

export class ManifestStore implements Manifests {
  constructor(
    private readonly driver: StorageDriver,
    readonly name: string,
    private readonly blobs: BlobStore,
    private readonly tags: TagStore,
    private readonly referrers: ReferrersIndex,
    private readonly cache: ManifestCache,
    private readonly policy: Policy,
  ) {}

  stat(ref: ManifestRef, o?: OpOptions): Promise<StoredManifest> {
    return this.nameKnown(async () => {
      const d = 'digest' in ref ? ref.digest : await this.tags.get(ref.tag, o);
      const m = await this.getByDigest(d, o);
      return 'tag' in ref ? { ...m, tag: ref.tag } : m;
    }, o);
  }

  get(ref: ManifestRef, o?: OpOptions): Promise<StoredManifest> {
    return this.stat(ref, o);
  }

  async put(m: PutManifest, o?: OpOptions): Promise<PutManifestResult> {
    for (const t of m.tags) assertTag(t);
    const put = await this.store(m.bytes, m.contentType, m.digest, o);
    for (const t of new Set(m.tags)) await this.tags.set(t, put.digest, o);
    return { ...put, size: m.bytes.length };
  }

  delete(ref: ManifestRef, o?: OpOptions): Promise<void> {
    this.policy.assertDeletable();
    return this.nameKnown(async () => {
      if ('tag' in ref) {
        await this.tags.delete(ref.tag, o);
        return;
      }
      if (!(await this.exists(ref.digest, o))) throw new ManifestUnknownError(ref.digest.text);
      for (const t of await this.tags.lookup(ref.digest, o)) {
        await this.tags.delete(t, o).catch((err) => { if (!(err instanceof ManifestUnknownError)) throw err; });
      }
      await this.deleteRevision(ref.digest, o);
    }, o);
  }

  /** Unknown manifest in a repository that does not exist at all → NameUnknownError (as Distribution). */
  private async nameKnown<T>(fn: () => Promise<T>, o?: OpOptions): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ManifestUnknownError && !(await repositoryExists(this.driver, this.name, o))) {
        throw new NameUnknownError(this.name);
      }
      throw err;
    }
  }

  /** True when d is a manifest revision of this repository (or, as Distribution ≥2.1, linked in _layers). */
  async exists(d: Digest, o?: OpOptions): Promise<boolean> {
    const path = pathFor({ kind: 'manifestRevisionLink', name: this.name, digest: d });
    return (await linkTarget(this.driver, path, d, o)) !== undefined || this.blobs.exists(d, o);
  }

  /** The exact stored bytes and their media type; ManifestUnknownError when not in this repository. */
  async getByDigest(d: Digest, o?: OpOptions): Promise<StoredManifest> {
    if (!(await this.exists(d, o))) throw new ManifestUnknownError(d.text);
    return { digest: d, ...(await this.load(d, o)) };
  }

  private async load(d: Digest, o?: OpOptions): Promise<{ bytes: Buffer; mediaType: string }> {
    const hit = this.cache.get(d.text);
    if (hit) return hit;
    const bytes = await contentIfExists(this.driver, pathFor({ kind: 'blobData', digest: d }), o);
    if (!bytes) throw new ManifestUnknownError(d.text);
    let mediaType: string;
    try {
      mediaType = storedMediaType(parseManifestJson(bytes));
    } catch {
      throw new ManifestUnknownError(d.text);   // not a manifest we can serve (e.g. a layer linked in _layers)
    }
    const v = { bytes, mediaType };
    this.cache.set(d.text, v);
    return v;
  }

  /**
   * Validates and stores a manifest. `expected` (PUT by digest) must equal the body's digest under
   * the same algorithm, else DigestMismatchError. Tags are not touched here.
   */
  private async store(bytes: Buffer, contentType: string | undefined, expected: Digest | undefined, o?: OpOptions): Promise<Omit<PutManifestResult, 'size'>> {
    const m = validateManifest(bytes, contentType);
    const digest = digestOf(bytes, expected?.algorithm ?? 'sha256');
    if (expected && expected.hex !== digest.hex) throw new DigestMismatchError(expected.text, digest.text);

    const checks: Promise<void>[] = [];
    const needBlob = (desc: Descriptor) => checks.push(this.blobs.exists(desc.digest, o).then((ok) => {
      if (!ok) throw new ManifestBlobUnknownError(desc.digest.text);
    }));
    if (m.config) needBlob(m.config);
    for (const l of m.layers) if (!l.urls?.length) needBlob(l);   // foreign layers are exempt
    for (const c of m.manifests) {
      checks.push(this.exists(c.digest, o).then((ok) => { if (!ok) throw new ManifestBlobUnknownError(c.digest.text); }));
    }
    const results = await Promise.allSettled(checks);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    const dataPath = pathFor({ kind: 'blobData', digest });
    if ((await sizeIfExists(this.driver, dataPath, o)) === undefined) await this.driver.putContent(dataPath, bytes, o);
    if (m.subject) await this.referrers.add(m.subject.digest, digest, o);
    await this.driver.putContent(pathFor({ kind: 'manifestRevisionLink', name: this.name, digest }), Buffer.from(digest.text), o);
    this.cache.set(digest.text, { bytes, mediaType: m.mediaType });
    return { digest, mediaType: m.mediaType, subject: m.subject?.digest };
  }

  /** Removes the revision link (bytes stay for GC) and, when it had a subject, its referrers entry. */
  private async deleteRevision(d: Digest, o?: OpOptions): Promise<void> {
    if (!(await this.exists(d, o))) throw new ManifestUnknownError(d.text);
    try {
      const { bytes } = await this.load(d, o);
      const subject = parseManifestJson(bytes).subject as { digest?: unknown } | undefined;
      const sd = typeof subject?.digest === 'string' ? tryParseDigest(subject.digest) : undefined;
      if (sd) await this.referrers.remove(sd, d, o);
    } catch (err) {
      if (!(err instanceof ManifestUnknownError)) throw err;
    }
    await deleteIfExists(this.driver, pathFor({ kind: 'manifestRevisionLink', name: this.name, digest: d }), o);
    await deleteIfExists(this.driver, pathFor({ kind: 'layerLink', name: this.name, digest: d }), o);
  }

  /** Loader for the referrers listing: only manifests still linked in this repository. */
  readonly loadLinked = (d: Digest, o?: OpOptions): Promise<StoredManifest> => this.getByDigest(d, o);
}
