// The table of storage drivers (Distribution's storage/driver/factory): each driver module registers
// its name, its parameter table and its constructor when it is imported. It must not import any
// driver (they import it); factory.ts imports the built-in ones and is what callers use.
import type { Logger } from '../../log/logger.js';
import type { StorageDriver } from './driver.js';
import type { ParameterSpec } from './parameters.js';

export interface DriverRegistration {
  /** What the driver accepts under `registry.storage.<name>`: config validates, defaults and resolves with it. */
  readonly parameters: readonly ParameterSpec[];
  /**
   * Builds the driver from a plain parameter map (values may be strings, as from REGISTRY_* variables),
   * checking it against `parameters`: StorageParameterError names the config key. Not wrapped (createDriver wraps).
   */
  create(params: Readonly<Record<string, unknown>>, log?: Logger): StorageDriver;
  /** The local directory the driver keeps its data in, for files that belong beside it (the notifications
   *  journal); absent or undefined when the data is not in a local directory. */
  dataDirectory?(params: Readonly<Record<string, unknown>>): string | undefined;
  /** Asks the store whether it accepts these parameters (credentials, bucket), reading only: a problem at
   *  `registry.storage.<name>.<key>`, or undefined when it accepts them or cannot be reached (checked elsewhere). */
  check?(params: Readonly<Record<string, unknown>>): Promise<{ key: string; message: string } | undefined>;
}

const drivers = new Map<string, DriverRegistration>();

/**
 * Registers a driver under `name`: lower case as config keys are, and no "_" (REGISTRY_* variable names
 * split at it). A name registered twice is a programming error.
 */
export function registerDriver(name: string, registration: DriverRegistration): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`storage driver name ${JSON.stringify(name)}: lower-case letters, digits and - only`);
  if (drivers.has(name)) throw new Error(`storage driver "${name}" is registered twice`);
  drivers.set(name, registration);
}

/** The registration of `name`, or undefined. */
export function registeredDriver(name: string): DriverRegistration | undefined {
  return drivers.get(name);
}

/** The registered names, sorted (messages list them in this order). */
export function registeredNames(): string[] {
  return [...drivers.keys()].sort();
}
