// The driver registry and createDriver: drivers register themselves with a parameter table, createDriver
// builds them by name from a plain map (strings accepted, as from REGISTRY_* variables) and wraps them,
// and every parameter error is a StorageParameterError naming the config key. Also wrapDriver's logging.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log/logger.js';
import { comparePaths, isValidPath } from '../../src/registry/storage/base.js';
import { logDirectIoRefused } from '../../src/registry/storage/drivers/filesystem.js';
import {
  createDriver, dataDirectory, driverNames, driverParameters, FilesystemDriver, InMemoryDriver, registerDriver,
  StorageParameterError, wrapDriver,
} from '../../src/registry/storage/factory.js';
import { makeTempDir } from '../support/tmp.js';

/** A StorageParameterError for `key` whose message matches `message`. */
const paramError = (key: string, message?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof StorageParameterError, `expected a StorageParameterError, got ${String(err)}`);
  assert.equal(err.code, 'STORAGE_INVALID_PARAMETER');
  assert.equal(err.key, key);
  if (message) assert.match(err.message, message);
  return true;
};

/** Log lines written as JSON to a stream, parsed. */
function captureLog(level = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({ write(c, _e, cb) { lines.push(JSON.parse(String(c))); cb(); } });
  return { lines, log: createLogger({ level, destination: dest }) };
}

describe('createDriver', () => {
  it('builds the named driver, wrapped', async (t) => {
    const tmp = await makeTempDir('berth-factory');
    t.after(() => tmp.cleanup());
    const fs = createDriver('filesystem', { rootdirectory: tmp.path, maxthreads: 100 });
    assert.equal(fs.name, 'filesystem');
    await fs.putContent('/x/y', Buffer.from('z'));
    assert.equal((await fs.getContent('/x/y')).toString(), 'z');
    await assert.rejects(fs.getContent('/../etc/passwd'), (e: { code?: string; driver?: string }) => e.code === 'STORAGE_INVALID_PATH' && e.driver === 'filesystem');
    assert.equal(createDriver('inmemory', {}).name, 'inmemory');
  });

  it('accepts integers and booleans given as strings, as Distribution does for environment values', async (t) => {
    const tmp = await makeTempDir('berth-factory');
    t.after(() => tmp.cleanup());
    for (const params of [{ maxthreads: '50', directio: 'false' }, { maxthreads: '+25', directio: 'TRUE' }, { directio: '0' }, { directio: 't' }]) {
      const d = createDriver('filesystem', { rootdirectory: tmp.path, ...params });
      await d.putContent('/a', Buffer.from('1'));
      assert.equal((await d.getContent('/a')).toString(), '1', JSON.stringify(params));
    }
  });

  it('reports bad parameters by config key', () => {
    const fs = (p: Record<string, unknown>) => () => createDriver('filesystem', { rootdirectory: '/srv', ...p });
    assert.throws(fs({ rootdirectory: 'relative/dir' }),
      paramError('registry.storage.filesystem.rootdirectory', /expected an absolute path, found "relative\/dir"/));
    assert.throws(fs({ rootdirectory: '' }), paramError('registry.storage.filesystem.rootdirectory', /expected a non-empty path, found ""/));
    assert.throws(() => createDriver('filesystem', {}),
      paramError('registry.storage.filesystem.rootdirectory', /required \(the default \.\/data is relative to a config file\)/));
    assert.throws(fs({ maxthreads: 3 }), paramError('registry.storage.filesystem.maxthreads', /expected an integer ≥ 25, found number 3$/));
    assert.throws(fs({ maxthreads: '3' }), paramError('registry.storage.filesystem.maxthreads', /expected an integer ≥ 25, found "3"$/));
    assert.throws(fs({ maxthreads: 'lots' }), paramError('registry.storage.filesystem.maxthreads', /expected an integer, found "lots"$/));
    assert.throws(fs({ maxthreads: 2.5 }), paramError('registry.storage.filesystem.maxthreads', /expected an integer, found number 2.5$/));
    assert.throws(fs({ directio: 'yes' }), paramError('registry.storage.filesystem.directio', /expected true or false, found "yes"$/));
    assert.throws(fs({ bucket: 'b' }),
      paramError('registry.storage.filesystem.bucket', /unknown parameter, expected one of: rootdirectory, maxthreads, directio$/));
    assert.throws(() => createDriver('inmemory', { size: 1 }), paramError('registry.storage.inmemory.size', /the driver takes none/));
    assert.throws(() => new FilesystemDriver({} as never), paramError('registry.storage.filesystem.rootdirectory'));
  });

  it('an unknown driver name lists the registered ones', () => {
    assert.throws(() => createDriver('azure', { bucket: 'b' }),
      paramError('registry.storage', /unknown storage driver "azure"; expected one of: filesystem, inmemory, s3$/));
  });
});

