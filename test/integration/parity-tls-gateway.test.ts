// Issue 15 points 4, 7, 8 against a real berth (startServer on real sockets, loopback): plain HTTP on the TLS
// port gets a 400 that says so; the cipher policy (Mozilla "intermediate" by default, tls.ciphersuites and
// Distribution's http.tls.ciphersuites honoured), checked with openssl s_client; client certificates in each of
// Distribution's clientauth modes, with node:tls clients with and without certificates made by openssl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { loadConfigFromString } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/config-error.js';
import { startServer, type RunningServer } from '../../src/gateway/server.js';
import { PLAIN_HTTP_MESSAGE } from '../../src/gateway/plain-http.js';
import { request } from '../support/http.js';
import { makeTempDir } from '../support/tmp.js';
import { captureLog, type CapturedLog } from '../support/tls-certs.js';
import { withDeadline } from '../support/wait.js';

const run = promisify(execFile);
const T = { timeout: 30_000 };

/** An RSA server certificate (so static-RSA suites would be possible if offered), a client CA and two client
 *  certificates (CN alice from the CA, CN mallory self-signed), all made by openssl in `dir`. */
async function makePki(dir: string) {
  const f = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => run('openssl', args, T);
  await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.crt'), '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'),
    '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=berth test client CA');
  await ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('alice.key'),
    '-out', f('alice.csr'), '-subj', '/O=berth/CN=alice');
  await ossl('x509', '-req', '-in', f('alice.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('alice.crt'), '-days', '2');
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('mallory.key'),
    '-out', f('mallory.crt'), '-days', '2', '-subj', '/CN=mallory');
  const read = (n: string) => readFile(f(n), 'utf8');
  return {
    dir, serverCert: await read('server.crt'), caFile: f('ca.crt'),
    alice: { cert: await read('alice.crt'), key: await read('alice.key') },
    mallory: { cert: await read('mallory.crt'), key: await read('mallory.key') },
  };
}

const tmp = await makeTempDir('berth-parity-tls-');
const pki = await makePki(tmp.path);
test.after(() => tmp.cleanup());

async function berth(t: { after(fn: () => unknown): void }, tlsYaml: string, extra = '', file = 'gateway.yml')
  : Promise<{ server: RunningServer; port: number; cap: CapturedLog }> {
  const yaml = file.endsWith('config.yml')
    ? `version: 0.1\nhttp:\n  addr: "127.0.0.1:0"\n  tls:\n    certificate: server.crt\n    key: server.key\n${tlsYaml}\nstorage: { inmemory: {} }\n${extra}`
    : `listen: "127.0.0.1:0"\ntls: { certificate: server.crt, key: server.key${tlsYaml} }\nregistry: { storage: { inmemory: {} } }\n${extra}`;
  const config = loadConfigFromString(yaml, join(tmp.path, file));
  const cap = captureLog('info');
  const server = await startServer(config, cap.log, { drainMs: 500 });
  t.after(() => server.close());
  return { server, port: Number(new URL(server.url).port), cap };
}

/** openssl s_client's negotiated suite, or null when the handshake fails. */
async function negotiate(port: number, args: string[]): Promise<{ protocol: string; cipher: string } | null> {
  // stdin is /dev/null: s_client ends right after the handshake.
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args],
    { stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  const [code] = await withDeadline(once(child, 'close'), 20_000, `openssl s_client ${args.join(' ')}`);
  // "New, TLSv1.3, Cipher is X"; for TLS 1.2 the line names the cipher's own version, the session block the protocol.
  const m = /^New, (TLSv1\.\d), Cipher is (\S+)/m.exec(stdout);
  const protocol = /^\s*Protocol\s*: (TLSv1\.\d)$/m.exec(stdout)?.[1] ?? m?.[1];
  return code === 0 && m && protocol ? { protocol, cipher: m[2]! } : null;
}

// ---------------------------------------------------------------- point 4: plain HTTP on the TLS port

test('plain HTTP on the TLS port gets 400 saying so (not an empty reply); HTTPS on the same port still works', async (t) => {
  const { server, port, cap } = await berth(t, '');
  const raw = netConnect({ host: '127.0.0.1', port });
  raw.setEncoding('latin1');
  let text = '';
  raw.on('data', (d: string) => { text += d; });
  raw.write('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: docker/27\r\n\r\n');
  await withDeadline(once(raw, 'end'), 10_000, 'the plain-HTTP answer and the close');
  raw.destroy();
  const [head, body] = text.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(head!, /\r\nConnection: close\r\n/i);
  assert.match(head!, /\r\nDocker-Distribution-Api-Version: registry\/2\.0\r\n/);
  assert.deepEqual(JSON.parse(body!).errors[0].message, PLAIN_HTTP_MESSAGE);
  // What docker's Go client sees: a 400 with the message (not "EOF" or "server gave HTTP response to HTTPS client").
  const viaHttp = await request(`http://127.0.0.1:${port}/v2/`);
  assert.equal(viaHttp.status, 400);
  assert.ok(viaHttp.text().includes(PLAIN_HTTP_MESSAGE));
  const l = await cap.waitFor((x) => x.msg === 'plain HTTP request on the TLS port: answered 400');
  assert.equal(l.level, 40);
  assert.equal(l.path, '/v2/');
  assert.equal((await request(`${server.url}/v2/`, { ca: pki.serverCert })).status, 200, 'TLS clients are unaffected');
});

