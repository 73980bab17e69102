// Creates storage drivers by name (Distribution's factory.Create), always wrapped by base.ts, from the
// drivers registered in registration.ts; importing this file registers the built-in ones. Each driver
// checks its own parameters; this file adds no storage logic and must not import config (config reads
// driverNames() and driverParameters() to validate registry.storage).
import type { Logger } from '../../log/logger.js';
import type { StorageDriver } from './driver.js';
import { StorageParameterError, wrapDriver } from './base.js';
import type { ParameterSpec } from './parameters.js';
import { registeredDriver, registeredNames, type DriverRegistration } from './registration.js';
// The built-in drivers: each registers itself when imported (as Distribution's blank imports do).
import './drivers/filesystem.js';
import './drivers/inmemory.js';
import './drivers/s3.js';

export { FilesystemDriver } from './drivers/filesystem.js';
export { InMemoryDriver } from './drivers/inmemory.js';
export { StorageParameterError, wrapDriver } from './base.js';
export { registerDriver, type DriverRegistration } from './registration.js';
export type { ParameterKind, ParameterSpec, ParameterValue } from './parameters.js';
export { checkParameter } from './parameters.js';

/**
 * The driver registered as `name`, built from `params` (`registry.storage.<name>`: a plain map, values
 * may be strings as from REGISTRY_* variables) and wrapped (path checks, error stamping, debug timing).
 * Throws StorageParameterError: key `registry.storage` for an unknown name (listing the registered
 * ones), `registry.storage.<name>.<parameter>` for a bad parameter.
 */
export function createDriver(name: string, params: Readonly<Record<string, unknown>>, log?: Logger): StorageDriver {
  return wrapDriver(registration(name).create(params, log), log);
}

/** The registered driver names, sorted. */
export function driverNames(): string[] {
  return registeredNames();
}

/** The parameter table of driver `name` (what `registry.storage.<name>` accepts), or undefined when no such driver. */
export function driverParameters(name: string): readonly ParameterSpec[] | undefined {
  return registeredDriver(name)?.parameters;
}

/**
 * The local directory driver `name` keeps its data in (filesystem: rootdirectory), for files that belong
 * beside it such as the notifications journal; undefined when the driver keeps none. Throws as createDriver.
 */
export function dataDirectory(name: string, params: Readonly<Record<string, unknown>>): string | undefined {
  return registration(name).dataDirectory?.(params);
}

/** What the store says about driver `name`'s parameters (wrong credentials, a missing bucket), for serve and
 *  check-config; undefined when the driver has no such check, the store accepts them, or it cannot be reached. */
export async function checkStore(name: string, params: Readonly<Record<string, unknown>>): Promise<{ key: string; message: string } | undefined> {
  return registration(name).check?.(params);
}

function registration(name: string): DriverRegistration {
  const r = typeof name === 'string' ? registeredDriver(name) : undefined;
  if (!r) {
    throw new StorageParameterError('registry.storage',
      `unknown storage driver ${JSON.stringify(name)}; expected one of: ${registeredNames().join(', ')}`);
  }
  return r;
}
