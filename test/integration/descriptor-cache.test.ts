// The blob-descriptor caches: the conformance suite for memory and for redis (a real redis-server on a
// unix socket), redis key layout compatibility with Distribution, config → TCP addr/password/db, the
// memory bound, and fail-fast + log-once behaviour while redis is down.
import assert from 'node:assert/strict';
import { createServer, connect, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createClient } from 'redis';
import { loadConfigFromString } from '../../src/config/load.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { descriptorCacheFromConfig, redisOptionsFromConfig } from '../../src/registry/api/app.js';
import { MemoryDescriptorCache } from '../../src/registry/cache/memory.js';
import { RedisDescriptorCache } from '../../src/registry/cache/redis.js';
import { Tombstones } from '../../src/registry/cache/tombstones.js';
import { redisSkip, startRedis, type TestRedis } from '../support/redis-server.js';
import { digestOf, runCacheSuite } from '../support/suites/cache-suite.js';
import { waitUntil } from '../support/wait.js';

const skip = redisSkip();

runCacheSuite('inmemory', async () => {
  const cache = new MemoryDescriptorCache(1000);
  return { cache, cleanup: () => cache.close() };
});

// One redis-server for the redis suite; each test gets its own logical db... redis has 16, the suite
// has fewer tests, and FLUSHDB before use keeps them independent.
let shared: TestRedis | undefined;
let nextDb = 0;
after(async () => { await shared?.close(); });

runCacheSuite('redis', async () => {
  shared ??= await startRedis();
  const db = nextDb++ % 16;
  const admin = await adminClient(shared.socket, { database: db });
  await admin.flushDb();
  admin.destroy();
  const cache = new RedisDescriptorCache({ socket: { path: shared.socket }, db }, silentLogger());
  await waitHealthy(cache);
  return { cache, cleanup: () => cache.close() };
}, { skip });

/** Resolves once the cache has connected (first 'ready'); a short poll of its state, bounded. */
async function waitHealthy(cache: RedisDescriptorCache): Promise<void> {
  await waitUntil('the redis cache to connect', () => cache.healthy);
}

