// Real temp directories for tests: one fresh directory under os.tmpdir() per call.
// It must not share directories between tests; each caller removes its own with cleanup().
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  /** Absolute path of the new, empty directory. */
  path: string;
  /** Removes the directory and everything in it; safe to call twice. */
  cleanup(): Promise<void>;
}

export async function makeTempDir(prefix = 'berth-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true, maxRetries: 3 }) };
}