// ---------------------------------------------------------------- point 7: cipher policy

const WEAK_TLS12 = ['AES128-SHA', 'AES256-SHA', 'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA',
  'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256', 'ARIA128-GCM-SHA256', 'ECDHE-ARIA128-GCM-SHA256', 'CAMELLIA128-SHA',
  'DHE-RSA-AES128-GCM-SHA256', 'AES128-CCM8', 'AES128-CCM', 'DHE-RSA-AES128-CCM8'];

test('default cipher policy: forward-secret AEAD only (Mozilla intermediate); TLS 1.3 without CCM', async (t) => {
  const { port } = await berth(t, '');
  for (const c of WEAK_TLS12) {
    assert.equal(await negotiate(port, ['-tls1_2', '-cipher', `${c}:@SECLEVEL=0`]), null, `${c} is refused`);
  }
  for (const c of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
    assert.deepEqual(await negotiate(port, ['-tls1_2', '-cipher', c]), { protocol: 'TLSv1.2', cipher: c });
  }
  assert.equal(await negotiate(port, ['-tls1_3', '-ciphersuites', 'TLS_AES_128_CCM_8_SHA256:TLS_AES_128_CCM_SHA256']), null);
  assert.match((await negotiate(port, ['-tls1_3']))!.cipher, /^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/);
  // Whatever a default client offers, TLS 1.2 lands on an ECDHE AEAD suite.
  assert.match((await negotiate(port, ['-tls1_2', '-cipher', 'ALL:@SECLEVEL=0']))!.cipher, /^ECDHE-RSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
});

test('tls.ciphersuites (Go and OpenSSL names) is honoured; TLS 1.3 stays on, as in Go', async (t) => {
  const { port } = await berth(t, ', ciphersuites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, ECDHE-RSA-CHACHA20-POLY1305]');
  assert.deepEqual(await negotiate(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384']), { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384' });
  assert.deepEqual(await negotiate(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305']), { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-CHACHA20-POLY1305' });
  assert.equal(await negotiate(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']), null, 'not configured');
  assert.equal((await negotiate(port, ['-tls1_3']))?.protocol, 'TLSv1.3');
});

test("config.yml: http.tls.ciphersuites is honoured; an operator may re-enable a CBC suite by its Go name", async (t) => {
  const { port } = await berth(t, '    ciphersuites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]', '', 'config.yml');
  assert.deepEqual(await negotiate(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0']), { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-SHA' });
  assert.equal(await negotiate(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']), null);
});

test('unknown cipher suite names are refused when the config is loaded (check-config), named by their key', () => {
  const gw = join(tmp.path, 'gateway.yml');
  assert.throws(() => loadConfigFromString('tls: { ciphersuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, NOPE-CIPHER, "A:B"] }\n', gw),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const lines = e.message.split('\n');
      assert.equal(lines.length, 2, e.message);
      assert.match(lines[0]!, /gateway\.yml:1:\d+  tls\.ciphersuites\.1  expected a cipher suite name, Go's .* found string "NOPE-CIPHER" \(unknown\)/);
      assert.match(lines[1]!, /tls\.ciphersuites\.2  expected a cipher suite name.*\(one name per list item\)/);
      return true;
    });
  const cy = join(tmp.path, 'config.yml');
  assert.throws(() => loadConfigFromString('version: 0.1\nhttp:\n  tls:\n    certificate: c\n    key: k\n    ciphersuites: [TLS_FAKE_WITH_NOTHING]\n', cy),
    /config\.yml:6:\d+  http\.tls\.ciphersuites\.0  expected a cipher suite name/);
});

// ---------------------------------------------------------------- point 8: client certificates

/** One HTTPS GET /v2/ over a fresh node:tls connection, with or without a client certificate; the status, or
 *  the error that ended the connection. */
async function getWithCert(port: number, cert?: { cert: string; key: string }): Promise<number | string> {
  const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.serverCert, ...(cert ?? {}) });
  try {
    return await withDeadline(new Promise<number | string>((resolve) => {
      let text = '';
      sock.setEncoding('latin1');
      sock.on('secureConnect', () => sock.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
      sock.on('data', (d: string) => { text += d; });
      sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      sock.on('close', () => {
        const m = /^HTTP\/1\.1 (\d+)/.exec(text);
        resolve(m ? Number(m[1]) : 'closed');
      });
    }), 10_000, 'a GET with a client certificate');
  } finally {
    sock.destroy();
  }
}

const ok = (r: number | string) => r === 200;
const refused = (r: number | string) => typeof r === 'string';

test('clientauth modes: require-and-verify (the default with clientcas), verify-if-given, require-any, request', async (t) => {
  const ca = `, clientcas: [${pki.caFile}]`;
  const rv = await berth(t, ca);   // default: require-and-verify-client-cert
  assert.ok(ok(await getWithCert(rv.port, pki.alice)), 'a certificate from the CA');
  assert.ok(refused(await getWithCert(rv.port)), 'no certificate');
  assert.ok(refused(await getWithCert(rv.port, pki.mallory)), 'a certificate from another CA');

  const vg = await berth(t, `${ca}, clientauth: verify-client-cert-if-given`);
  assert.ok(ok(await getWithCert(vg.port, pki.alice)));
  assert.ok(ok(await getWithCert(vg.port)), 'no certificate is fine');
  assert.ok(refused(await getWithCert(vg.port, pki.mallory)), 'an unverifiable one is not');

  const ra = await berth(t, ', clientauth: require-any-client-cert');
  assert.ok(ok(await getWithCert(ra.port, pki.mallory)), 'any certificate');
  assert.ok(refused(await getWithCert(ra.port)), 'but one is required');

  const rq = await berth(t, ', clientauth: request-client-cert');
  assert.ok(ok(await getWithCert(rq.port)));
  assert.ok(ok(await getWithCert(rq.port, pki.mallory)));
});

test("the verified certificate's CN stands as the user: the request line; unverified certificates never do", async (t) => {
  const vg = await berth(t, `, clientcas: [${pki.caFile}], clientauth: verify-client-cert-if-given`);
  assert.equal(await getWithCert(vg.port, pki.alice), 200);
  const line = await vg.cap.waitFor((x) => x.msg === 'request completed' && x.certUser === 'alice', 'the request line');
  assert.equal(line.user, 'alice');
  const rq = await berth(t, ', clientauth: request-client-cert');
  assert.equal(await getWithCert(rq.port, pki.mallory), 200);
  const anon = await rq.cap.waitFor((x) => x.msg === 'request completed', 'the request line');
  assert.equal(anon.user, undefined, 'a certificate nothing verified is not a user');
});

test('config: clientcas paths resolve against the file; verifying modes need clientcas; config.yml maps http.tls.clientcas/clientauth', async (t) => {
  const gw = join(tmp.path, 'gateway.yml');
  const c = loadConfigFromString('tls: { clientcas: [ca.crt] }\n', gw);
  assert.deepEqual([c.tls?.clientcas, c.tls?.clientauth], [[pki.caFile], 'require-and-verify-client-cert']);
  assert.equal(loadConfigFromString('tls: {}\n', gw).tls?.clientauth, 'none');
  assert.throws(() => loadConfigFromString('tls: { clientauth: require-and-verify-client-cert }\n', gw),
    /gateway\.yml:1:\d+  tls\.clientauth  require-and-verify-client-cert needs tls\.clientcas/);
  const d = await berth(t, `    clientcas: [ca.crt]\n    clientauth: verify-client-cert-if-given`, '', 'config.yml');
  assert.ok(ok(await getWithCert(d.port, pki.alice)));
  assert.ok(ok(await getWithCert(d.port)));
  assert.ok(refused(await getWithCert(d.port, pki.mallory)));
  await writeFile(join(tmp.path, 'not-a-ca.pem'), 'nothing here\n');
  await assert.rejects(berth(t, ', clientcas: [not-a-ca.pem]'), /no valid PEM CA certificate in .*not-a-ca\.pem \(tls\.clientcas\)/);
});

test('the client CAs are re-read on reload (SIGHUP): a rotated CA file takes effect for new connections', async (t) => {
  const caFile = join(tmp.path, 'rotating-ca.crt');
  await writeFile(caFile, await readFile(pki.caFile));
  const b = await berth(t, `, clientcas: [${caFile}]`);
  assert.ok(ok(await getWithCert(b.port, pki.alice)));
  assert.ok(refused(await getWithCert(b.port, pki.mallory)));
  await writeFile(caFile, pki.mallory.cert);   // mallory's self-signed certificate is its own CA
  await b.server.reload();
  assert.ok(ok(await getWithCert(b.port, pki.mallory)), 'the new CA is trusted');
  assert.ok(refused(await getWithCert(b.port, pki.alice)), 'the old one no more');
});