describe('the driver registry', () => {
  it('lists the built-in drivers and their parameter tables', () => {
    assert.deepEqual(driverNames(), ['filesystem', 'inmemory', 's3']);
    assert.deepEqual(driverParameters('filesystem'), [
      { name: 'rootdirectory', kind: 'path', default: './data' },
      { name: 'maxthreads', kind: 'int', default: 100, min: 25 },
      { name: 'directio', kind: 'bool', default: true },
    ]);
    assert.deepEqual(driverParameters('inmemory'), []);
    assert.equal(driverParameters('azure'), undefined);
    assert.deepEqual(driverParameters('s3')?.map((p) => p.name), [
      'accesskey', 'secretkey', 'sessiontoken', 'region', 'regionendpoint', 'forcepathstyle', 'bucket', 'rootdirectory',
      'encrypt', 'keyid', 'secure', 'skipverify', 'v4auth', 'chunksize', 'multipartcopychunksize',
      'multipartcopymaxconcurrency', 'multipartcopythresholdsize', 'storageclass', 'objectacl', 'useragent', 'loglevel', 'requesttimeout', 'idletimeout',
      'buffermemory',
    ]);
    assert.equal(dataDirectory('s3', { region: 'r', bucket: 'b' }), undefined);
    assert.equal(dataDirectory('filesystem', { rootdirectory: '/srv/registry' }), '/srv/registry');
    assert.equal(dataDirectory('inmemory', {}), undefined);
  });

  it('a registered driver is created by name and wrapped; names are checked once', async () => {
    const seen: Readonly<Record<string, unknown>>[] = [];
    registerDriver('test-mem', {
      parameters: [{ name: 'size', kind: 'int', default: 1, min: 1 }],
      create(params) { seen.push(params); return new InMemoryDriver(); },
    });
    assert.deepEqual(driverNames(), ['filesystem', 'inmemory', 's3', 'test-mem']);
    const { lines, log } = captureLog();
    const d = createDriver('test-mem', { size: '3' }, log);
    await d.putContent('/a', Buffer.from('1'));
    assert.deepEqual(seen, [{ size: '3' }], 'the driver gets the map as given and checks it itself');
    assert.equal(lines[0]?.op, 'putContent', 'wrapped: each call is logged');
    assert.throws(() => registerDriver('test-mem', { parameters: [], create: () => new InMemoryDriver() }), /registered twice/);
    assert.throws(() => registerDriver('Test_Mem', { parameters: [], create: () => new InMemoryDriver() }), /lower-case letters, digits and - only/);
  });

  it("the filesystem driver's O_DIRECT refusal is one warning naming the root directory", async (t) => {
    const tmp = await makeTempDir('berth-factory');
    t.after(() => tmp.cleanup());
    const { lines, log } = captureLog('warn');
    // directAlign 256: the second direct block goes to file offset 256, which the kernel refuses (EINVAL)
    // on a 512 B or 4 KiB device, as a filesystem without O_DIRECT would (see fs-direct-io.test.ts).
    const d = new FilesystemDriver({ rootdirectory: tmp.path, directAlign: 256, onDirectIoRefused: logDirectIoRefused(tmp.path, log) });
    const data = randomBytes(2 * 1024 * 1024 + 300);
    for (const [a, b] of [[0, 256], [256, data.length]] as const) {
      const w = await d.writer('/up/data', { append: true });
      await pipeline(Readable.from([data.subarray(a, b)]), w.stream);
      await w.commit();
    }
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.equal(lines[0]?.level, 40);
    assert.equal(lines[0]?.rootdirectory, tmp.path);
    assert.ok(lines[0]?.op === 'write' || lines[0]?.op === 'open', `op ${String(lines[0]?.op)}`);
    assert.match(String(lines[0]?.msg), /^the filesystem refused O_DIRECT: .*registry\.storage\.filesystem\.directio: false/);
  });
});

describe('wrapDriver', () => {
  it('logs each call at debug with the driver name and duration', async () => {
    const { lines, log } = captureLog();
    const d = wrapDriver(new InMemoryDriver(), log);
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
