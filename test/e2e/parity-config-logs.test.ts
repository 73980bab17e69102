// The logs an nginx + registry:2 operator relies on (issue 15 point 16), from a real berth started from the built
// CLI: the access line carries what nginx's combined log does plus the route's repository and digest; the start
// line names the config file, the storage root and the URL; failed TLS handshakes are warnings, rate-limited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, type ServerProcess } from '../support/processes.js';
import { request } from '../support/http.js';
import { makeTestCert } from '../support/tls-certs.js';
import { waitUntil, withDeadline } from '../support/wait.js';

type Line = Record<string, any>;
const lines = (b: ServerProcess): Line[] => b.output().stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const completed = (b: ServerProcess, pred: (l: Line) => boolean) =>
  waitUntil('the request completed line', () => lines(b).find((l) => l.msg === 'request completed' && pred(l)), { timeoutMs: 10_000 });

test('access line: addr, host, user agent, method, path, status, bytes, duration, request id, repo and digest', async (t) => {
  const b = await startBerth();
  t.after(() => b.close());
  const start = await waitUntil('the start line', () => lines(b).find((l) => l.msg === 'listening'), { timeoutMs: 10_000 });
  assert.equal(start.url, b.url);
  assert.equal(start.root, b.root);
  assert.match(start.config, /gateway\.yml$/);

  const blob = Buffer.from('hello access log');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const put = await request(`${b.url}/v2/team/app/blobs/uploads/?digest=${digest}`, {
    method: 'POST', body: blob, headers: { 'Content-Type': 'application/octet-stream', 'User-Agent': 'docker/27.0 go/1.22', 'X-Request-Id': 'push-1' },
  });
  assert.equal(put.status, 201);
  const get = await request(`${b.url}/v2/team/app/blobs/${digest}`, { headers: { 'User-Agent': 'skopeo/1.13' } });
  assert.equal(get.status, 200);

  const push = await completed(b, (l) => l.reqId === 'push-1');
  assert.deepEqual(
    { method: push.method, path: push.path, status: push.status, bytesIn: push.bytesIn, addr: push.addr, host: push.host, userAgent: push.userAgent, repo: push.repo },
    { method: 'POST', path: '/v2/team/app/blobs/uploads/', status: 201, bytesIn: blob.length, addr: '127.0.0.1', host: b.host, userAgent: 'docker/27.0 go/1.22', repo: 'team/app' },
  );
  assert.equal(typeof push.durationMs, 'number');
  const pull = await completed(b, (l) => l.method === 'GET' && l.path.includes('/blobs/'));
  assert.equal(pull.digest, digest);
  assert.equal(pull.repo, 'team/app');
  assert.equal(pull.bytesOut, blob.length);
  assert.equal(pull.userAgent, 'skopeo/1.13');
  assert.equal(pull.level, 30);
});

test('failed TLS handshakes: a warning, at most one per 10 s per kind (five failures: one line); the server still serves', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tlslog-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cert = await makeTestCert();
  await writeFile(join(dir, 'c.crt'), cert.cert);
  await writeFile(join(dir, 'c.key'), cert.key);
  const b = await startBerth({
    configYaml: `listen: 127.0.0.1:0\ntls: { certificate: ${join(dir, 'c.crt')}, key: ${join(dir, 'c.key')} }\nregistry: { storage: { filesystem: { rootdirectory: ROOT } } }\n`,
  });
  t.after(() => b.close());
  assert.match(b.url, /^https:/);
  // A TLS record header followed by garbage: the handshake fails on the server's side.
  const garbage = async () => {
    const s = connect(Number(new URL(b.url).port), '127.0.0.1');
    s.on('error', () => undefined).resume();   // read the alert, so 'close' comes
    s.end(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00]));
    await withDeadline(new Promise<void>((resolve) => s.once('close', () => resolve())), 10_000, 'the server to close a failed handshake');
  };
  for (let i = 0; i < 5; i++) await garbage();
  const warned = await waitUntil('the tls warning', () => {
    const w = lines(b).filter((l) => l.msg === 'tls handshake failed');
    return w.length > 0 && w;
  }, { timeoutMs: 10_000 });
  assert.equal(warned.length, 1, 'rate-limited: one line for five failures within 10 s');
  assert.equal(warned[0]!.level, 40);
  assert.equal(warned[0]!.remoteAddress, '127.0.0.1');
  assert.ok(warned[0]!.code);
  // The server still serves (trusting clients are unaffected).
  const ok = await request(`${b.url}/v2/`, { ca: cert.cert, servername: 'localhost', rejectUnauthorized: false, fresh: true });
  assert.equal(ok.status, 200);
});
