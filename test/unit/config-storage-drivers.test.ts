// registry.storage against the driver registry: config validates a registered driver's section with the
// driver's own parameter table (unknown keys, kinds, bounds, defaults, paths against the config file's
// directory), from the file and from REGISTRY_* variables, and names the registered drivers when the
// driver is unknown. Registers a test driver, so it runs in its own file (process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfigFromString } from '../../src/config/load.js';
import { createDriver, InMemoryDriver, registerDriver } from '../../src/registry/storage/factory.js';
import { parseParameters } from '../../src/registry/storage/parameters.js';

const FILE = '/srv/berth/gateway.yml';

const TESTSTORE = [
  { name: 'root', kind: 'path', default: './store' },
  { name: 'parts', kind: 'int', default: 5, min: 1, max: 10 },
  { name: 'secure', kind: 'bool', default: true },
  { name: 'region', kind: 'string' },
] as const;
const created: unknown[] = [];
registerDriver('teststore', {
  parameters: TESTSTORE,
  create(params) {
    created.push(parseParameters('teststore', TESTSTORE, params));
    return new InMemoryDriver();
  },
});

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    loadConfigFromString(text, FILE, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

test("a registered driver's section: defaults from its table, paths resolved against the config file", () => {
  const s = loadConfigFromString('registry:\n  storage:\n    teststore: {}\n', FILE).registry.storage;
  assert.equal(s.driver, 'teststore');
  assert.deepEqual(s.parameters, { root: '/srv/berth/store', parts: 5, secure: true });
  const t = loadConfigFromString('registry:\n  storage:\n    teststore: { root: /data, parts: "7", secure: f, region: eu-1 }\n', FILE).registry.storage;
  assert.deepEqual(t.parameters, { root: '/data', parts: 7, secure: false, region: 'eu-1' }, 'strings holding an int or a bool are accepted');
});

test("a registered driver's parameters are checked, each problem at its position", () => {
  assert.deepEqual(problems('registry:\n  storage:\n    teststore: { parts: 0, secure: maybe, region: [a], bucket: b, root: "" }\n'), [
    `${FILE}:3:25  registry.storage.teststore.parts  expected an integer ≥ 1, found number 0`,
    `${FILE}:3:36  registry.storage.teststore.secure  expected true or false, found string "maybe"`,
    `${FILE}:3:51  registry.storage.teststore.region  expected a string, found a list`,
    `${FILE}:3:56  registry.storage.teststore.bucket  unknown key, expected one of: root, parts, secure, region`,
    `${FILE}:3:73  registry.storage.teststore.root  expected a non-empty path, found string ""`,
  ]);
  assert.deepEqual(problems('registry: { storage: { teststore: { parts: 11 } } }'), [
    `${FILE}:1:44  registry.storage.teststore.parts  expected an integer ≤ 10, found number 11`,
  ]);
  assert.deepEqual(problems('registry: { storage: { teststore: { parts: "many" } } }'), [
    `${FILE}:1:44  registry.storage.teststore.parts  expected an integer, found string "many"`,
  ]);
});

test('REGISTRY_* overrides reach a driver section: values arrive as strings and are checked the same way', () => {
  const env = { REGISTRY_STORAGE_TESTSTORE_PARTS: '7', REGISTRY_STORAGE_TESTSTORE_SECURE: 'F', REGISTRY_STORAGE_TESTSTORE_ROOT: 'rel' };
  const s = loadConfigFromString('registry: { storage: { teststore: { parts: 2 } } }', FILE, env).registry.storage;
  assert.deepEqual(s.parameters, { root: '/srv/berth/rel', parts: 7, secure: false });
  assert.deepEqual(problems('registry: { storage: { teststore: {} } }', { REGISTRY_STORAGE_TESTSTORE_PARTS: '11' }), [
    'env REGISTRY_STORAGE_TESTSTORE_PARTS  registry.storage.teststore.parts  expected an integer ≤ 10, found number 11',
  ]);
  const fs = loadConfigFromString('', FILE, { REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS: '50' }).registry.storage;
  assert.deepEqual(fs.parameters, { rootdirectory: '/srv/berth/data', maxthreads: 50, directio: true });
  assert.deepEqual(problems('', { REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS: '5' }), [
    'env REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS  registry.storage.filesystem.maxthreads  expected an integer ≥ 25, found number 5',
  ]);
});

test('createDriver(storage.driver, storage.parameters) builds the configured driver', () => {
  const s = loadConfigFromString('registry: { storage: { teststore: { region: x } } }', FILE).registry.storage;
  created.length = 0;
  assert.equal(createDriver(s.driver, s.parameters).name, 'inmemory');
  assert.deepEqual(created, [{ root: '/srv/berth/store', parts: 5, secure: true, region: 'x' }]);
});

test('an unknown driver: the message lists the registered drivers (gateway.yml and config.yml)', () => {
  assert.deepEqual(problems('registry:\n  storage:\n    azure: { bucket: b }\n'), [
    `${FILE}:3:5  registry.storage.azure  unknown key, expected one of: filesystem, inmemory, s3, teststore, delete, maintenance, redirect, cache`,
  ]);
  assert.deepEqual(problems('version: 0.1\nstorage:\n  nosuch: {}\n'), [
    `${FILE}:3:3  storage.nosuch  unknown storage driver "nosuch" (berth has filesystem, inmemory, s3 and teststore)`,
  ]);
  assert.deepEqual(problems('version: 0.1\nstorage:\n  azure: {}\n'), [
    `${FILE}:3:3  storage.azure  storage driver "azure" is not supported yet (berth has filesystem, inmemory, s3 and teststore)`,
  ]);
  assert.deepEqual(problems('registry:\n  storage:\n    teststore: {}\n    filesystem: {}\n'), [
    `${FILE}:4:5  registry.storage  expected exactly one driver, found: teststore, filesystem`,
  ]);
});

test('config.yml: a registered driver by section or bare name, its parameters under their Distribution keys', () => {
  assert.equal(loadConfigFromString('version: 0.1\nstorage: teststore\n', FILE).registry.storage.driver, 'teststore');
  const s = loadConfigFromString('version: 0.1\nstorage:\n  teststore: { parts: 3 }\n', FILE).registry.storage;
  assert.deepEqual([s.driver, s.parameters], ['teststore', { root: '/srv/berth/store', parts: 3, secure: true }]);
  assert.deepEqual(problems('version: 0.1\nstorage:\n  teststore: { parts: 30 }\n'), [
    `${FILE}:3:23  storage.teststore.parts  expected an integer ≤ 10, found number 30`,
  ]);
});
