// `berth healthcheck` (issue 16 point 3) against real berth listeners (startServer on loopback): the probe reads
// the file serve read, with REGISTRY_HTTP_ADDR giving it the port serve picked (port 0 in the file), and finds
// scheme, host, prefix and trust in the config: http with a prefix and auth (401 is healthy), a wildcard listen
// address, TLS with a self-signed certificate whose names do not include 127.0.0.1, a certificate that is not the
// configured one, a failing health check (503), client-certificate modes, nothing listening, no answer in time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runHealthcheckCommand } from '../../src/cli/healthcheck-command.js';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { makeTempDir } from '../support/tmp.js';

const run = promisify(execFile);
const T = { timeout: 30_000 };

const tmp = await makeTempDir('berth-healthcheck-');
test.after(() => tmp.cleanup());
const f = (n: string) => join(tmp.path, n);

/** A self-signed server certificate for registry.example.test only (no localhost, no IP), a second unrelated one,
 *  and a client CA with a client certificate. */
async function makePki(): Promise<void> {
  const ossl = (...args: string[]) => run('openssl', args, T);
  const selfSigned = (name: string, san: string) => ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${san}`);
  await selfSigned('server', 'DNS:registry.example.test');
  await selfSigned('other', 'DNS:registry.example.test');
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'),
    '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=berth healthcheck test client CA');
  await ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('client.key'),
    '-out', f('client.csr'), '-subj', '/CN=prober');
  await ossl('x509', '-req', '-in', f('client.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('client.crt'), '-days', '2');
}
await makePki();
await writeFile(f('htpasswd'), 'alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n');

let n = 0;
/** Writes `yaml` to a new file, starts berth on it, returns the file and the env that points the probe at its port. */
async function serve(t: { after(fn: () => unknown): void }, yaml: string) {
  const file = f(`gateway-${++n}.yml`);
  await writeFile(file, yaml);
  const server = await startServer(await loadConfig(file, { env: {} }), silentLogger(), { drainMs: 0 });
  t.after(() => server.close());
  const port = Number(new URL(server.url).port);
  return { file, port, server, env: { REGISTRY_HTTP_ADDR: `${yaml.match(/^listen: "?(\S*):0"?$/m)![1]}:${port}` } };
}

async function healthcheck(args: string[], env: Record<string, string>) {
  let stdout = ''; let stderr = '';
  const code = await runHealthcheckCommand(args, {
    stdout: { write: (s: string) => { stdout += s; } }, stderr: { write: (s: string) => { stderr += s; } },
    env, exists: () => false,
  });
  return { code, stdout, stderr };
}

const storage = 'registry: { storage: { inmemory: {} } }\n';

test('http with urls.prefix and htpasswd: GET /registry/v2/ answers 401, healthy; the stopped server is not', async (t) => {
  const s = await serve(t, `listen: 127.0.0.1:0\nurls: { prefix: /registry/ }\nauth: { htpasswd: { path: htpasswd } }\n${storage}`);
  const r = await healthcheck(['--config', s.file], s.env);
  assert.deepEqual(r, { code: 0, stdout: `healthy: http://127.0.0.1:${s.port}/registry/v2/ answered 401\n`, stderr: '' });
  await s.server.close();
  const down = await healthcheck(['--config', s.file], s.env);
  assert.equal(down.code, 1);
  assert.equal(down.stdout, '');
  assert.equal(down.stderr, `berth healthcheck: unhealthy: http://127.0.0.1:${s.port}/registry/v2/: connection refused (not listening)\n`);
});

test('a wildcard listen address is probed on loopback; the config comes from REGISTRY_CONFIGURATION_PATH', async (t) => {
  const s = await serve(t, `listen: "0.0.0.0:0"\n${storage}`);
  const r = await healthcheck([], { ...s.env, REGISTRY_CONFIGURATION_PATH: s.file });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `healthy: http://127.0.0.1:${s.port}/v2/ answered 200\n`);
});

test('dual-stack :port is probed on 127.0.0.1; [::1] on ::1', async (t) => {
  const s = await serve(t, `listen: ":0"\n${storage}`);
  const r = await healthcheck(['--config', s.file], s.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `healthy: http://127.0.0.1:${s.port}/v2/ answered 200\n`);
  // IPv6 loopback, when this host has it (CI containers sometimes do not).
  const probe = createServer();
  const v6 = await new Promise<boolean>((res) => { probe.once('error', () => res(false)).listen(0, '::1', () => { probe.close(); res(true); }); });
  if (!v6 && process.env.CI !== 'true') { t.diagnostic('no IPv6 loopback here: [::1] not probed'); return; }
  const s6 = await serve(t, `listen: "[::1]:0"\n${storage}`);
  const r6 = await healthcheck(['--config', s6.file], { REGISTRY_HTTP_ADDR: `[::1]:${s6.port}` });
  assert.equal(r6.code, 0, r6.stderr);
  assert.equal(r6.stdout, `healthy: http://[::1]:${s6.port}/v2/ answered 200\n`);
});

