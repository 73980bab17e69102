// createDriver and wrapDriver: parameter errors name the config key, the wrapper logs each call.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { StorageConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { comparePaths, isValidPath } from '../../src/registry/storage/base.js';
import { createDriver, FilesystemDriver, InMemoryDriver, wrapDriver } from '../../src/registry/storage/factory.js';
import { makeTempDir } from '../support/tmp.js';

const base = (over: Partial<StorageConfig>): StorageConfig => ({
  driver: 'inmemory',
  delete: { enabled: false },
  maintenance: { uploadpurging: { enabled: false, age: 0, interval: 1, dryrun: false }, readonly: { enabled: false } },
  redirect: { disable: false },
  ...over,
});

const paramError = (key: string) => (err: any) => {
  assert.equal(err.code, 'STORAGE_INVALID_PARAMETER');
  assert.equal(err.key, key);
  return true;
};

describe('createDriver', () => {
  it('builds the named driver, wrapped', async (t) => {
    const tmp = await makeTempDir('berth-factory');
    t.after(() => tmp.cleanup());
    const fs = createDriver(base({ driver: 'filesystem', filesystem: { rootdirectory: tmp.path, maxthreads: 100 } }));
    assert.equal(fs.name, 'filesystem');
    await fs.putContent('/x/y', Buffer.from('z'));
    assert.equal((await fs.getContent('/x/y')).toString(), 'z');
    await assert.rejects(fs.getContent('/../etc/passwd'), (e: any) => e.code === 'STORAGE_INVALID_PATH' && e.driver === 'filesystem');
    assert.equal(createDriver(base({ driver: 'inmemory' })).name, 'inmemory');
  });

  it('reports bad parameters by config key', () => {
    assert.throws(() => createDriver(base({ driver: 'filesystem', filesystem: { rootdirectory: 'relative/dir', maxthreads: 100 } })),
      paramError('registry.storage.filesystem.rootdirectory'));
    assert.throws(() => createDriver(base({ driver: 'filesystem', filesystem: { rootdirectory: '', maxthreads: 100 } })),
      paramError('registry.storage.filesystem.rootdirectory'));
    assert.throws(() => createDriver(base({ driver: 'filesystem', filesystem: { rootdirectory: '/srv', maxthreads: 3 } })),
      paramError('registry.storage.filesystem.maxthreads'));
    assert.throws(() => createDriver(base({ driver: 's3' as any })), paramError('registry.storage'));
    assert.throws(() => new FilesystemDriver({} as any), paramError('registry.storage.filesystem.rootdirectory'));
  });
});

describe('wrapDriver', () => {
  it('logs each call at debug with the driver name and duration', async () => {
    const lines: any[] = [];
    const dest = new Writable({ write(c, _e, cb) { lines.push(JSON.parse(String(c))); cb(); } });
    const d = wrapDriver(new InMemoryDriver(), createLogger({ level: 'debug', destination: dest }));
    await d.putContent('/a', Buffer.from('1'));
    await d.stat('/missing').catch(() => {});
    for await (const _ of d.walk('/')) { /* drain */ }
    const ops = lines.map((l) => [l.module, l.driver, l.op, typeof l.durationMs]);
    assert.deepEqual(ops, [
      ['storage', 'inmemory', 'putContent', 'number'],
      ['storage', 'inmemory', 'stat', 'number'],
      ['storage', 'inmemory', 'walk', 'number'],
    ]);
  });

  it('path rules and walk order helpers', () => {
    for (const ok of ['/a', '/a/b.c/_d-e', '/...', '/' + 'x'.repeat(255)]) assert.equal(isValidPath(ok), true, ok);
    for (const bad of ['/', '', '/a/', '/./a', '/a/..', '/a b', '/' + 'x'.repeat(256)]) assert.equal(isValidPath(bad), false, bad);
    assert.equal(isValidPath('/', true), true);
    const sorted = ['/a-b', '/a', '/a/z', '/b'].sort(comparePaths);
    assert.deepEqual(sorted, ['/a', '/a/z', '/a-b', '/b']);
  });
});
