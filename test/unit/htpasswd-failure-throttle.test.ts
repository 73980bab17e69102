// FailureThrottle (src/auth/failure-throttle.ts): budgets per address+user and per address, the backoff
// after them (from the last failure, doubling, capped), good standing after a success, expiry, eviction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureThrottle } from '../../src/auth/failure-throttle.js';

function make(o: ConstructorParameters<typeof FailureThrottle>[0] = {}) {
  const clock = { t: 0 };
  return { clock, th: new FailureThrottle({ now: () => clock.t, ...o }) };
}

test('per address+user: 5 free, then a backoff from the last failure (250 ms doubling, capped at 4 s)', () => {
  const { clock, th } = make();
  const starts = Array.from({ length: 5 }, () => th.recordFailure('10.0.0.1', 'alice'));
  assert.deepEqual(starts, [null, null, null, null, 'user']);
  assert.equal(th.retryAfterMs('10.0.0.1', 'alice'), 250);
  assert.equal(th.retryAfterMs('10.0.0.1', 'bob'), 0, 'another user at the same address');
  assert.equal(th.retryAfterMs('10.0.0.2', 'alice'), 0, 'the same user elsewhere');
  clock.t += 100;
  assert.equal(th.retryAfterMs('10.0.0.1', 'alice'), 150);
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    clock.t += th.retryAfterMs('10.0.0.1', 'alice');
    th.recordFailure('10.0.0.1', 'alice');
    waits.push(th.retryAfterMs('10.0.0.1', 'alice'));
  }
  assert.deepEqual(waits, [500, 1000, 2000, 4000, 4000, 4000]);
});

test('per address: 30 free over all users (and headers naming none), then the same backoff; a success exempts that user', () => {
  const { clock, th } = make();
  th.recordSuccess('10.0.0.1', 'alice');
  let started: string | null = null;
  for (let i = 0; i < 29; i++) started = th.recordFailure('10.0.0.1', `u${i}`) ?? started;
  assert.equal(started, null);
  assert.equal(th.recordFailure('10.0.0.1'), 'address');
  assert.equal(th.retryAfterMs('10.0.0.1', 'carol'), 250, 'a user new to the address waits');
  assert.equal(th.retryAfterMs('10.0.0.1'), 250, 'so does a header without a user');
  assert.equal(th.retryAfterMs('10.0.0.1', 'alice'), 0, 'alice logged in from here within the window');
  assert.equal(th.retryAfterMs('10.0.0.2', 'carol'), 0);
  clock.t += 60_000;
  assert.equal(th.retryAfterMs('10.0.0.1', 'carol'), 0, 'the window expired');
});

test('one failure that spends both budgets says both (the address\'s slow-down is never unreported)', () => {
  const { th } = make();
  for (let i = 0; i < 4; i++) assert.equal(th.recordFailure('10.0.0.1', 'alice'), null);
  for (let i = 0; i < 25; i++) assert.equal(th.recordFailure('10.0.0.1', `u${i}`), null);
  assert.equal(th.recordFailure('10.0.0.1', 'alice'), 'both', 'alice\'s fifth failure is the address\'s thirtieth');
  assert.equal(th.recordFailure('10.0.0.1', 'alice'), null, 'each start is said once');
});

test('a success forgives the user\'s failures; tables are bounded (oldest evicted)', () => {
  const { th } = make({ maxEntries: 3 });
  for (let i = 0; i < 5; i++) th.recordFailure('10.0.0.1', 'alice');
  assert.ok(th.retryAfterMs('10.0.0.1', 'alice') > 0);
  th.recordSuccess('10.0.0.1', 'alice');
  assert.equal(th.retryAfterMs('10.0.0.1', 'alice'), 0);
  for (let i = 0; i < 10; i++) th.recordFailure(`10.0.1.${i}`, `u${i}`);
  assert.ok(th.size <= 6, `at most 3 pairs and 3 addresses, got ${th.size}`);
});
