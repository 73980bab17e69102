// The upload lock in redis (cache/redis-upload-lock.ts) against a real redis-server, with short TTLs and waits:
// one holder at a time, a bounded wait ending in UploadBusyError, a dead holder's key taken over after its TTL,
// a holder that lost its key aborted, release by the holder only, and fail-open while redis is down; and through
// a berth process: a PATCH of a session whose lock another holder keeps gets 429 after the 15 s wait, a status
// GET never waits.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import { createLogger } from '../../src/log/logger.js';
import { RedisUploadLock, UPLOAD_LOCK_TTL_MS, UPLOAD_LOCK_WAIT_MS } from '../../src/registry/cache/redis-upload-lock.js';
import { UploadBusyError } from '../../src/registry/core/errors.js';
import { request } from '../support/http.js';
import { expectOciError, locationPath, startUpload } from '../support/oci-client.js';
import { startBerth } from '../support/processes.js';
import { redisSkip, startRedis, type TestRedis } from '../support/redis-server.js';
import { forwardTcpToUnix } from '../support/tcp-forward.js';
import { waitUntil, withDeadline } from '../support/wait.js';

type T = { after(fn: () => Promise<void>): void };

function capture() {
  const lines: Record<string, any>[] = [];
  const dest = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { log: createLogger({ level: 'debug', destination: dest }), lines };
}

async function setup(t: T, o: { ttlMs?: number; waitMs?: number } = {}) {
  const redis = await startRedis();
  t.after(() => redis.close());
  const { log, lines } = capture();
  const lock = new RedisUploadLock({ socket: { path: redis.socket }, keyPrefix: 'p:', ttlMs: o.ttlMs ?? 400, waitMs: o.waitMs ?? 1200 }, log);
  t.after(() => lock.close());
  const admin = createClient({ socket: { path: redis.socket, reconnectStrategy: false } });
  admin.on('error', () => {});
  await admin.connect();
  t.after(async () => { if (admin.isOpen) admin.destroy(); });
  // Connected: a run now takes the key (before 'ready' it runs without the lock).
  await waitUntil('the lock to hold a key in redis', async () => {
    let seen = false;
    await lock.run('probe', async () => { seen = (await admin.exists('p:upload-lock::probe')) === 1; });
    return seen;
  }, { timeoutMs: 5000, intervalMs: 20 });
  return { redis, lock, admin, lines };
}

const holding = () => {
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const inside = new Promise<void>((r) => { entered = r; });
  return { gate, inside, release, entered };
};

