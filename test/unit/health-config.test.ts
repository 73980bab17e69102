// registry.health / registry.http.debug config rows (values, defaults, every message) and the
// metrics route classifier (no repository names in labels).
import { test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import assert from 'node:assert/strict';
import { loadConfigFromString } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/config-error.js';
import { redactURI } from '../../src/health/checks.js';
import { routeOf } from '../../src/metrics/metrics.js';

const FILE = '/srv/berth/gateway.yml';

test('health and debug keys: values, defaults, relative file paths', () => {
  const r = loadConfigFromString(`registry:
  health:
    storagedriver: { enabled: true }
    file: [{ file: maint }]
    http: [{ uri: "https://h:9/live?x=1", headers: { A: b, C: [d, e] } }]
    tcp: [{ addr: ":6379", interval: 5s, threshold: 2 }]
  http: { debug: {} }
`, FILE).registry;
  assert.deepEqual(r.health, {
    storagedriver: { enabled: true, interval: 10_000, threshold: 3 },
    file: [{ file: '/srv/berth/maint', interval: 10_000 }],
    http: [{ uri: 'https://h:9/live?x=1', headers: { A: ['b'], C: ['d', 'e'] }, statuscode: 200, timeout: 1000, interval: 10_000, threshold: 0 }],
    tcp: [{ addr: { host: '::', port: 6379 }, timeout: 1000, interval: 5000, threshold: 2 }],
  });
  assert.deepEqual(r.http, { debug: { addr: { host: 'localhost', port: 5001 }, prometheus: { enabled: true, path: '/metrics' } } });
});

test('health config errors: one line each, with positions', () => {
  const text = `registry:
  health:
    file: { file: x }
    http: [{ uri: "ftp://h/", headers: { A: 1 }, statuscode: 99 }]
    tcp: [{ timeout: 1 }]
  http: { debug: { addr: nope } }
`;
  assert.throws(() => loadConfigFromString(text, FILE), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    const lines = err.message.split('\n').map((l) => l.replace(/^\S+:\d+:\d+\s+/, ''));
    assert.deepEqual(lines.map((l) => l.split(/\s+/)[0]), [
      'registry.health.file', 'registry.health.http.0.uri', 'registry.health.http.0.headers.A',
      'registry.health.http.0.statuscode', 'registry.health.tcp.0.addr', 'registry.health.tcp.0.timeout',
      'registry.http.debug.addr',
    ]);
    assert.match(err.message, /registry\.health\.tcp\.0\.addr\s+missing required key/);
    assert.match(err.message, /registry\.health\.file\s+expected a list of mappings/);
    return true;
  });
});

test('metrics routes', () => {
  const rows: [string, string][] = [
    ['/v2/', 'base'], ['/v2', 'base'], ['/v2/_catalog?n=1', 'catalog'],
    ['/v2/a/b/blobs/uploads/', 'blob_upload'], ['/v2/a/blobs/uploads/123?_state=x', 'blob_upload'],
    ['/v2/a/blobs/sha256:00', 'blob'], ['/v2/a/manifests/latest', 'manifest'], ['/v2/a/tags/list', 'tags'],
    ['/v2/a/referrers/sha256:00', 'referrers'], ['/v2/a/other', 'unknown'], ['/v1/_ping', 'v1'], ['/metrics', 'other'],
  ];
  for (const [url, route] of rows) assert.equal(routeOf({ url, method: 'GET' } as IncomingMessage), route, url);
});

test('redactURI: no credentials, no query values', () => {
  const rows: [string, string][] = [
    ['http://u:p@h:9/live?token=abc&x=1', 'http://***@h:9/live?token=***&x=***'],
    ['https://u@h/live', 'https://***@h/live'],
    ['http://h:9/', 'http://h:9/'],
    ['http://h/a?', 'http://h/a'],
    ['not a uri', '(invalid uri)'],
  ];
  for (const [uri, shown] of rows) assert.equal(redactURI(uri), shown, uri);
});