/** A plain client for inspecting redis (errors ignored: the server may be killed under it). */
async function adminClient(path: string, o: { password?: string; database?: number } = {}) {
  const c = createClient({ socket: { path, reconnectStrategy: false }, ...o });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Pino output captured as parsed lines. */
function capture() {
  const lines: Record<string, any>[] = [];
  const dest = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { log: createLogger({ level: 'debug', destination: dest }), lines };
}

describe('memory cache', () => {
  it('never holds more than its bound and evicts the least recently used', async () => {
    const c = new MemoryDescriptorCache(4);
    const d = (i: number) => ({ digest: digestOf(String(i)), size: i, mediaType: 'application/octet-stream' });
    await c.set(null, d(1).digest, d(1));
    await c.set(null, d(2).digest, d(2));
    await c.set(null, d(3).digest, d(3));
    await c.set(null, d(4).digest, d(4));
    await c.get(null, d(1).digest);                  // 1 is now the most recently used
    await c.set(null, d(5).digest, d(5));            // evicts 2
    assert.equal(c.size, 4);
    assert.equal(await c.get(null, d(2).digest), undefined);
    assert.deepEqual(await c.get(null, d(1).digest), d(1));
    await c.set('repo', d(6).digest, d(6));          // two entries (global + repository)
    assert.equal(c.size, 4);
  });
});

describe('tombstones (cache coherence after failures)', () => {
  it('a descriptor read from storage before a forget began is not written back after it', () => {
    const tomb = new Tombstones(new MemoryDescriptorCache(), silentLogger());
    const since = tomb.epoch();
    tomb.forgetting('r', digestOf('a'));
    assert.equal(tomb.mayWrite('r', digestOf('a'), since), false, 'read before the forget: dropped');
    assert.equal(tomb.mayWrite('r', digestOf('b'), since), true, 'other keys are not affected');
    assert.equal(tomb.mayWrite('other', digestOf('a'), since), true, 'nor other repositories');
    assert.equal(tomb.mayWrite('r', digestOf('a'), tomb.epoch()), true, 'read after it: written');
  });

  it('a tombstoned key is neither answered nor written until its eviction lands; past the bound, nothing is', async () => {
    const cache = new MemoryDescriptorCache();
    const tomb = new Tombstones(cache, silentLogger(), { max: 2, retryMs: 5, maxRetryMs: 20 });
    tomb.add('r', digestOf('a'));
    assert.equal(tomb.trusts('r', digestOf('a')), false);
    assert.equal(tomb.mayWrite('r', digestOf('a'), tomb.epoch()), false);
    assert.equal(tomb.trusts('r', digestOf('b')), true);
    await waitUntil('the eviction to land', () => tomb.pending.keys === 0);
    assert.equal(tomb.trusts('r', digestOf('a')), true);

    for (const s of ['x', 'y', 'z']) tomb.add('r', digestOf(s));
    assert.deepEqual(tomb.pending, { keys: 0, all: true });
    assert.equal(tomb.trusts('q', digestOf('never')), false);
    await waitUntil('the resync', () => !tomb.pending.all);
    assert.equal(tomb.trusts('q', digestOf('never')), true);
    tomb.stop();
  });
});

describe('redis cache', { skip }, () => {
  it("uses Distribution's keys, and reads entries Distribution wrote", async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const admin = await adminClient(redis.socket);
    t.after(() => { if (admin.isOpen) admin.destroy(); });
    const cache = new RedisDescriptorCache({ socket: { path: redis.socket } }, silentLogger());
    t.after(() => cache.close());
    await waitHealthy(cache);

    const d = digestOf('layer');
    await cache.set('library/app', d, { digest: d, size: 42, mediaType: 'application/octet-stream' });
    assert.deepEqual({ ...await admin.hGetAll(`blobs::${d}`) }, { digest: d, size: '42', mediatype: 'application/octet-stream' });
    assert.deepEqual(await admin.sMembers('repository::library/app::blobs'), [d]);
    assert.deepEqual({ ...await admin.hGetAll(`repository::library/app::blobs::${d}`) }, { mediatype: 'application/octet-stream' });
    await cache.clear('library/app', d);
    assert.deepEqual(await admin.sMembers('repository::library/app::blobs'), []);
    assert.equal(await admin.exists(`repository::library/app::blobs::${d}`), 0);
    assert.equal(await admin.exists(`blobs::${d}`), 1, 'the global entry stays');

    // As registry:2 writes them (HMSET digest size, HSETNX mediatype, SADD, HSET per-repo mediatype).
    const e = digestOf('from distribution');
    await admin.hSet(`blobs::${e}`, { digest: e, size: '7' });
    await admin.hSetNX(`blobs::${e}`, 'mediatype', 'application/octet-stream');
    await admin.sAdd('repository::other::blobs', e);
    await admin.hSet(`repository::other::blobs::${e}`, 'mediatype', 'application/vnd.oci.image.layer.v1.tar');
    assert.deepEqual(await cache.get('other', e), { digest: e, size: 7, mediaType: 'application/vnd.oci.image.layer.v1.tar' });

    // Garbage in a shared redis is a miss, not an answer (and not an outage).
    const g = digestOf('garbage');
    await admin.hSet(`blobs::${g}`, { digest: g, size: 'lots' });
    await admin.sAdd('repository::other::blobs', g);
    assert.equal(await cache.get('other', g), undefined);
    await admin.set(`blobs::${digestOf('wrongtype')}`, 'x');
    await admin.sAdd('repository::other::blobs', digestOf('wrongtype'));
    await assert.rejects(cache.get('other', digestOf('wrongtype')));
    assert.ok(cache.healthy, 'an error reply does not mark redis down');
  });

  it('connects over TCP from registry.redis (addr, password, db)', async (t) => {
    const redis = await startRedis({ password: 's3cret' });
    t.after(() => redis.close());
    // A TCP listener on port 0 forwarding to the unix socket: real TCP without guessing a free port.
    const proxy: Server = createServer((sock) => {
      const up = connect(redis.socket);
      sock.pipe(up).pipe(sock);
      const end = () => { sock.destroy(); up.destroy(); };
      sock.on('error', end).on('close', end); up.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => { proxy.close(() => r()); }));
    const { port } = proxy.address() as AddressInfo;

    const cfg = loadConfigFromString(
      `registry:\n  storage:\n    inmemory:\n    cache:\n      blobdescriptor: redis\n  redis:\n    addr: 127.0.0.1:${port}\n`
      + `    password: s3cret\n    db: 3\n    dialtimeout: 2s\n    readtimeout: 250ms\n    writetimeout: 300ms\n`
      + `    pool:\n      maxidle: 16\n      maxactive: 64\n      idletimeout: 300s\n`, '/tmp/gateway.yml');
    assert.deepEqual(redisOptionsFromConfig(cfg.registry.redis!), {
      socket: { host: '127.0.0.1', port }, password: 's3cret', db: 3, dialTimeoutMs: 2000, readTimeoutMs: 250, writeTimeoutMs: 300,
    });
    const { log, lines } = capture();
    const cache = descriptorCacheFromConfig(cfg.registry, log) as RedisDescriptorCache;
    t.after(() => cache.close());
    await waitHealthy(cache);
    const d = digestOf('tcp');
    await cache.set('r', d, { digest: d, size: 3, mediaType: 'application/octet-stream' });
    const admin = await adminClient(redis.socket, { password: 's3cret', database: 3 });
    t.after(() => { if (admin.isOpen) admin.destroy(); });
    // inmemory storage is this process's own: the derived prefix is unique to it (berth:<12 hex>:).
    assert.match(cache.prefix, /^berth:[0-9a-f]{12}:$/);
    assert.equal(await admin.hGet(`${cache.prefix}blobs::${d}`, 'size'), '3', 'written to db 3, under the prefix');
    assert.equal(await admin.exists(`blobs::${d}`), 0, 'not under Distribution\'s bare key');
    assert.ok(lines.some((l) => l.msg === 'redis blob-descriptor cache connected' && l.addr === `127.0.0.1:${port}`));
    assert.ok(!JSON.stringify(lines).includes('s3cret'), 'the password is never logged');
  });

  it('fails fast while down, logs the outage once and the recovery once, and heals by itself', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const { log, lines } = capture();
    const cache = new RedisDescriptorCache({ socket: { path: redis.socket }, maxBackoffMs: 200 }, log);
    t.after(() => cache.close());
    await waitHealthy(cache);
    const d = digestOf('x');
    await cache.set('r', d, { digest: d, size: 1, mediaType: 'application/octet-stream' });

    await redis.kill();
    await waitUntil('the cache to notice redis is down', () => !cache.healthy);
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) await assert.rejects(cache.get('r', d), { code: 'CACHE_UNAVAILABLE' });
    assert.ok(performance.now() - t0 < 500, 'rejections are immediate while disconnected');

    await redis.restart();
    await waitHealthy(cache);
    await cache.set('r', d, { digest: d, size: 1, mediaType: 'application/octet-stream' });   // fresh redis: empty
    assert.deepEqual(await cache.get('r', d), { digest: d, size: 1, mediaType: 'application/octet-stream' });
    const errors = lines.filter((l) => l.level >= 50);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0]!.msg, /unavailable/);
    assert.equal(lines.filter((l) => l.msg === 'redis blob-descriptor cache recovered').length, 1);
  });

  it('starts while redis is down without waiting, then picks it up', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    await redis.kill();
    const { log, lines } = capture();
    const cache = new RedisDescriptorCache({ socket: { path: redis.socket }, maxBackoffMs: 100 }, log);
    t.after(() => cache.close());
    await assert.rejects(cache.get(null, digestOf('a')), { code: 'CACHE_UNAVAILABLE' });
    await redis.restart();
    await waitHealthy(cache);
    assert.equal(await cache.get(null, digestOf('a')), undefined);
    assert.equal(lines.filter((l) => l.level >= 50).length, 1, 'the initial failure is logged once');
  });

  it('a hung redis is bounded by the read timeout', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const cache = new RedisDescriptorCache({ socket: { path: redis.socket }, readTimeoutMs: 100 }, silentLogger());
    t.after(() => cache.close());
    await waitHealthy(cache);
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      await assert.rejects(cache.get('r', digestOf('a')), { code: 'CACHE_TIMEOUT' });
      const ms = performance.now() - t0;
      assert.ok(ms >= 90 && ms < 1000, `took ${ms} ms`);
      assert.equal(cache.healthy, false);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
  });
});
