// Maps `registry.storage` to a driver, always wrapped by base.ts. Each driver validates its own
// parameters (StorageParameterError names the config key); this file must not add storage logic.
import type { StorageConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { StorageDriver } from './driver.js';
import { StorageParameterError, wrapDriver } from './base.js';
import { FilesystemDriver } from './drivers/filesystem.js';
import { InMemoryDriver } from './drivers/inmemory.js';

export { FilesystemDriver } from './drivers/filesystem.js';
export { InMemoryDriver } from './drivers/inmemory.js';
export { StorageParameterError, wrapDriver } from './base.js';

type Constructor = (storage: StorageConfig, log?: Logger) => StorageDriver;

const DRIVERS: Record<StorageConfig['driver'], Constructor> = {
  filesystem: (s, log) => {
    const rootdirectory = s.filesystem?.rootdirectory ?? '/var/lib/registry';
    return new FilesystemDriver({
      rootdirectory,
      maxthreads: s.filesystem?.maxthreads,
      directio: s.filesystem?.directio,
      onDirectIoRefused: (err, op) => log?.warn({ err, op, rootdirectory },
        'the filesystem refused O_DIRECT: upload data and large reads go through the page cache from now on '
        + '(set registry.storage.filesystem.directio: false to say so in the config)'),
    });
  },
  inmemory: () => new InMemoryDriver(),
};

/** The driver named by `storage.driver`, wrapped (path checks, error stamping, debug timing). */
export function createDriver(storage: StorageConfig, log?: Logger): StorageDriver {
  const make = Object.hasOwn(DRIVERS, storage?.driver) ? DRIVERS[storage.driver] : undefined;
  if (!make) {
    throw new StorageParameterError('registry.storage',
      `unknown storage driver ${JSON.stringify(storage?.driver)}; expected one of: ${Object.keys(DRIVERS).join(', ')}`);
  }
  return wrapDriver(make(storage, log), log);
}
