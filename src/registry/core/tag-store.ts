// Tags of one repository, on Distribution's layout: `_manifests/tags/<tag>/current/link` names the
// manifest digest and `index/<alg>/<hex>/link` records every digest the tag pointed at. Writes use
// atomic putContent, so concurrent pushes of one tag leave one winner, never a torn link.
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { tryParseDigest, type Digest } from './digest.js';
import { contentIfExists, deleteIfExists, existsPath, isNotFound } from './driver-util.js';
import { ManifestUnknownError, NameUnknownError } from './errors.js';
import { isValidTag } from './names.js';
import type { Tags } from './repository.js';

/** Tag links of one repository; the Tags interface (list) plus what ManifestStore needs (get/set/delete/lookup). */
export class TagStore implements Tags {
  constructor(private readonly driver: StorageDriver, readonly name: string) {}

  /** The digest a tag points at; ManifestUnknownError when the tag does not exist. */
  async get(tag: string, o?: OpOptions): Promise<Digest> {
    const link = await contentIfExists(this.driver, pathFor({ kind: 'manifestTagCurrent', name: this.name, tag }), o);
    const d = link && tryParseDigest(link.toString('utf8').trim());
    if (!d) throw new ManifestUnknownError(tag);
    return d;
  }

  /**
   * Points tag at d: current first, then the index entry. Distribution writes them the other way round, so a
   * store failing between the two leaves a tag that the tag list shows and a GET does not find; in this order
   * such a failure leaves a working tag without its (history-only) index entry, which the client's retry writes.
   */
  async set(tag: string, d: Digest, o?: OpOptions): Promise<void> {
    const content = Buffer.from(d.text);
    await this.driver.putContent(pathFor({ kind: 'manifestTagCurrent', name: this.name, tag }), content, o);
    await this.driver.putContent(pathFor({ kind: 'manifestTagIndexEntry', name: this.name, tag, digest: d }), content, o);
  }

  /** Removes a tag; ManifestUnknownError when it does not exist. */
  async delete(tag: string, o?: OpOptions): Promise<void> {
    if (!(await deleteIfExists(this.driver, pathFor({ kind: 'manifestTag', name: this.name, tag }), o))) {
      throw new ManifestUnknownError(tag);
    }
  }

  /** Tag names in lexical order; NameUnknownError when the repository does not exist at all. */
  async list(o?: OpOptions): Promise<string[]> {
    const all = await this.names(o);
    if (all.length === 0 && !(await repositoryExists(this.driver, this.name, o))) throw new NameUnknownError(this.name);
    return all;
  }

  /** All tag names in lexical order; [] when the repository has none. */
  private async names(o?: OpOptions): Promise<string[]> {
    let paths: string[];
    try {
      paths = await this.driver.list(pathFor({ kind: 'manifestTagsRoot', name: this.name }), o);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const tags: string[] = [];
    for (const p of paths) {
      const t = p.slice(p.lastIndexOf('/') + 1);
      if (isValidTag(t)) tags.push(t);
    }
    return tags.sort(cmp);
  }

  /** Tags whose current link names d (Distribution's tagStore.Lookup). */
  async lookup(d: Digest, o?: OpOptions): Promise<string[]> {
    const out: string[] = [];
    for (const tag of await this.names(o)) {
      try {
        if ((await this.get(tag, o)).text === d.text) out.push(tag);
      } catch (err) {
        if (!(err instanceof ManifestUnknownError)) throw err;
      }
    }
    return out;
  }
}

/** Byte-wise (code unit) lexical order, as the spec's tag and catalog lists use. */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** True when anything was ever stored under the repository (its directory exists). */
export function repositoryExists(driver: StorageDriver, name: string, o?: OpOptions): Promise<boolean> {
  return existsPath(driver, pathFor({ kind: 'repository', name }), o);
}
