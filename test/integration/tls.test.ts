import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir, rename } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createTlsManager, TlsError } from '../../src/gateway/tls.js';
import { silentLogger } from '../../src/log/logger.js';
import { captureLog, makeTestCert, type TestCert } from '../support/tls-certs.js';
import { nextEvent, withDeadline } from '../support/wait.js';

const [A, B, C] = await Promise.all([makeTestCert(), makeTestCert(), makeTestCert()]);
const CA = [A.cert, B.cert, C.cert];

async function tempDir(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writePair(dir: string, c: TestCert): Promise<{ certificate: string; key: string }> {
  const certificate = join(dir, 'domain.crt');
  const key = join(dir, 'domain.key');
  await writeFile(certificate, c.cert);
  await writeFile(key, c.key);
  return { certificate, key };
}

async function startServer(t: { after(fn: () => unknown): void }, opts: https.ServerOptions): Promise<{ server: https.Server; port: number }> {
  const server = https.createServer(opts, (req, res) => { req.resume(); res.end('ok'); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { server, port: (server.address() as AddressInfo).port };
}

/** One fresh handshake; resolves with the socket's negotiated details, then closes it. */
async function handshake(port: number, opts: tls.ConnectionOptions = {}) {
  const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: CA, ...opts });
  try {
    await withDeadline(once(sock, 'secureConnect'), 10_000, 'the TLS handshake');
    return { fingerprint256: sock.getPeerCertificate().fingerprint256, protocol: sock.getProtocol(), alpn: sock.alpnProtocol };
  } finally {
    sock.destroy();
  }
}

/** A GET through `agent` (node:https: the test asserts on the socket it used); bounded. */
function get(agent: https.Agent, port: number): Promise<{ body: string; reused: boolean; fingerprint256: string }> {
  return withDeadline(new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername: 'localhost', path: '/', agent, ca: CA }, (res) => {
      const sock = res.socket as tls.TLSSocket;
      const fingerprint256 = sock.getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ body, reused: req.reusedSocket, fingerprint256 }));
    });
    req.on('error', reject);
  }), 10_000, `GET https://127.0.0.1:${port}/`);
}

test('serves the configured certificate with TLS 1.2+ and ALPN http/1.1', async (t) => {
  const files = await writePair(await tempDir(t), A);
  const mgr = createTlsManager({ ...files, log: silentLogger() });
  t.after(() => mgr.close());
  const opts = mgr.serverOptions();
  assert.equal(opts.minVersion, 'TLSv1.2');
  assert.deepEqual(opts.ALPNProtocols, ['http/1.1']);
  const { server, port } = await startServer(t, opts);
  mgr.attach(server);

  const h = await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(h.fingerprint256, A.fingerprint256);
  assert.equal(h.alpn, 'http/1.1');
  assert.equal((await handshake(port, { minVersion: 'TLSv1.3' })).protocol, 'TLSv1.3');
  assert.equal((await handshake(port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
});

test('a TLS 1.1 client is rejected by the server', async (t) => {
  const files = await writePair(await tempDir(t), A);
  const mgr = createTlsManager({ ...files, log: silentLogger() });
  const { server, port } = await startServer(t, mgr.serverOptions());
  const serverSaw = nextEvent(server, 'tlsClientError', 'the server to refuse the TLS 1.1 handshake');
  await assert.rejects(handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }));
  const [err] = await serverSaw;
  assert.match(String(err.code ?? err.message), /UNSUPPORTED_PROTOCOL|VERSION/i);
});

test('minimumtls tls1.3 rejects TLS 1.2 and accepts TLS 1.3', async (t) => {
  const files = await writePair(await tempDir(t), A);
  const mgr = createTlsManager({ ...files, minimumtls: 'tls1.3', log: silentLogger() });
  const { server, port } = await startServer(t, mgr.serverOptions());
  const serverSaw = nextEvent(server, 'tlsClientError', 'the server to refuse the TLS 1.2 handshake');
  await assert.rejects(handshake(port, { maxVersion: 'TLSv1.2' }));
  await serverSaw;
  assert.equal((await handshake(port)).protocol, 'TLSv1.3');
});

test('reload swaps the certificate for new handshakes and keeps keep-alive connections open', async (t) => {
  const files = await writePair(await tempDir(t), A);
  const cap = captureLog();
  const mgr = createTlsManager({ ...files, log: cap.log });
  t.after(() => mgr.close());
  const { server, port } = await startServer(t, mgr.serverOptions());
  mgr.attach(server);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());

  const first = await get(agent, port);
  assert.deepEqual([first.body, first.reused, first.fingerprint256], ['ok', false, A.fingerprint256]);

  await writePair(join(files.certificate, '..'), B);
  await mgr.reload();
  assert.ok(cap.lines.some((l) => l.msg === 'tls certificate loaded' && l.fingerprint256 === B.fingerprint256));

  const second = await get(agent, port);   // same TLS connection, accepted under the old context
  assert.deepEqual([second.body, second.reused, second.fingerprint256], ['ok', true, A.fingerprint256]);
  assert.equal((await handshake(port)).fingerprint256, B.fingerprint256);
  assert.equal(mgr.secureContextOptions().cert!.toString(), B.cert);
});