test('TLS: the configured self-signed certificate is trusted, its names are not checked; another certificate is refused', async (t) => {
  const s = await serve(t, `listen: 127.0.0.1:0\ntls: { certificate: server.crt, key: server.key }\n${storage}`);
  const r = await healthcheck(['--config', s.file], s.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `healthy: https://127.0.0.1:${s.port}/v2/ answered 200\n`);
  // The probe's config names another certificate than the one served: the chain does not verify.
  const wrong = f('wrong-cert.yml');
  await writeFile(wrong, `listen: 127.0.0.1:${s.port}\ntls: { certificate: other.crt, key: other.key }\n${storage}`);
  const w = await healthcheck(['--config', wrong], {});
  assert.equal(w.code, 1);
  assert.match(w.stderr, new RegExp(`^berth healthcheck: unhealthy: https://127\\.0\\.0\\.1:${s.port}/v2/: DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate\\n$`));
  // The config says plain HTTP, the port speaks TLS (berth's 400 says so): not healthy, and why.
  const plain = f('plain.yml');
  await writeFile(plain, `listen: 127.0.0.1:${s.port}\n${storage}`);
  const p = await healthcheck(['--config', plain], {});
  assert.equal(p.code, 1);
  assert.match(p.stderr, /the listener speaks TLS but the config has no tls: section/);
});

test('a failing registry.health check: /v2/ answers 503, unhealthy, naming the check', async (t) => {
  await writeFile(f('maintenance'), '');
  const s = await serve(t, `listen: 127.0.0.1:0\nregistry:\n  storage: { inmemory: {} }\n  health:\n    file: [{ file: maintenance, interval: 1h }]\n`);
  const r = await healthcheck(['--config', s.file], s.env);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `berth healthcheck: unhealthy: http://127.0.0.1:${s.port}/v2/: answered 503 UNAVAILABLE (failing health checks: file_0)\n`);
});

test('clientauth require-and-verify: handshake-only without an accepted client certificate, a full probe with one', async (t) => {
  const s = await serve(t, `listen: 127.0.0.1:0\ntls: { certificate: server.crt, key: server.key, clientcas: [ca.crt] }\n${storage}`);
  const r = await healthcheck(['--config', s.file], s.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^healthy: https://127\\.0\\.0\\.1:${s.port}/v2/ TLS handshake only: the server's certificate verified, then it refused the client certificate \\(\\S+\\); give --client-cert/--client-key for a /v2/ probe\\n$`));
  const full = await healthcheck(['--config', s.file, '--client-cert', f('client.crt'), '--client-key', f('client.key')], s.env);
  assert.deepEqual(full, { code: 0, stdout: `healthy: https://127.0.0.1:${s.port}/v2/ answered 200\n`, stderr: '' });
  // require-any-client-cert: the server's own pair is presented and accepted.
  const any = await serve(t, `listen: 127.0.0.1:0\ntls: { certificate: server.crt, key: server.key, clientauth: require-any-client-cert }\n${storage}`);
  const a = await healthcheck(['--config', any.file], any.env);
  assert.deepEqual(a, { code: 0, stdout: `healthy: https://127.0.0.1:${any.port}/v2/ answered 200\n`, stderr: '' });
});

test('no answer within --timeout; usage errors exit 2; an invalid config is one line', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((c) => { sockets.add(c); c.on('error', () => undefined); });   // accepts, never answers
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => { for (const c of sockets) c.destroy(); silent.close(); });
  const port = (silent.address() as { port: number }).port;
  const file = f('silent.yml');
  await writeFile(file, `listen: 127.0.0.1:${port}\n${storage}`);
  const r = await healthcheck(['--config', file, '--timeout', '300ms'], {});
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `berth healthcheck: unhealthy: http://127.0.0.1:${port}/v2/: no answer within 300 ms\n`);

  for (const args of [['--timeout', '5'], ['--timeout', '0s'], ['--client-cert', 'x.crt'], ['--bogus']]) {
    const u = await healthcheck(args, {});
    assert.equal(u.code, 2, args.join(' '));
    assert.match(u.stderr, /usage: berth healthcheck/);
  }
  const bad = f('bad.yml');
  await writeFile(bad, 'listen: nowhere\nfrobnicate: 1\n');
  const b = await healthcheck([], { REGISTRY_CONFIGURATION_PATH: bad });
  assert.equal(b.code, 1);
  assert.equal(b.stderr.split('\n').length, 2, b.stderr);
  assert.match(b.stderr, new RegExp(`^berth healthcheck: unhealthy: invalid configuration \\(${bad}, from REGISTRY_CONFIGURATION_PATH\\): .*\\(and 1 more: berth check-config\\)\\n$`));
  const zero = f('zero.yml');
  await writeFile(zero, `listen: 127.0.0.1:0\n${storage}`);
  const z = await healthcheck(['--config', zero], {});
  assert.equal(z.stderr, `berth healthcheck: unhealthy: ${zero}: listen port is 0 (picked at start), nothing to probe\n`);
});
