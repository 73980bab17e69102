// The registry core's entry point: owns the driver, the process-wide upload state (running hashes,
// locks) and the manifest cache, and hands out name-checked Repository views and the catalog.
// Policy switches (deletes, read-only) live here so api/ asks one place.
import type { OpOptions, StorageDriver } from '../storage/driver.js';
import type { BlobDescriberDecorator } from './blob-store.js';
import { listRepositories } from './catalog.js';
import { OperationUnsupportedError } from './errors.js';
import { ManifestCache } from './manifest-cache.js';
import { assertName } from './names.js';
import { Repository } from './repository.js';
import { UploadStates } from './upload.js';

export interface RegistryOptions {
  deleteEnabled: boolean;
  readonly: boolean;
  /** Bytes of manifest content kept in memory (LRU by digest); 0 disables. Default 32 MiB. */
  manifestCacheBytes?: number;
  /** Wraps every repository's blob lookups, e.g. the blob-descriptor cache (registry/cache/). */
  blobDescriber?: BlobDescriberDecorator;
}

export class Registry {
  readonly uploadStates = new UploadStates();
  private readonly cache: ManifestCache;

  constructor(readonly driver: StorageDriver, readonly opts: RegistryOptions) {
    const bytes = opts.manifestCacheBytes ?? 32 << 20;
    this.cache = new ManifestCache(bytes, bytes === 0 ? -1 : 256 << 10);
  }

  /** A repository view; throws NameInvalidError for names outside the spec grammar. */
  repository(name: string): Repository {
    assertName(name);
    return new Repository(this.driver, name, this.uploadStates, this.cache, this.opts.blobDescriber);
  }

  catalog(n: number, last: string | undefined, o?: OpOptions): Promise<{ names: string[]; more: boolean }> {
    return listRepositories(this.driver, { n, last }, o);
  }

  assertWritable(): void {
    if (this.opts.readonly) throw new OperationUnsupportedError('registry is in read-only mode');
  }

  assertDeletable(): void {
    this.assertWritable();
    if (!this.opts.deleteEnabled) throw new OperationUnsupportedError('deletes are disabled');
  }
}
