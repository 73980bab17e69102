// Small helpers over the StorageDriver for the core: "not found" detection by stable error code and
// existence checks. No registry logic, no layout knowledge (that is paths.ts).
import type { FileInfo, OpOptions, StorageDriver } from '../storage/driver.js';

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'STORAGE_PATH_NOT_FOUND';
}

/** Size of the file at path, or undefined when it does not exist. Other errors propagate. */
export async function sizeIfExists(driver: StorageDriver, path: string, o?: OpOptions & { pending?: boolean }): Promise<number | undefined> {
  return (await fileIfExists(driver, path, o))?.size;
}

/** stat() of a file, or undefined when it is missing or a directory. */
export async function fileIfExists(driver: StorageDriver, path: string, o?: OpOptions & { pending?: boolean }): Promise<FileInfo | undefined> {
  try {
    const fi = await driver.stat(path, { ...o, file: true });
    return fi.isDir ? undefined : fi;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function existsPath(driver: StorageDriver, path: string, o?: OpOptions): Promise<boolean> {
  try {
    await driver.stat(path, o);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Content of a small file, or undefined when it does not exist. */
export async function contentIfExists(driver: StorageDriver, path: string, o?: OpOptions): Promise<Buffer | undefined> {
  try {
    return await driver.getContent(path, o);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** delete() that treats a missing path as success. */
export async function deleteIfExists(driver: StorageDriver, path: string, o?: OpOptions): Promise<boolean> {
  try {
    await driver.delete(path, o);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