test('a failed reload keeps the previous certificate and logs an error', async (t) => {
  const dir = await tempDir(t);
  const files = await writePair(dir, A);
  const cap = captureLog();
  const mgr = createTlsManager({ ...files, log: cap.log });
  const { server, port } = await startServer(t, mgr.serverOptions());
  mgr.attach(server);

  await writeFile(files.key, B.key);   // A's certificate with B's key
  await assert.rejects(mgr.reload(), (e: TlsError) => e.code === 'BERTH_TLS_KEY_MISMATCH' && e.file === files.key);
  await rm(files.certificate);
  await assert.rejects(mgr.reload(), (e: TlsError) => e.code === 'BERTH_TLS_FILE_NOT_FOUND' && e.file === files.certificate);
  assert.equal(cap.lines.filter((l) => l.level === 50 && l.msg.startsWith('tls reload failed')).length, 2);
  assert.equal((await handshake(port)).fingerprint256, A.fingerprint256);
});

test('watch() reloads when the files are rewritten or replaced by rename', async (t) => {
  const dir = await tempDir(t);
  const files = await writePair(dir, A);
  const cap = captureLog();
  const mgr = createTlsManager({ ...files, log: cap.log, debounceMs: 20 });
  t.after(() => mgr.close());
  const { server, port } = await startServer(t, mgr.serverOptions());
  mgr.attach(server);
  mgr.watch();
  mgr.watch();   // idempotent

  await writePair(dir, B);   // in place
  await cap.waitFor((l) => l.msg === 'tls certificate loaded' && l.fingerprint256 === B.fingerprint256, 'the reload of B (rewritten in place)');
  assert.equal((await handshake(port)).fingerprint256, B.fingerprint256);

  const staging = join(dir, 'staging');   // atomic replacement, as certbot/kubernetes do
  await mkdir(staging);
  await writePair(staging, C);
  await rename(join(staging, 'domain.key'), files.key);
  await rename(join(staging, 'domain.crt'), files.certificate);
  await cap.waitFor((l) => l.msg === 'tls certificate loaded' && l.fingerprint256 === C.fingerprint256, 'the reload of C (replaced by rename)');
  assert.equal((await handshake(port)).fingerprint256, C.fingerprint256);
});

test('startup errors name the file and carry a BERTH_TLS_* code', async (t) => {
  const dir = await tempDir(t);
  const files = await writePair(dir, A);
  const log = silentLogger();
  const expectErr = (o: { certificate: string; key: string }, code: string, file: string) =>
    assert.throws(() => createTlsManager({ ...o, log }), (e: unknown) => {
      assert.ok(e instanceof TlsError);
      assert.equal(e.code, code);
      assert.equal(e.file, file);
      assert.ok(e.message.includes(file), e.message);
      return true;
    });

  const missing = join(dir, 'nope.crt');
  expectErr({ ...files, certificate: missing }, 'BERTH_TLS_FILE_NOT_FOUND', missing);
  expectErr({ ...files, key: dir }, 'BERTH_TLS_FILE_UNREADABLE', dir);
  const garbage = join(dir, 'garbage.pem');
  await writeFile(garbage, 'not a pem\n');
  expectErr({ ...files, certificate: garbage }, 'BERTH_TLS_CERT_INVALID', garbage);
  expectErr({ ...files, key: garbage }, 'BERTH_TLS_KEY_INVALID', garbage);
  const otherKey = join(dir, 'other.key');
  await writeFile(otherKey, B.key);
  expectErr({ ...files, key: otherKey }, 'BERTH_TLS_KEY_MISMATCH', otherKey);
  // a chain: leaf first, then more certificates, is accepted
  const chain = join(dir, 'chain.crt');
  await writeFile(chain, `${A.cert.trim()}\n${B.cert.trim()}\n`);
  createTlsManager({ ...files, certificate: chain, log }).close();
});

test('cipher policy and client CAs in the secure context: the default is forward-secret AEAD; CA files are checked', async (t) => {
  const dir = await tempDir(t);
  const files = await writePair(dir, A);
  const def = createTlsManager({ ...files, log: silentLogger() });
  const ciphers = String(def.secureContextOptions().ciphers).split(':');
  assert.deepEqual(ciphers.filter((c) => c.startsWith('TLS_')), ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);
  for (const c of ciphers.filter((x) => !x.startsWith('TLS_'))) assert.match(c, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
  assert.equal(def.serverOptions().requestCert, false);
  const go = createTlsManager({ ...files, ciphersuites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'ecdhe-ecdsa-chacha20-poly1305'], log: silentLogger() });
  assert.equal(go.secureContextOptions().ciphers,
    'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305');
  await writeFile(join(dir, 'ca.pem'), B.cert);
  const ca = createTlsManager({ ...files, clientcas: [join(dir, 'ca.pem')], clientauth: 'require-and-verify-client-cert', log: silentLogger() });
  assert.equal((ca.secureContextOptions().ca as Buffer[]).length, 1);
  assert.deepEqual([ca.serverOptions().requestCert, ca.serverOptions().rejectUnauthorized], [true, true]);
  assert.throws(() => createTlsManager({ ...files, clientcas: [files.key], log: silentLogger() }),
    (e: unknown) => e instanceof TlsError && e.code === 'BERTH_TLS_CERT_INVALID' && e.file === files.key);
  assert.throws(() => createTlsManager({ ...files, clientcas: [join(dir, 'missing.pem')], log: silentLogger() }),
    (e: unknown) => e instanceof TlsError && e.code === 'BERTH_TLS_FILE_NOT_FOUND');
});
