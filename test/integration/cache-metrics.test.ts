// Blob-descriptor cache counters on the debug listener's /metrics, with real requests through the
// gateway: HEADs of a pushed blob move hits (the push's commit filled the cache) for the inmemory cache from
// the config, and for a redis cache against a real redis-server; with redis killed, lookups count as
// errors and every HEAD still answers from storage.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { createRegistryApp } from '../../src/registry/api/app.js';
import { RedisDescriptorCache } from '../../src/registry/cache/redis.js';
import { pushBlob, randomBlob } from '../support/oci-client.js';
import { request } from '../support/http.js';
import { redisSkip, startRedis } from '../support/redis-server.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

type T = { after(fn: () => unknown): void };

async function start(t: T, storageYaml: string, o: { redisSocket?: string } = {}): Promise<RunningServer> {
  const dir = await makeTempDir('berth-cache-metrics-');
  const text = `listen: "127.0.0.1:0"
registry:
  storage:
    filesystem: { rootdirectory: ${JSON.stringify(join(dir.path, 'data'))} }
    maintenance: { uploadpurging: { enabled: false } }
${storageYaml}
  http: { debug: { addr: "127.0.0.1:0" } }
`;
  const config = loadConfigFromString(text, join(dir.path, 'gateway.yml'));
  const log = silentLogger();
  // redis on a unix socket (the test server has no TCP port): the app gets the cache object directly.
  const registryApp = o.redisSocket
    ? await createRegistryApp(config.registry, { log, descriptorCache: new RedisDescriptorCache({ socket: { path: o.redisSocket }, maxBackoffMs: 100 }, log) })
    : undefined;
  const server = await startServer(config, log, { drainMs: 1000, registryApp });
  t.after(async () => { await server.close(); await dir.cleanup(); });
  return server;
}

/** Current values of berth_blob_descriptor_cache_lookups_total{cache=kind} by result, and errors_total by op. */
async function cacheCounters(server: RunningServer, kind: string) {
  const res = await request(`${server.debugUrl}/metrics`);
  const text = res.text();
  assert.equal(res.status, 200);
  const read = (name: string, label: string, value: string) =>
    Number(new RegExp(`^${name}\\{cache="${kind}",${label}="${value}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    hit: read('berth_blob_descriptor_cache_lookups_total', 'result', 'hit'),
    miss: read('berth_blob_descriptor_cache_lookups_total', 'result', 'miss'),
    error: read('berth_blob_descriptor_cache_lookups_total', 'result', 'error'),
    getErrors: read('berth_blob_descriptor_cache_errors_total', 'op', 'get'),
  };
}

const head = async (server: RunningServer, repo: string, digest: string) =>
  (await request(`${server.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status;

/** A blob pushed, then HEADed `n` times, then an unknown blob once: exactly n hits (the commit remembered
 *  the blob) and one miss (nothing negative is cached). */
async function headsMoveHits(server: RunningServer, kind: string, n: number) {
  const digest = await pushBlob(server.url, `${kind}/repo`, randomBlob(200));
  const before = await cacheCounters(server, kind);
  for (let i = 0; i < n; i++) assert.equal(await head(server, `${kind}/repo`, digest), 200);
  assert.equal(await head(server, `${kind}/repo`, `sha256:${'0'.repeat(64)}`), 404);
  const after = await cacheCounters(server, kind);
  // one lookup per HEAD: every HEAD of the pushed blob a hit (its upload's commit filled the cache with what
  // storage confirmed), the unknown one a miss
  assert.deepEqual(
    { hit: after.hit - before.hit, miss: after.miss - before.miss, error: after.error - before.error },
    { hit: n, miss: 1, error: 0 });
  return { digest, after };
}

test('inmemory cache (from the config): HEADs move the hit counter', async (t) => {
  const server = await start(t, '    cache: { blobdescriptor: inmemory }');
  await headsMoveHits(server, 'inmemory', 5);
  const m = (await request(`${server.debugUrl}/metrics`)).text();
  assert.match(m, /^# TYPE berth_blob_descriptor_cache_lookups_total counter$/m);
  assert.doesNotMatch(m, /cache="redis"/);
});

test('no cache configured: no cache samples', async (t) => {
  const server = await start(t, '');
  const digest = await pushBlob(server.url, 'plain/repo', randomBlob(10));
  assert.equal(await head(server, 'plain/repo', digest), 200);
  assert.deepEqual(await cacheCounters(server, 'inmemory'), { hit: 0, miss: 0, error: 0, getErrors: 0 });
});

test('redis cache: HEADs move the hit counter; with redis killed lookups are errors and HEADs still answer', { skip: redisSkip() }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const server = await start(t, '', { redisSocket: redis.socket });
  // the cache connects in the background; until then lookups are errors (served from storage)
  const warm = await pushBlob(server.url, 'redis/warm', randomBlob(20));
  await waitUntil('the redis cache to answer a lookup', async () => {
    if ((await cacheCounters(server, 'redis')).hit > 0) return true;
    assert.equal(await head(server, 'redis/warm', warm), 200);
    return false;
  }, { intervalMs: 0 });
  const { digest, after } = await headsMoveHits(server, 'redis', 5);

  await redis.kill();
  for (let i = 0; i < 3; i++) assert.equal(await head(server, 'redis/repo', digest), 200);
  const down = await cacheCounters(server, 'redis');
  assert.ok(down.error >= after.error + 3, `lookups failed while redis was down (errors: ${down.error - after.error})`);
  assert.equal(down.getErrors - after.getErrors, down.error - after.error);
  assert.equal(down.hit, after.hit);
});
