// gateway/connection-limits.ts without sockets: reading the open-file limit from /proc/self/limits text, and
// the total cap it allows (the adversarial suite floods a real berth: test/adversarial/conn-flood.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { FD_SHARE, limitConnections, readFileLimit } from '../../src/gateway/connection-limits.js';
import { silentLogger } from '../../src/log/logger.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

test('readFileLimit: the soft "Max open files"; null when unknown or unlimited', () => {
  assert.equal(readFileLimit(LIMITS), 20000);
  assert.equal(readFileLimit(LIMITS.replace('20000                20000', 'unlimited            unlimited')), null);
  assert.equal(readFileLimit(''), null);
  assert.ok(readFileLimit() === null || readFileLimit()! > 0);   // this process's own
});

test('the total cap: the configured one, never above FD_SHARE of the open-file limit', () => {
  const table: [max: number, fileLimit: number | null, want: number][] = [
    [2048, 20000, 2048], [2048, 1024, Math.floor(1024 * FD_SHARE)], [100, null, 100], [10, 1, 1],
  ];
  for (const [max, fileLimit, want] of table) {
    const server = createServer();
    const l = limitConnections(server, { max, perAddress: 5, log: silentLogger(), fileLimit });
    assert.equal(l.max, want, `max ${max}, file limit ${fileLimit}`);
    assert.equal(server.maxConnections, want);
    assert.equal(l.open(), 0);
  }
});
