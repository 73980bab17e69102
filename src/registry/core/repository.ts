// One repository's view of storage: blobs, uploads, manifests, tags and referrers, all scoped to a
// name that has already passed the spec grammar (Registry.repository checks it). No HTTP here.
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { BlobStore, type BlobDescriberDecorator } from './blob-store.js';
import { existsPath } from './driver-util.js';
import type { ManifestCache } from './manifest-cache.js';
import { ManifestStore } from './manifest-store.js';
import { ReferrersIndex } from './referrers.js';
import { TagStore } from './tag-store.js';
import { UploadStore, type UploadStates } from './upload.js';

export class Repository {
  readonly blobs: BlobStore;
  readonly uploads: UploadStore;
  readonly manifests: ManifestStore;
  readonly tags: TagStore;
  readonly referrers: ReferrersIndex;

  constructor(
    private readonly driver: StorageDriver, readonly name: string, states: UploadStates, cache: ManifestCache,
    describer?: BlobDescriberDecorator,
  ) {
    this.blobs = new BlobStore(driver, name, describer);
    this.uploads = new UploadStore(driver, name, states, this.blobs);
    this.tags = new TagStore(driver, name);
    this.referrers = new ReferrersIndex(driver, name);
    this.manifests = new ManifestStore(driver, name, this.blobs, this.referrers, cache);
  }

  /** True when anything was ever stored under the repository (its directory exists). */
  exists(o?: OpOptions): Promise<boolean> {
    return existsPath(this.driver, pathFor({ kind: 'repository', name: this.name }), o);
  }
}
