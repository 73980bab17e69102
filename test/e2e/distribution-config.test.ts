// Acceptance for Distribution config.yml support (issue #5): Distribution's own sample config, with TLS,
// htpasswd and the operations sections added and paths adjusted, starts the built CLI unchanged
// (`berth serve --config config.yml`) and serves skopeo push and pull over TLS; the one warning line
// lists what berth ignores; http.headers is on the responses; the redis blob-descriptor cache (a real
// redis-server), the notification endpoint (a real HTTP receiver), the storagedriver health check and
// the debug listener all work. Also: the same with TLS and htpasswd given only as REGISTRY_* variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { once, EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createClient } from 'redis';
import { writeDevCert, type DevCertFiles } from '../../src/cli/cert-command.js';
import { createSandbox, run, skipUnless } from '../support/clients.js';
import { writeOciLayout, type LayerSpec } from '../support/images.js';
import { BERTH_MAIN, REPO_ROOT } from '../support/processes.js';
import { redisSkip, startRedis } from '../support/redis-server.js';
import { forwardTcpToUnix } from '../support/tcp-forward.js';
import { DISTRIBUTION_CONFIG_EXAMPLE } from '../support/distribution-sample.js';
import { request } from '../support/http.js';
import { nextEvent, waitUntil, withDeadline } from '../support/wait.js';

type T = { after(fn: () => unknown): void };
const USER = 'dist-user';
const PASSWORD = 'dist-pass-' + randomBytes(4).toString('hex');
const LAYERS: LayerSpec[] = [{ size: 64 * 1024, kind: 'random' }, { size: 128 * 1024, kind: 'text' }];

const DISTRIBUTION_SAMPLE = DISTRIBUTION_CONFIG_EXAMPLE;   // test/support/distribution-sample.ts

interface Setup { dir: string; certs: DevCertFiles; htpasswd: string }

async function workDir(t: T): Promise<string> {
  const dir = join(tmpdir(), `berth-distcfg-e2e-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

async function setup(t: T): Promise<Setup> {
  const dir = await workDir(t);
  const certs = await writeDevCert(join(dir, 'certs'), []);
  const htpasswd = join(dir, 'htpasswd');
  await run('htpasswd', ['-Bbc', htpasswd, USER, PASSWORD]);
  return { dir, certs, htpasswd };
}

interface Berth { url: string; host: string; pid: number; stdout(): string; lines(): Record<string, any>[] }

/** `node dist/bundle/main.js serve --config FILE`; resolves on the "listening on" line; SIGTERM (then SIGKILL) on after. */
async function serve(t: T, file: string, env: NodeJS.ProcessEnv = {}): Promise<Berth> {
  assert.ok(existsSync(BERTH_MAIN), `${BERTH_MAIN} is missing: run \`npm run build\` first (npm test does)`);
  const child: ChildProcess = spawn(process.execPath, [BERTH_MAIN, 'serve', '--config', file], {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, ...env },
  });
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  });
  let stdout = ''; let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const url = await withDeadline(new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      const m = /listening on (https?:\/\/\S+)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    void exited.then(([code]) => reject(new Error(`berth exited with ${code}\n${stdout}\n${stderr}`)));
  }), 20_000, "berth's listening line", () => `${stdout}\n${stderr}`);
  const lines = () => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
  return { url, host: new URL(url).host, pid: child.pid!, stdout: () => stdout, lines };
}

