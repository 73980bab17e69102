// UploadSessionLimits (per-user and per-address bounds on open upload sessions, expiry by idle time) and
// the bounds of UploadStates (running hashes and start times of idle sessions are dropped, at most `max`
// kept), with an injected clock; the purger tells the limits which sessions it removed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { silentLogger } from '../../src/log/logger.js';
import { UploadLimitError } from '../../src/registry/core/errors.js';
import { hostOf, UploadSessionLimits } from '../../src/registry/core/upload-limits.js';
import { purgeUploads } from '../../src/registry/core/upload-purger.js';
import { UploadStates } from '../../src/registry/core/upload.js';
import { wrapDriver } from '../../src/registry/storage/base.js';
import { InMemoryDriver } from '../../src/registry/storage/drivers/inmemory.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { runWithRequest, type RequestFacts } from '../../src/util/request-context.js';

const facts = (user: string | undefined, addr: string): RequestFacts =>
  ({ reqId: 'r', user, addr, host: 'h', method: 'POST', useragent: 'ua', scheme: 'http' });
const as = <T>(user: string | undefined, addr: string, fn: () => T): T => runWithRequest(facts(user, addr), fn);

test('per user and per address (ports ignored); ended sessions and failed starts give the slot back', () => {
  const clock = { t: 0 };
  const l = new UploadSessionLimits({ peruser: 2, peraddress: 3, expiry: 1000, now: () => clock.t });
  const a1 = as('alice', '10.0.0.1:1111', () => l.reserve());
  l.started(a1, 'r/1');
  as('alice', '10.0.0.1:2222', () => l.started(l.reserve(), 'r/2'));
  assert.throws(() => as('alice', '10.0.0.9:1', () => l.reserve()), (e: unknown) => e instanceof UploadLimitError && e.scope === 'user' && e.limit === 2);
  const b = as('bob', '10.0.0.1:3333', () => l.reserve());          // address 10.0.0.1: 3 of 3
  assert.throws(() => as(undefined, '10.0.0.1:4444', () => l.reserve()), (e: unknown) => e instanceof UploadLimitError && e.scope === 'address');
  l.ended(b);                                                        // bob's start failed
  as(undefined, '10.0.0.1:4444', () => l.reserve());
  assert.deepEqual(l.held({ user: 'alice', addr: '10.0.0.1' }), { user: 2, address: 3 });
  l.ended('r/1');
  l.ended('r/1');                                                    // twice: counted once
  assert.deepEqual(l.held({ user: 'alice', addr: '10.0.0.1' }), { user: 1, address: 2 });
  assert.doesNotThrow(() => l.reserve());                            // outside a request: no bound
});

test('a session idle for `expiry` stops counting; a touched one keeps counting; the maps shrink to empty', () => {
  const clock = { t: 0 };
  const l = new UploadSessionLimits({ peruser: 2, peraddress: 0, expiry: 1000, now: () => clock.t });
  as('alice', '[::1]:5', () => { l.started(l.reserve(), 'r/old'); l.started(l.reserve(), 'r/used'); });
  clock.t = 900;
  l.touch('r/used');
  clock.t = 1000;                                                    // r/old: idle 1000 ms → expired
  assert.equal(l.size, 1);
  as('alice', '[::1]:6', () => l.started(l.reserve(), 'r/new'));
  assert.throws(() => as('alice', '[::1]:7', () => l.reserve()), UploadLimitError);
  clock.t = 5000;
  assert.equal(l.size, 0);
  assert.deepEqual(l.held({ user: 'alice', addr: '::1' }), { user: 0, address: 0 });
});

test('hostOf', () => {
  const rows: [string, string][] = [
    ['10.0.0.1:80', '10.0.0.1'], ['[::1]:5000', '::1'], ['::1', '::1'], ['10.0.0.1', '10.0.0.1'],
    ['[::ffff:10.0.0.1]:80', '10.0.0.1'], ['2001:db8::1', '2001:db8::1'], ['', ''],
  ];
  for (const [addr, host] of rows) assert.equal(hostOf(addr), host, addr);
});

test('UploadStates: idle sessions are forgotten, at most `max` are kept, locks only while held', async () => {
  const clock = { t: 0 };
  const s = new UploadStates({ max: 3, idleMs: 1000, now: () => clock.t });
  const hash = () => ({ size: 0, algorithm: 'sha256' as const, hash: createHash('sha256') });
  for (let i = 0; i < 5; i++) { s.set(`r/${i}`, hash()); s.rememberStart(`r/${i}`, new Date(0)); }
  assert.deepEqual(s.sizes, { hashes: 3, starts: 3, locks: 0 });
  assert.equal(s.get('r/0'), undefined);                            // least recently used went first
  assert.ok(s.get('r/4'));
  clock.t = 999;
  s.set('r/4', hash());                                              // touched: stays
  clock.t = 1500;
  assert.deepEqual(s.sizes, { hashes: 1, starts: 0, locks: 0 });
  assert.equal(s.startedAt('r/4'), undefined);
  await s.locked('r/4', async () => assert.equal(s.sizes.locks, 1));
  assert.equal(s.sizes.locks, 0);
});

test('UploadStates.later: idle() waits for the work, and for work started meanwhile; a failure is dropped', async () => {
  const s = new UploadStates();
  const done: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  s.later(async () => { await gate; done.push('first'); s.later(async () => { done.push('second'); }); });
  s.later(async () => { throw new Error('the store failed'); });
  let idle = false;
  const waited = s.idle().then(() => { idle = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(idle, false, 'idle() waits while work runs');
  release();
  await waited;
  assert.deepEqual(done, ['first', 'second']);
  await s.idle();   // nothing left: at once
});

test('the purger reports each session it removed (not in a dry run)', async () => {
  const d = wrapDriver(new InMemoryDriver());
  for (const id of ['u1', 'u2']) {
    await d.putContent(pathFor({ kind: 'uploadData', name: 'a/b', id }), Buffer.from('x'));
    await d.putContent(pathFor({ kind: 'uploadStartedAt', name: 'a/b', id }), Buffer.from('2020-01-01T00:00:00Z'));
  }
  const heard: string[] = [];
  const onPurged = (repo: string, id: string) => heard.push(`${repo}/${id}`);
  await purgeUploads(d, { olderThan: new Date(), dryRun: true, log: silentLogger(), onPurged });
  assert.deepEqual(heard, []);
  await purgeUploads(d, { olderThan: new Date(), dryRun: false, log: silentLogger(), onPurged });
  assert.deepEqual(heard.sort(), ['a/b/u1', 'a/b/u2']);
});
