// Issue 15 points 4, 8, 9 end to end: the built CLI over TLS, driven by real clients. An `htpasswd -c` file
// mixing apr1, bcrypt, DES and SHA-512 crypt lines (plus one line nginx would refuse) logs every user in with
// `docker login`; skopeo pushes and pulls with an openssl-made client certificate where berth requires one,
// and is refused without it; curl's plain HTTP to the TLS port gets the 400 that says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDevCert } from '../../src/cli/cert-command.js';
import { createSandbox, run, skipUnless, ToolError } from '../support/clients.js';
import { writeOciLayout } from '../support/images.js';
import { runCli, startBerth, type ServerProcess } from '../support/processes.js';
import { waitUntil } from '../support/wait.js';

type T = { after(fn: () => unknown): void };

async function workDir(t: T, prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

async function tlsBerth(t: T, dir: string, tlsExtra: string, extraYaml = ''): Promise<{ berth: ServerProcess; ca: string; trust: string }> {
  const certs = await writeDevCert(join(dir, 'certs'), []);
  const berth = await startBerth({
    configYaml: [
      'listen: 127.0.0.1:0',
      `tls: { certificate: ${JSON.stringify(certs.certificate)}, key: ${JSON.stringify(certs.key)}${tlsExtra} }`,
      'registry: { storage: { filesystem: { rootdirectory: ROOT } } }',
      extraYaml, '',
    ].join('\n'),
  });
  t.after(() => berth.close());
  return { berth, ca: certs.ca, trust: certs.trustDir };
}

const notRoot = process.getuid?.() !== 0 && process.env.CI !== 'true' ? 'needs root to write /etc/docker/certs.d' : false;

test('docker login works for every user of an htpasswd -c file mixing apr1, bcrypt, DES and SHA-512 crypt lines', { skip: skipUnless('docker', 'htpasswd') || notRoot }, async (t) => {
  const dir = await workDir(t, 'berth-parity-htpasswd');
  const file = join(dir, 'htpasswd');
  const users: [string, string][] = [['apr1', 'pw-apr1-1'], ['bcrypt', 'pw-bcrypt-2'], ['des', 'pw-des-3'], ['sha512', 'pw-sha512-4']];
  await run('htpasswd', ['-cmb', file, 'apr1', 'pw-apr1-1']);
  await run('htpasswd', ['-Bb', file, 'bcrypt', 'pw-bcrypt-2']);
  await run('htpasswd', ['-db', file, 'des', 'pw-des-3']);
  const sha512 = (await run('openssl', ['passwd', '-6', 'pw-sha512-4'])).stdout.trim();
  await appendFile(file, `sha512:${sha512}\nplain:not-a-hash-nginx-takes\n`);
  const { berth, ca } = await tlsBerth(t, dir, '', `auth: { htpasswd: { path: ${JSON.stringify(file)} } }`);
  const certsD = join('/etc/docker/certs.d', berth.host);
  await mkdir(certsD, { recursive: true });
  t.after(() => rm(certsD, { recursive: true, force: true }));
  await copyFile(ca, join(certsD, 'ca.crt'));
  const config = await workDir(t, 'docker-config');
  const env = { ...process.env, DOCKER_CONFIG: config, HOME: config };
  const login = (user: string, password: string) => run('docker', ['--config', config, 'login', '-u', user, '--password-stdin', berth.host],
    { input: `${password}\n`, env, timeoutMs: 60_000 });
  for (const [user, password] of users) {
    assert.match((await login(user, password)).stdout, /Login Succeeded/, user);
    await assert.rejects(login(user, `x${password}`), (err: ToolError) => /401 Unauthorized/.test(err.stderr));   // DES reads 8 characters
  }
  await waitUntil('the skipped line warned with file:line', () => berth.output().stdout.includes(`${file}:5: unsupported hash`));
});

test('require-and-verify-client-cert: skopeo pushes and pulls with a client certificate and is refused without one; the CN is the user', { skip: skipUnless('skopeo') }, async (t) => {
  const dir = await workDir(t, 'berth-parity-mtls');
  const f = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => run('openssl', args);
  await ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('clientca.key'),
    '-out', f('clientca.crt'), '-days', '2', '-subj', '/CN=berth e2e client CA');
  await ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('client.key'), '-out', f('client.csr'), '-subj', '/CN=ci-robot');
  await ossl('x509', '-req', '-in', f('client.csr'), '-CA', f('clientca.crt'), '-CAkey', f('clientca.key'), '-CAcreateserial', '-out', f('client.cert'), '-days', '2');
  const { berth, trust } = await tlsBerth(t, dir, `, clientcas: [${JSON.stringify(f('clientca.crt'))}]`);
  // skopeo's --cert-dir: *.crt are CAs to trust, NAME.cert + NAME.key the client certificate.
  const withCert = f('with-cert');
  await mkdir(withCert);
  await copyFile(join(trust, 'ca.crt'), join(withCert, 'ca.crt'));
  await copyFile(f('client.cert'), join(withCert, 'client.cert'));
  await copyFile(f('client.key'), join(withCert, 'client.key'));

  const sb = await createSandbox([]);
  t.after(() => sb.cleanup());
  const img = await writeOciLayout(f('src'), { layers: [{ size: 32 * 1024, kind: 'random' }] });
  const ref = `docker://${berth.host}/parity/mtls:v1`;
  await assert.rejects(sb.skopeo(['copy', '--dest-cert-dir', trust, img.ref, ref]), (err: ToolError) => err instanceof ToolError);
  await sb.skopeo(['copy', '--dest-cert-dir', withCert, img.ref, ref]);
  await sb.skopeo(['copy', '--src-cert-dir', withCert, ref, `dir:${f('out')}`]);
  assert.ok((await readFile(join(f('out'), 'manifest.json'))).equals(img.manifestBytes));
  await waitUntil('a request line with the certificate user', () =>
    berth.output().stdout.split('\n').some((l) => l.includes('"request completed"') && l.includes('"certUser":"ci-robot"') && l.includes('"user":"ci-robot"')));
});

