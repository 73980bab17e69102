// Runs the storage driver conformance suite against every driver that runs without services:
// inmemory and filesystem (on a real temp dir). S3 joins when its issue lands.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FilesystemDriver } from '../../src/registry/storage/drivers/filesystem.js';
import { InMemoryDriver } from '../../src/registry/storage/drivers/inmemory.js';
import { runDriverSuite } from '../support/suites/driver-suite.js';
import { makeTempDir } from '../support/tmp.js';

/** Every entry under `root`, hidden temp files included, as driver paths ("/a/b"). */
async function rawEntries(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const entries = await readdir(root, { recursive: true });
  return entries.map((e) => '/' + e.split('\\').join('/'));
}

runDriverSuite('inmemory', async () => ({ driver: new InMemoryDriver(), cleanup: async () => {} }));

runDriverSuite('filesystem', async () => {
  const tmp = await makeTempDir('berth-fs-driver');
  const root = join(tmp.path, 'root');   // not created yet: the driver creates what it needs
  return {
    driver: new FilesystemDriver({ rootdirectory: root }),
    rawEntries: () => rawEntries(root),
    cleanup: async () => {
      await tmp.cleanup();
      assert.equal(existsSync(tmp.path), false, 'temp dir removed');
    },
  };
});