describe('redis upload lock', { skip: redisSkip() }, () => {
  it('one holder at a time; the next runs once the first released; the key is gone after', async (t) => {
    const { lock, admin } = await setup(t);
    const h = holding();
    const order: string[] = [];
    const first = lock.run('r::1', async () => { order.push('first in'); h.entered(); await h.gate; order.push('first out'); });
    await h.inside;
    assert.match(String(await admin.get('p:upload-lock::r::1')), /^[0-9a-f-]{36}$/);
    const second = lock.run('r::1', async () => { order.push('second'); });
    const other = lock.run('r::2', async () => { order.push('other key'); });
    await other;
    h.release();
    await withDeadline(Promise.all([first, second]), 5000, 'both holders');
    assert.deepEqual(order, ['first in', 'other key', 'first out', 'second']);
    assert.equal(await admin.exists('p:upload-lock::r::1'), 0);
  });

  it('waits at most waitMs, then UploadBusyError (429 hint: the TTL in seconds); a long holder keeps its key alive', async (t) => {
    const { lock, admin } = await setup(t, { ttlMs: 300, waitMs: 900 });
    const h = holding();
    const first = lock.run('r::busy', async () => { h.entered(); await h.gate; });
    await h.inside;
    const t0 = Date.now();
    const err = await lock.run('r::busy', async () => 'ran').then(() => undefined, (e: unknown) => e);
    const waited = Date.now() - t0;
    assert.ok(err instanceof UploadBusyError, String(err));
    assert.equal(err.id, 'busy');
    assert.equal(err.retryAfter, 1);
    assert.ok(waited >= 850 && waited < 3000, `waited ${waited} ms`);
    assert.equal(await admin.exists('p:upload-lock::r::busy'), 1, 'refreshed past its 300 ms TTL');
    h.release();
    await first;
  });

  it('a dead holder\'s key (no refresh) is taken over once its TTL ran out', async (t) => {
    const { lock, admin } = await setup(t, { ttlMs: 400, waitMs: 2000 });
    await admin.set('p:upload-lock::r::dead', 'token-of-a-killed-replica', { PX: 500 });
    const t0 = Date.now();
    assert.equal(await lock.run('r::dead', async () => 'ran'), 'ran');
    assert.ok(Date.now() - t0 >= 300, 'it waited for the expiry');
    assert.equal(await admin.get('p:upload-lock::r::dead'), null, 'released; the foreign token expired before');
  });

  it('a holder whose key was taken over is aborted (UploadBusyError); its release leaves the new holder\'s key', async (t) => {
    const { lock, admin, lines } = await setup(t, { ttlMs: 300 });
    const h = holding();
    let aborted = false;
    const run = lock.run('r::lost', async (signal) => {
      h.entered();
      await new Promise<void>((_resolve, reject) => {
        signal!.addEventListener('abort', () => { aborted = true; reject(signal!.reason as Error); }, { once: true });
      });
    });
    await h.inside;
    await admin.set('p:upload-lock::r::lost', 'someone-else', { PX: 5000 });
    const err = await withDeadline(run.then(() => undefined, (e: unknown) => e), 3000, 'the holder to be aborted');
    assert.ok(aborted);
    assert.ok(err instanceof UploadBusyError, String(err));
    assert.equal(await admin.get('p:upload-lock::r::lost'), 'someone-else');
    assert.ok(lines.some((l) => l.level === 40 && /upload lock lost/.test(l.msg)));
  });

  it('redis down: runs without the lock, one warning per outage; back up: locks again', async (t) => {
    const { lock, redis, lines } = await setup(t);
    await (redis as TestRedis).kill();
    await waitUntil('the lock to notice redis is down', () => lines.some((l) => /upload lock unavailable/.test(l.msg)), { timeoutMs: 5000 });
    for (let i = 0; i < 3; i++) assert.equal(await lock.run('r::down', async () => i), i);
    assert.equal(lines.filter((l) => /upload lock unavailable/.test(l.msg)).length, 1);
    await redis.restart();
    await waitUntil('the lock to recover', () => lines.some((l) => /upload lock recovered/.test(l.msg)), { timeoutMs: 10_000 });
    const admin = createClient({ socket: { path: redis.socket, reconnectStrategy: false } });
    admin.on('error', () => {});
    await admin.connect();
    try {
      assert.equal(await lock.run('r::up', async () => admin.exists('p:upload-lock::r::up')), 1);
    } finally {
      admin.destroy();
    }
  });

  it('berth: a PATCH behind another holder\'s lock answers 429 with Retry-After after the wait; status never waits', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const tcp = await forwardTcpToUnix(redis.socket);
    t.after(() => tcp.close());
    const berth = await startBerth({ configYaml: ['listen: 127.0.0.1:0', 'upstreams:', '  v2: embedded', 'registry:', '  storage:',
      '    filesystem:', '      rootdirectory: ROOT', '  redis:', `    addr: ${tcp.addr}`, '    keyprefix: "t:"', 'log:', '  level: warn', ''].join('\n') });
    t.after(() => berth.close());
    const admin = createClient({ socket: { path: redis.socket, reconnectStrategy: false } });
    admin.on('error', () => {});
    await admin.connect();
    t.after(async () => { if (admin.isOpen) admin.destroy(); });
    const loc = await startUpload(berth.url, 'lock/x');
    const id = loc.split('?')[0]!.split('/').pop()!;
    const patch = (at: number, body: Buffer) => request(`${berth.url}${loc}`, {
      method: 'PATCH', body, headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + body.length - 1}` },
    });
    // berth's lock connection is up (it is berth's only one here: no cache configured) before the lock is taken.
    await waitUntil('berth connected to redis', async () =>
      String(await admin.sendCommand(['CLIENT', 'LIST'])).split('\n').filter((l) => l.trim()).length >= 2, { timeoutMs: 5000, intervalMs: 20 });
    const first = await patch(0, Buffer.from('abc'));
    assert.equal(first.status, 202);
    await admin.set(`t:upload-lock::lock/x::${id}`, 'another-replica', { PX: 60_000 });
    const t0 = Date.now();
    const [busy, status] = await Promise.all([
      patch(3, Buffer.from('def')),
      (async () => {
        const r = await request(`${berth.url}${locationPath(berth.url, first)}`);
        return { r, ms: Date.now() - t0 };
      })(),
    ]);
    const waited = Date.now() - t0;
    assert.equal(status.r.status, 204);
    assert.equal(status.r.headers.range, '0-2');
    assert.ok(status.ms < 5000, `status answered after ${status.ms} ms`);
    expectOciError(busy, 429, 'TOOMANYREQUESTS');
    assert.equal(busy.headers['retry-after'], String(UPLOAD_LOCK_TTL_MS / 1000));
    assert.ok(waited >= UPLOAD_LOCK_WAIT_MS - 100 && waited < UPLOAD_LOCK_WAIT_MS + 10_000, `waited ${waited} ms`);
    await admin.del(`t:upload-lock::lock/x::${id}`);
    const after = await patch(3, Buffer.from('def'));
    assert.equal(after.status, 202, after.text());
    assert.equal(after.headers.range, '0-5');
  });
});