test('curl: plain HTTP to the TLS port gets 400 "The plain HTTP request was sent to HTTPS port"', { skip: skipUnless() }, async (t) => {
  const dir = await workDir(t, 'berth-parity-plain');
  const { berth, ca } = await tlsBerth(t, dir, '');
  const port = new URL(berth.url).port;
  const r = await run('curl', ['-sS', '-i', '--max-time', '10', `http://127.0.0.1:${port}/v2/`]);
  assert.match(r.stdout, /^HTTP\/1\.1 400 Bad Request/);
  assert.match(r.stdout, /The plain HTTP request was sent to HTTPS port/);
  const ok = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca, `${berth.url}/v2/`])
    .catch((err: ToolError) => ({ stdout: err.stderr }));
  assert.equal(ok.stdout, '200', 'HTTPS on the same port still works');
});

test('check-config says what serve would: an unknown cipher suite, a missing or invalid client CA file', async (t) => {
  const dir = await workDir(t, 'berth-parity-check');
  const certs = await writeDevCert(join(dir, 'certs'), []);
  const pair = `certificate: ${JSON.stringify(certs.certificate)}, key: ${JSON.stringify(certs.key)}`;
  const check = async (tlsExtra: string) => {
    const file = join(dir, 'gateway.yml');
    await writeFile(file, `listen: 127.0.0.1:0\ntls: { ${pair}${tlsExtra} }\nregistry: { storage: { inmemory: {} } }\n`);
    return runCli(['check-config', file]);
  };
  const bogus = await check(', ciphersuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, BOGUS-SUITE]');
  assert.equal(bogus.code, 1);
  assert.match(bogus.stdout, /gateway\.yml:2:\d+  tls\.ciphersuites\.1  expected a cipher suite name.*found string "BOGUS-SUITE" \(unknown\)/);
  const missing = await check(', clientcas: [nope.pem]');
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /tls\.clientcas\.0  file not found: .*nope\.pem/);
  const notCa = await check(`, clientcas: [${JSON.stringify(certs.key)}]`);
  assert.match(notCa.stdout, /tls\.clientcas\.0  no valid PEM CA certificate in/);
  const good = await check(`, clientcas: [${JSON.stringify(certs.ca)}], clientauth: verify-client-cert-if-given, ciphersuites: [ECDHE-ECDSA-AES128-GCM-SHA256]`);
  assert.equal(good.code, 0, good.stdout + good.stderr);
});
