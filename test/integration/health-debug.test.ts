// Health checks (file, tcp, http, storagedriver) and the debug listener, in-process on real sockets:
// a failing check turns every /v2 request into 503 UNAVAILABLE naming the check only (`file_0`, never its
// path, URI or address), /debug/health shows the reason, and recovery follows; /metrics counters move with real requests; the public port has no /debug.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfigFromString } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { startServer } from '../../src/gateway/server.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

type T = { after(fn: () => Promise<void> | void): void };

async function start(t: T, registryYaml: string) {
  const dir = await makeTempDir('berth-health-');
  t.after(() => dir.cleanup());
  const text = `listen: "127.0.0.1:0"\nregistry:\n${registryYaml.replaceAll('$DIR', dir.path)}`;
  const config = loadConfigFromString(text, join(dir.path, 'gateway.yml'));
  const server = await startServer(config, silentLogger(), { drainMs: 1000 });
  t.after(() => server.close());
  return { server, dir: dir.path };
}

/** Polls `fn` every 20 ms until it returns true; fails after `ms`. */
const until = (what: string, fn: () => Promise<boolean>, ms = 5000) => waitUntil(what, fn, { timeoutMs: ms, intervalMs: 20 });

const v2Status = (url: string) => async () => (await request(`${url}/v2/`)).status;

test('file check: the file appears → 503 UNAVAILABLE naming the check; removed → healthy again', async (t) => {
  const { server, dir } = await start(t, `  storage: { inmemory: {} }
  health: { file: [{ file: $DIR/maintenance, interval: 20ms }] }
  http: { debug: { addr: "127.0.0.1:0" } }
`);
  const flag = join(dir, 'maintenance');
  assert.equal(await v2Status(server.url)(), 200);
  await writeFile(flag, '');
  await until('503 on /v2/', async () => (await v2Status(server.url)()) === 503);
  for (const path of ['/v2/', '/v2/a/b/tags/list', '/v2/a/manifests/latest']) {
    const r = await request(`${server.url}${path}`);
    assert.equal(r.status, 503, path);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.deepEqual(r.json(), { errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: { checks: ['file_0'] } }] });
  }
  const head = await request(`${server.url}/v2/`, { method: 'HEAD' });
  assert.equal(head.status, 503);
  assert.equal(head.text(), '');
  const h = await request(`${server.debugUrl}/debug/health`);
  assert.equal(h.status, 503);
  assert.deepEqual(h.json(), { file_0: `file exists: ${flag}` });
  const notV2 = await request(`${server.url}/elsewhere`);
  assert.equal(notV2.status, 404);   // not a registry path: unchanged
  await unlink(flag);
  await until('200 on /v2/', async () => (await v2Status(server.url)()) === 200);
  assert.deepEqual((await request(`${server.debugUrl}/debug/health`)).json(), {});
});

test('tcp check: healthy while the server listens; after it stops, 503 once threshold failures are reached', async (t) => {
  const tcp = createTcpServer((s) => s.end());
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const { port } = tcp.address() as AddressInfo;
  t.after(() => { tcp.close(); });
  const { server } = await start(t, `  storage: { inmemory: {} }
  health: { tcp: [{ addr: "127.0.0.1:${port}", timeout: 1s, interval: 20ms, threshold: 2 }] }
`);
  // The first run connects; several more runs pass while we watch.
  for (let i = 0; i < 5; i++) assert.equal(await v2Status(server.url)(), 200);
  await new Promise<void>((r) => tcp.close(() => r()));
  await until('503 after the listener closed', async () => (await v2Status(server.url)()) === 503);
  const r = await request(`${server.url}/v2/`);
  assert.deepEqual(r.json().errors[0].detail, { checks: ['tcp_0'] });
  assert.ok(!r.text().includes(String(port)), r.text());
});

test('http check: HEAD answered 500 → 503 with the status; answered 200 → healthy', async (t) => {
  let status = 500;
  const seen: string[] = [];
  const upstream = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers['x-check'] ?? ''}`);
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { upstream.close(() => r()); upstream.closeAllConnections(); }));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/healthz?deep=1`;
  const { server } = await start(t, `  storage: { inmemory: {} }
  health: { http: [{ uri: "${url}", headers: { X-Check: [yes] }, timeout: 1s, interval: 20ms, threshold: 1 }] }
  http: { debug: { addr: "127.0.0.1:0" } }
`);
  await until('503 while the upstream answers 500', async () => (await v2Status(server.url)()) === 503);
  const shown = url.replace('deep=1', 'deep=***');
  assert.deepEqual((await request(`${server.debugUrl}/debug/health`)).json(), { http_0: `HEAD ${shown}: downstream service returned unexpected status: 500` });
  assert.deepEqual((await request(`${server.url}/v2/`)).json().errors[0].detail, { checks: ['http_0'] });
  status = 200;
  await until('200 once the upstream answers 200', async () => (await v2Status(server.url)()) === 200);
  assert.equal(seen[0], 'HEAD /healthz?deep=1 yes');
});

