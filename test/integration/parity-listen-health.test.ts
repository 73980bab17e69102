// Drop-in parity, the process side (issue 15, points 13, 14, 15), on real berth servers: `:port` listens on IPv4
// and IPv6 as Go's `:5000` does; sidecar mode says once at start that a `registry.storage` section is unused;
// the storage health check fails while the filesystem root is a regular file (and `/`, the load balancers'
// probe, answers 503 then, as Distribution's health handler does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { loadConfigFromString } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { request } from '../support/http.js';
import { REPO_ROOT } from '../support/processes.js';
import { makeTempDir } from '../support/tmp.js';
import { waitUntil, withDeadline } from '../support/wait.js';

type T = { after(fn: () => unknown): void };

async function gateway(t: T, yaml: string, prepare?: (dir: string) => Promise<void>) {
  const dir = await makeTempDir('berth-parity-');
  t.after(() => dir.cleanup());
  await prepare?.(dir.path);
  const config = loadConfigFromString(yaml.replaceAll('$DIR', dir.path), join(dir.path, 'gateway.yml'));
  const server = await startServer(config, silentLogger(), { drainMs: 1000 });
  t.after(() => server.close());
  return { server, dir: dir.path };
}

const hasIPv6Loopback = Object.values(networkInterfaces()).flat().some((i) => i?.family === 'IPv6' && i.address === '::1');

test('listen ":0" (empty host) answers on IPv4 and IPv6 loopback, as Go\'s ":5000" listens', { skip: hasIPv6Loopback ? false : 'no ::1' }, async (t) => {
  const { server } = await gateway(t, 'listen: ":0"\nregistry: { storage: { inmemory: {} } }\n');
  const port = new URL(server.url).port;
  assert.match(server.url, /^http:\/\/\[::\]:\d+$/);
  for (const host of ['127.0.0.1', '[::1]']) {
    const r = await request(`http://${host}:${port}/v2/`);
    assert.equal(r.status, 200, host);
  }
  // An explicit IPv4 wildcard stays IPv4 only (as Go's "0.0.0.0:5000").
  const { server: v4 } = await gateway(t, 'listen: "0.0.0.0:0"\nregistry: { storage: { inmemory: {} } }\n');
  const v4port = new URL(v4.url).port;
  assert.equal((await request(`http://127.0.0.1:${v4port}/v2/`)).status, 200);
  await assert.rejects(request(`http://[::1]:${v4port}/v2/`, { timeoutMs: 5000, fresh: true }), /ECONNREFUSED/);
});

test('sidecar mode with a registry.storage section: one warning at start naming the key and the upstream', async (t) => {
  const dir = await makeTempDir('berth-parity-sidecar-');
  t.after(() => dir.cleanup());
  const file = join(dir.path, 'gateway.yml');
  await writeFile(file, [
    'listen: "127.0.0.1:0"',
    'upstreams: { v2: "http://127.0.0.1:9" }',
    'registry:',
    `  storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir.path, 'data'))} } }`,
    '',
  ].join('\n'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'serve', '--config', file], {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => { if (child.exitCode === null) child.kill('SIGKILL'); await withDeadline(exited, 10_000, 'berth exits'); });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
  await waitUntil('berth listening', () => out.includes('"listening"') || child.exitCode !== null, { timeoutMs: 30_000, detail: () => out.slice(-2000) });
  assert.equal(child.exitCode, null, out);
  const warned = out.split('\n').filter((l) => l.includes('registry.storage  unused'));
  assert.equal(warned.length, 1, out);
  const line = JSON.parse(warned[0]!);
  assert.equal(line.level, 40);   // pino's warn
  assert.match(line.msg, new RegExp(`^${file.replaceAll('.', '\\.')}:4:\\d+  registry\\.storage  unused: upstreams\\.v2 is http://127\\.0\\.0\\.1:9 \\(sidecar mode\\)`));
  // Embedded mode with the same section, and sidecar mode without one: no such warning.
  for (const text of ['registry: { storage: { inmemory: {} } }\n', 'upstreams: { v2: "http://127.0.0.1:9" }\n']) {
    const w: string[] = [];
    loadConfigFromString(text, file, {}, w);
    assert.deepEqual(w.filter((x) => x.includes('registry.storage')), [], text);
  }
  const fromEnv: string[] = [];
  loadConfigFromString('upstreams: { v2: "http://127.0.0.1:9" }\n', file, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/srv' }, fromEnv);
  assert.equal(fromEnv.filter((x) => x.includes('registry.storage  unused')).length, 1, 'a section from the environment counts too');
});

test('/ answers 200 without credentials when auth is on (while /v2/ challenges), and in sidecar mode with the upstream down', async (t) => {
  const { server } = await gateway(t, 'listen: "127.0.0.1:0"\nregistry: { storage: { inmemory: {} } }\nauth: { htpasswd: { realm: R, path: $DIR/htpasswd } }\n',
    async (dir) => writeFile(join(dir, 'htpasswd'), `alice:${await bcrypt.hash('secret', 4)}\n`));
  const root = await request(`${server.url}/`);
  assert.deepEqual([root.status, root.headers['cache-control'], root.headers['www-authenticate'], root.text()], [200, 'no-cache', undefined, '']);
  assert.equal((await request(`${server.url}/v2/`)).status, 401);
  const { server: sidecar } = await gateway(t, 'listen: "127.0.0.1:0"\nupstreams: { v2: "http://127.0.0.1:9" }\n');
  assert.equal((await request(`${sidecar.url}/`)).status, 200);
  assert.equal((await request(`${sidecar.url}/v2/`)).status, 502);
});

test('storagedriver health check: a root that is a regular file fails (503 on /v2/ and on /); a directory again passes', async (t) => {
  const { server, dir } = await gateway(t, `listen: "127.0.0.1:0"
registry:
  storage:
    filesystem: { rootdirectory: $DIR/root }
    maintenance: { uploadpurging: { enabled: false } }
  health: { storagedriver: { enabled: true, interval: 20ms, threshold: 1 } }
  http: { debug: { addr: "127.0.0.1:0" } }
`);
  const root = join(dir, 'root');
  const status = async (path: string) => (await request(`${server.url}${path}`)).status;
  assert.equal(await status('/v2/'), 200);
  assert.equal(await status('/'), 200);
  await rm(root, { recursive: true, force: true });
  await writeFile(root, 'not a directory');
  await waitUntil('503 with a file as the root', async () => (await status('/v2/')) === 503, { timeoutMs: 5000, intervalMs: 20 });
  const probe = await request(`${server.url}/`);
  assert.deepEqual([probe.status, probe.json().errors[0].code], [503, 'UNAVAILABLE']);
  const h = await request(`${server.debugUrl}/debug/health`);
  assert.deepEqual([h.status, h.json()], [503, { storagedriver_filesystem: 'storage root is not a directory' }]);
  await rm(root);   // missing: an empty store, healthy
  await waitUntil('healthy again', async () => (await status('/')) === 200, { timeoutMs: 5000, intervalMs: 20 });
  assert.equal(await status('/v2/'), 200);
});
