// PasswordCheckGate (src/auth/check-gate.ts): at most `concurrency` checks at once, FIFO waiting, a share
// per address, refusals at once when full, and no check for a client that left while waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckRefusedError, PasswordCheckGate } from '../../src/auth/check-gate.js';

/** A check that finishes when `release()` is called. */
function pending() {
  let release!: () => void;
  const done = new Promise<boolean>((r) => { release = () => r(true); });
  return { run: () => done, release };
}

const refused = (reason: string) => (e: unknown) => e instanceof CheckRefusedError && e.reason === reason;

test('runs at most `concurrency` at once; waiters start in order as slots free', async () => {
  const gate = new PasswordCheckGate({ concurrency: 2, maxWaiting: 4, perAddress: 10 });
  const checks = Array.from({ length: 5 }, pending);
  const order: number[] = [];
  const runs = checks.map((c, i) => gate.run(`10.0.0.${i}`, () => { order.push(i); return c.run(); }));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1]);
  assert.equal(gate.active, 2);
  assert.equal(gate.queued, 3);
  checks[1].release();
  await runs[1];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1, 2]);
  for (const c of checks) c.release();
  assert.deepEqual(await Promise.all(runs), [true, true, true, true, true]);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(gate.peak, 2);
  assert.equal(gate.active + gate.queued, 0);
});

test('refuses at once when the address share or the queue is full; a finished check frees the share', async () => {
  const gate = new PasswordCheckGate({ concurrency: 1, maxWaiting: 2, perAddress: 2 });
  const a = [pending(), pending()];
  const ra = a.map((c) => gate.run('a', c.run));
  await assert.rejects(gate.run('a', async () => true), refused('address'));
  const b = pending();
  const rb = gate.run('b', b.run);
  await assert.rejects(gate.run('c', async () => true), refused('all'));
  for (const c of [...a, b]) c.release();
  await Promise.all([...ra, rb]);
  assert.equal(await gate.run('a', async () => true), true);
});

test('a waiter whose client left is not checked; errors of a check are passed on and free the slot', async () => {
  const gate = new PasswordCheckGate({ concurrency: 1 });
  const first = pending();
  const r1 = gate.run('a', first.run);
  let ran = false;
  const r2 = gate.run('b', async () => { ran = true; return true; }, () => true);
  first.release();
  await r1;
  await assert.rejects(r2, refused('gone'));
  assert.equal(ran, false);
  await assert.rejects(gate.run('a', async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await gate.run('a', async () => true), true);
  assert.equal(gate.active + gate.queued, 0);
});

test('the default concurrency is half of libuv\'s pool (UV_THREADPOOL_SIZE), at least one', async () => {
  const { threadpoolSize } = await import('../../src/auth/check-gate.js');
  assert.equal(threadpoolSize({}), 4);
  assert.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '16' }), 16);
  assert.equal(threadpoolSize({ UV_THREADPOOL_SIZE: 'x' }), 1, 'as libuv: atoi → 0 → 1');
  assert.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '0' }), 1);
  assert.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '5000' }), 1024);
  assert.equal(new PasswordCheckGate().concurrency, Math.max(1, Math.floor(threadpoolSize() / 2)));
  assert.equal(new PasswordCheckGate({ concurrency: 0 }).concurrency, 1);
});