test('storagedriver check: a missing root is healthy, a root that cannot be listed (ELOOP) is not', async (t) => {
  const { server, dir } = await start(t, `  storage:
    filesystem: { rootdirectory: $DIR/root }
    maintenance: { uploadpurging: { enabled: false } }
  health: { storagedriver: { enabled: true, interval: 20ms, threshold: 1 } }
  http: { debug: { addr: "127.0.0.1:0" } }
`);
  const root = join(dir, 'root');
  await rm(root, { recursive: true, force: true });
  // Several check runs see no root at all: still healthy.
  for (let i = 0; i < 5; i++) assert.equal(await v2Status(server.url)(), 200);
  await symlink(root, root);   // a symlink to itself: every access fails with ELOOP
  await until('503 with the driver error', async () => (await v2Status(server.url)()) === 503);
  const h = await request(`${server.debugUrl}/debug/health`);
  assert.equal(h.status, 503);
  assert.deepEqual(Object.keys(h.json()), ['storagedriver_filesystem']);
  await unlink(root);
  await until('healthy again', async () => (await request(`${server.debugUrl}/debug/health`)).status === 200);
});

test('debug listener: /metrics counters move with real requests, /debug/vars; the public port serves none of it', async (t) => {
  const { server } = await start(t, `  storage: { inmemory: {} }
  http: { debug: { addr: "127.0.0.1:0" } }
`);
  assert.ok(server.debugUrl);
  const metric = async (line: RegExp) => {
    const m = await request(`${server.debugUrl}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'] as string, /^text\/plain/);
    return line.exec(m.text())?.[1];
  };
  const base = /^berth_http_requests_total\{method="GET",route="base",status="200"\} (\d+)$/m;
  assert.equal(await metric(base), undefined);
  await request(`${server.url}/v2/`);
  await request(`${server.url}/v2/`);
  assert.equal(await request(`${server.url}/v2/no/such/tags/list`).then((r) => r.status), 404);
  const body = Buffer.from('hello metrics');
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const up = await request(`${server.url}/v2/m/blobs/uploads/?digest=${digest}`, { method: 'POST', body });
  assert.equal(up.status, 201);

  await until('request counters', async () => (await metric(base)) === '2');
  assert.equal(await metric(/^berth_http_requests_total\{method="GET",route="tags",status="404"\} (\d+)$/m), '1');
  assert.equal(await metric(/^berth_http_request_bytes_total\{method="POST",route="blob_upload"\} (\d+)$/m), String(body.length));
  assert.ok(Number(await metric(/^berth_http_response_bytes_total\{method="GET",route="tags"\} (\d+)$/m)) > 0);
  assert.equal(await metric(/^berth_http_request_duration_seconds_count\{method="POST",route="blob_upload"\} (\d+)$/m), '1');
  assert.equal(await metric(/^berth_blob_upload_session_duration_seconds_count (\d+)$/m), '1');
  assert.equal(await metric(/^berth_blob_upload_committed_bytes_total (\d+)$/m), String(body.length));
  assert.ok(Number(await metric(/^berth_storage_operation_duration_seconds_count\{driver="inmemory",op="[a-zA-Z.]+",outcome="ok"\} (\d+)$/m)) > 0);
  assert.ok(await metric(/^(berth_process_resident_memory_bytes) /m));

  const vars = await request(`${server.debugUrl}/debug/vars`);
  assert.equal(vars.status, 200);
  const v = vars.json();
  assert.equal(v.pid, process.pid);
  assert.ok(v.memory.rss > 0 && v.uptimeSeconds >= 0);
  assert.deepEqual(v.notifications, { endpoints: [] });   // no notifications configured (notification-ops.test.ts has endpoints)
  const health = await request(`${server.debugUrl}/debug/health`);
  assert.deepEqual([health.status, health.json()], [200, {}]);
  assert.equal((await request(`${server.debugUrl}/nothing`)).status, 404);

  for (const path of ['/metrics', '/debug/health', '/debug/vars', '/debug/pprof/']) {
    assert.equal((await request(`${server.url}${path}`)).status, 404, path);
  }
});

test('no http.debug section: no debug listener', async (t) => {
  const { server } = await start(t, '  storage: { inmemory: {} }\n');
  assert.equal(server.debugUrl, undefined);
});

test('debug addr ":port" (every address, as Go\'s): one listener answering on 127.0.0.1 and ::1', async (t) => {
  const { server } = await start(t, `  storage: { inmemory: {} }
  http: { debug: { addr: ":0" } }
`);
  const port = new URL(server.debugUrl!).port;
  for (const host of ['127.0.0.1', '[::1]']) {
    const r = await request(`http://${host}:${port}/debug/health`);
    assert.equal(r.status, 200, host);
    assert.deepEqual(r.json(), {});
  }
});