const AUTH = { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

/** A real HTTP endpoint that records notification envelopes (Distribution's format) and answers 200. */
async function notificationReceiver(t: T) {
  const events: Record<string, any>[] = [];
  const emitter = new EventEmitter();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => { body += c; });
    req.on('end', () => {
      for (const e of (JSON.parse(body) as { events: Record<string, any>[] }).events) { events.push(e); emitter.emit('event', e); }
      res.writeHead(200).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    contentTypes: [] as string[],
    /** Resolves with the first event (already received or future) matching; rejects after 30 s. */
    async waitFor(what: string, match: (e: Record<string, any>) => boolean): Promise<Record<string, any>> {
      const found = events.find(match);
      if (found) return found;
      const [e] = await nextEvent<[Record<string, any>]>(emitter, 'event', `notification event: ${what}`,
        { timeoutMs: 30_000, match, detail: () => `received: ${JSON.stringify(events)}` });
      return e;
    },
  };
}

test("Distribution's sample config.yml with TLS, htpasswd, redis, notifications, health and debug: skopeo push and pull",
  { skip: skipUnless('skopeo', 'htpasswd', 'redis-server') || redisSkip() }, async (t) => {
    const s = await setup(t);
    const redis = await startRedis();
    t.after(() => redis.close());
    const redisTcp = await forwardTcpToUnix(redis.socket);
    t.after(() => redisTcp.close());
    const receiver = await notificationReceiver(t);

    // The sample with paths adjusted (rootdirectory, addr, htpasswd path), the cache pointed at redis,
    // and the sections the issue names added; nothing else changed.
    const text = DISTRIBUTION_SAMPLE
      .replace('rootdirectory: /var/lib/registry', `rootdirectory: ${join(s.dir, 'data')}`)
      .replace('blobdescriptor: inmemory', 'blobdescriptor: redis')
      .replace('addr: :5000', 'addr: 127.0.0.1:0')
      .replace('path: /etc/registry', `path: ${s.htpasswd}`)
      .replace('  tag:\n', [
        '  delete:',
        '    enabled: true',
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: true',
        '      age: 168h',
        '      interval: 24h',
        '      dryrun: false',
        '  tag:', ''].join('\n'))
      .replace('  headers:\n', [
        '  tls:',
        `    certificate: ${s.certs.certificate}`,
        `    key: ${s.certs.key}`,
        '  debug:',
        '    addr: 127.0.0.1:0',
        '    prometheus:',
        '      enabled: true',
        '      path: /metrics',
        '  headers:', ''].join('\n'))
      + [
        'redis:',
        `  addr: ${redisTcp.addr}`,
        '  dialtimeout: 1s',
        'notifications:',
        '  endpoints:',
        '    - name: e2e-listener',
        `      url: ${receiver.url}`,
        '      timeout: 2s',
        '      threshold: 5',
        '      backoff: 1s',
        '',
      ].join('\n');
    for (const edit of [`certificate: ${s.certs.certificate}`, 'dryrun: false\n  tag:', 'blobdescriptor: redis', `path: ${s.htpasswd}`, 'addr: 127.0.0.1:0\n']) {
      assert.ok(text.includes(edit), `edit applied: ${edit}`);
    }
    const file = join(s.dir, 'config.yml');
    await writeFile(file, text);

    const berth = await serve(t, file);
    assert.match(berth.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = await readFile(s.certs.ca, 'utf8');

    // One warning line, listing exactly what berth does not honour.
    const warns = berth.lines().filter((l) => l.level === 40);
    assert.deepEqual(warns.map((l) => l.msg), [
      `${file}: ignoring 1 Distribution setting berth does not honour: storage.tag (the tag lookup concurrency is not configurable)`,
    ]);
    assert.ok(berth.lines().every((l) => l.service === 'registry'), 'log.fields on every line');
    await waitUntil('the JSON listening line', () => berth.lines().some((l) => l.msg === 'listening'), { timeoutMs: 15_000, intervalMs: 25 });   // pino may flush after the plain line
    const listening = berth.lines().find((l) => l.msg === 'listening');
    assert.deepEqual([listening?.tls, listening?.auth, listening?.storage], [true, 'htpasswd', 'filesystem']);

    // http.headers on the challenge and on authenticated answers.
    const challenge = await request(`${berth.url}/v2/`, { ca });
    assert.equal(challenge.status, 401);
    assert.deepEqual(challenge.headerValues('www-authenticate'), ['Basic realm="basic-realm"']);
    assert.deepEqual(challenge.headerValues('x-content-type-options'), ['nosniff']);
    const base = await request(`${berth.url}/v2/`, { ca, headers: AUTH });
    assert.equal(base.status, 200);
    assert.deepEqual(base.headerValues('x-content-type-options'), ['nosniff']);

    // skopeo push and pull over verified TLS with the htpasswd user.
    const sb = await createSandbox([]);
    t.after(() => sb.cleanup());
    const work = await workDir(t);
    const img = await writeOciLayout(join(work, 'src'), { layers: LAYERS });
    const repo = 'e2e/distribution-config';
    const ref = `docker://${berth.host}/${repo}:v1`;
    const creds = `${USER}:${PASSWORD}`;
    const df = join(work, 'digest');
    await sb.skopeo(['copy', '--dest-tls-verify=true', '--dest-cert-dir', s.certs.trustDir, '--dest-creds', creds, '--digestfile', df, img.ref, ref]);
    assert.equal((await readFile(df, 'utf8')).trim(), img.manifestDigest);
    const out = join(work, 'out');
    await sb.skopeo(['copy', '--src-tls-verify=true', '--src-cert-dir', s.certs.trustDir, '--src-creds', creds, ref, `dir:${out}`]);
    assert.ok((await readFile(join(out, 'manifest.json'))).equals(img.manifestBytes), 'the manifest comes back byte for byte');
    for (const l of img.layers) {
      assert.ok((await readFile(join(out, l.digest.slice(7)))).equals(await readFile(img.blobs.get(l.digest)!)), l.digest);
    }
    const manifest = await request(`${berth.url}/v2/${repo}/manifests/v1`, { ca, headers: AUTH, method: 'HEAD' });
    assert.deepEqual(manifest.headerValues('x-content-type-options'), ['nosniff']);

    // The notification endpoint received the manifest push (Distribution's envelope).
    const pushed = await receiver.waitFor('push of v1', (e) => e.action === 'push' && e.target?.tag === 'v1');
    assert.equal(pushed.target.repository, repo);
    assert.equal(pushed.target.digest, img.manifestDigest);

    // The redis blob-descriptor cache holds the layers, under Distribution's key shapes behind berth's
    // per-storage prefix (registry.redis.keyprefix, default berth:<hash of the storage root>:).
    const admin = createClient({ socket: { path: redis.socket, reconnectStrategy: false } });
    admin.on('error', () => {});
    await admin.connect();
    t.after(() => { if (admin.isOpen) admin.destroy(); });   // after hooks run in order: redis may be gone already
    let keysSeen: string[] = [];
    for (const l of img.layers) {
      await waitUntil(`redis <prefix>blobs::${l.digest}`, async () => {
        keysSeen = await admin.keys(`berth:*blobs::${l.digest}`);   // the global entry and the repository's
        const global = keysSeen.filter((k) => /^berth:[0-9a-f]{12}:blobs::/.test(k));
        return global.length === 1 && (await admin.hGet(global[0]!, 'size')) === String(l.size);
      }, { timeoutMs: 15_000, intervalMs: 25, detail: () => keysSeen.join(' ') });
    }

    // The debug listener: health (the storagedriver check is on and passing) and Prometheus metrics.
    const debugUrl = berth.lines().find((l) => l.msg === 'debug server listening')?.url as string;
    assert.match(debugUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await request(`${debugUrl}/debug/health`);
    assert.deepEqual([health.status, health.json()], [200, {}]);
    assert.deepEqual(health.headerValues('x-content-type-options'), [], 'the debug listener is not public');
    const metrics = await request(`${debugUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.text(), /berth_http_requests_total\{[^}]*route="manifest"[^}]*\} \d+/);

    // storage.delete.enabled: the manifest can be deleted.
    const del = await request(`${berth.url}/v2/${repo}/manifests/${img.manifestDigest}`, { ca, headers: AUTH, method: 'DELETE' });
    assert.equal(del.status, 202);
    assert.equal((await request(`${berth.url}/v2/${repo}/manifests/v1`, { ca, headers: AUTH })).status, 404);
    await receiver.waitFor('delete of the manifest', (e) => e.action === 'delete' && e.target?.digest === img.manifestDigest);
  });

test('a minimal config.yml with TLS and htpasswd from REGISTRY_* variables only', { skip: skipUnless('htpasswd') }, async (t) => {
  const s = await setup(t);
  const file = join(s.dir, 'config.yml');
  await writeFile(file, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${join(s.dir, 'data')}\nhttp:\n  addr: :5000\n`);
  const berth = await serve(t, file, {
    REGISTRY_HTTP_ADDR: '127.0.0.1:0',
    REGISTRY_HTTP_TLS_CERTIFICATE: s.certs.certificate,
    REGISTRY_HTTP_TLS_KEY: s.certs.key,
    REGISTRY_AUTH: 'htpasswd',
    REGISTRY_AUTH_HTPASSWD_PATH: s.htpasswd,
    REGISTRY_AUTH_HTPASSWD_REALM: 'Env Realm',
    'REGISTRY_HTTP_HEADERS_STRICT-TRANSPORT-SECURITY': '[max-age=31536000]',
  });
  assert.match(berth.url, /^https:\/\//);
  const ca = await readFile(s.certs.ca, 'utf8');
  const challenge = await request(`${berth.url}/v2/`, { ca });
  assert.equal(challenge.status, 401);
  assert.deepEqual(challenge.headerValues('www-authenticate'), ['Basic realm="Env Realm"']);
  assert.deepEqual(challenge.headerValues('strict-transport-security'), ['max-age=31536000']);
  assert.equal((await request(`${berth.url}/v2/`, { ca, headers: AUTH })).status, 200);
  assert.deepEqual(berth.lines().filter((l) => l.level === 40), [], 'nothing ignored');
});
