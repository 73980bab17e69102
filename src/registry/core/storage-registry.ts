// The Registry and Repository implementations on a StorageDriver (Distribution's storage.registry): owns
// the driver, the process-wide upload state (running hashes, locks), the manifest cache and the write
// policy, and hands out name-checked repositories with every configured decorator applied.
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import { BlobStore } from './blob-store.js';
import { listCatalog } from './catalog.js';
import type { Digest } from './digest.js';
import { ManifestCache } from './manifest-cache.js';
import { ManifestStore } from './manifest-store.js';
import { assertName } from './names.js';
import { Policy } from './policy.js';
import { listReferrers, ReferrersIndex } from './referrers.js';
import type { CatalogOptions, Referrers, Registry, Repository, RepositoryDecorator } from './repository.js';
import { TagStore } from './tag-store.js';
import { UploadStates, UploadStore } from './upload.js';

export interface StorageRegistryOptions {
  deleteEnabled: boolean;
  readonly: boolean;
  /** Bytes of manifest content kept in memory (LRU by digest); 0 disables. Default 32 MiB. */
  manifestCacheBytes?: number;
  /** Wrap every repository handed out, first = innermost (e.g. the descriptor cache, then notifications). */
  decorators?: readonly RepositoryDecorator[];
}

export class StorageRegistry implements Registry {
  private readonly uploadStates = new UploadStates();
  private readonly cache: ManifestCache;
  private readonly policy: Policy;
  private readonly decorators: readonly RepositoryDecorator[];

  constructor(private readonly driver: StorageDriver, opts: StorageRegistryOptions) {
    const bytes = opts.manifestCacheBytes ?? 32 << 20;
    this.cache = new ManifestCache(bytes, bytes === 0 ? -1 : 256 << 10);
    this.policy = new Policy({ readonly: opts.readonly, deleteEnabled: opts.deleteEnabled });
    this.decorators = opts.decorators ?? [];
  }

  repository(name: string): Repository {
    assertName(name);
    let repo: Repository = new StorageRepository(this.driver, name, this.uploadStates, this.cache, this.policy);
    for (const decorate of this.decorators) repo = decorate(repo);
    return repo;
  }

  catalog(n: number, last: string | undefined, o?: CatalogOptions): Promise<{ names: string[]; more: boolean }> {
    return listCatalog(this.driver, { n, last, filter: o?.filter }, o);   // Distribution's walk (_layers), order and pages
  }

  assertWritable(): void {
    this.policy.assertWritable();
  }

  /** Waits for the housekeeping that runs after responses (a committed upload session's removal). */
  settled(): Promise<void> {
    return this.uploadStates.idle();
  }
}

class StorageRepository implements Repository {
  readonly blobs: BlobStore;
  readonly uploads: UploadStore;
  readonly manifests: ManifestStore;
  readonly tags: TagStore;
  readonly referrers: Referrers;

  constructor(driver: StorageDriver, readonly name: string, states: UploadStates, cache: ManifestCache, policy: Policy) {
    this.blobs = new BlobStore(driver, name, policy);
    this.uploads = new UploadStore(driver, name, states, this.blobs);
    this.tags = new TagStore(driver, name);
    const index = new ReferrersIndex(driver, name);
    const manifests = new ManifestStore(driver, name, this.blobs, this.tags, index, cache, policy);
    this.manifests = manifests;
    this.referrers = {
      list: (subject: Digest, artifactType: string | undefined, o?: OpOptions) =>
        listReferrers(index, subject, artifactType, manifests.loadLinked, o),
    };
  }
}
