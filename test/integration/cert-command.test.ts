import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { isIP, type AddressInfo } from 'node:net';
import { ensureDevCert, runCertCommand, subjectAltNames } from '../../src/cli/cert-command.js';
import { createTlsManager } from '../../src/gateway/tls.js';
import { silentLogger } from '../../src/log/logger.js';
import { captureLog } from '../support/tls-certs.js';
import { withDeadline } from '../support/wait.js';

async function tempDir(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-cert-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function io(cwd: string) {
  const out = { stdout: '', stderr: '' };
  return { out, io: { cwd, stdout: { write: (s: string) => { out.stdout += s; } }, stderr: { write: (s: string) => { out.stderr += s; } } } };
}

// DER OIDs of the signature algorithm (it appears twice in a certificate)
const SHA256_RSA = Buffer.from('06092a864886f70d01010b', 'hex');
const SHA1_RSA = Buffer.from('06092a864886f70d010105', 'hex');

test('berth cert writes a CA-signed SHA-256 leaf that verifies for every SAN', async (t) => {
  const cwd = await tempDir(t);
  const { out, io: cio } = io(cwd);
  const code = await runCertCommand(['--hostname', 'registry.test', '--hostname', '10.9.8.7', '--hostname', 'localhost', '--out', 'tls', '--days', '30'], cio);
  assert.equal(code, 0, out.stderr);
  assert.match(out.stdout, /--cert-dir tls\/trust/);
  const dir = join(cwd, 'tls');
  assert.deepEqual((await readdir(dir)).sort(), ['ca.crt', 'domain.crt', 'domain.key', 'trust']);
  assert.deepEqual(await readdir(join(dir, 'trust')), ['ca.crt']);   // nothing else: containers/image rejects a *.key without *.cert
  assert.equal((await stat(join(dir, 'domain.key'))).mode & 0o777, 0o600);

  const certPem = await readFile(join(dir, 'domain.crt'), 'utf8');
  const keyPem = await readFile(join(dir, 'domain.key'), 'utf8');
  const caPem = await readFile(join(dir, 'ca.crt'), 'utf8');
  assert.equal(await readFile(join(dir, 'trust', 'ca.crt'), 'utf8'), caPem);
  const leaf = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);

  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.ok(leaf.checkIssued(ca));
  assert.ok(leaf.verify(ca.publicKey));
  assert.ok(ca.verify(ca.publicKey));
  for (const c of [leaf, ca]) {
    assert.ok(c.raw.includes(SHA256_RSA), 'signed with sha256WithRSAEncryption');
    assert.ok(!c.raw.includes(SHA1_RSA));
    assert.equal(c.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  }
  assert.equal(leaf.subjectAltName, 'DNS:registry.test, IP Address:10.9.8.7, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
  assert.equal(Math.round(days), 30);

  // A real TLS server with the files; a client trusting only ca.crt verifies each SAN.
  const mgr = createTlsManager({ certificate: join(dir, 'domain.crt'), key: join(dir, 'domain.key'), log: silentLogger() });
  const server = tls.createServer(mgr.serverOptions(), (s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;
  const connect = async (name: string) => {
    const s = tls.connect({
      host: '127.0.0.1', port, ca: caPem, ...(isIP(name) ? {} : { servername: name }),
      checkServerIdentity: (_h, cert) => tls.checkServerIdentity(name, cert),
    });
    try { await withDeadline(once(s, 'secureConnect'), 10_000, `the TLS handshake as ${name}`); return s.authorized; } finally { s.destroy(); }
  };
  for (const name of ['registry.test', 'localhost', '10.9.8.7', '127.0.0.1', '::1']) {
    assert.equal(await connect(name), true, name);
  }
  await assert.rejects(connect('other.test'), /ERR_TLS_CERT_ALTNAME_INVALID|does not match/);
  // …and without the CA, the chain is not trusted
  const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost' });
  await assert.rejects(withDeadline(once(s, 'secureConnect'), 10_000, 'the untrusted TLS handshake to fail'), /unable to verify|self.signed|local issuer/i);
  s.destroy();
  assert.ok(keyPem.includes('PRIVATE KEY'));
});

test('berth cert refuses to overwrite without --force, and replaces with it', async (t) => {
  const cwd = await tempDir(t);
  const first = io(cwd);
  assert.equal(await runCertCommand([], first.io), 0, first.out.stderr);   // default ./certs, localhost only
  const before = await readFile(join(cwd, 'certs', 'domain.crt'), 'utf8');
  assert.equal(new X509Certificate(before).subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');

  const again = io(cwd);
  assert.equal(await runCertCommand(['--hostname', 'x.test'], again.io), 1);
  assert.match(again.out.stderr, /refusing to overwrite .*domain\.crt.*--force/);
  assert.equal(await readFile(join(cwd, 'certs', 'domain.crt'), 'utf8'), before);

  const forced = io(cwd);
  assert.equal(await runCertCommand(['--hostname', 'x.test', '--force'], forced.io), 0, forced.out.stderr);
  const after = new X509Certificate(await readFile(join(cwd, 'certs', 'domain.crt'), 'utf8'));
  assert.match(after.subjectAltName!, /^DNS:x\.test, /);
  assert.equal((await stat(join(cwd, 'certs', 'domain.key'))).mode & 0o777, 0o600);
  assert.deepEqual((await readdir(join(cwd, 'certs'))).sort(), ['ca.crt', 'domain.crt', 'domain.key', 'trust']);   // no temp files left
});

test('berth cert usage errors exit 2', async (t) => {
  const cwd = await tempDir(t);
  for (const argv of [['--days', 'abc'], ['--days', '0'], ['--bogus'], ['positional'], ['--hostname', 'bad host'], ['--hostname', 'a..b']]) {
    const c = io(cwd);
    assert.equal(await runCertCommand(argv, c.io), 2, argv.join(' '));
    assert.match(c.out.stderr, /usage: berth cert/);
  }
  assert.deepEqual(await readdir(cwd), []);
  const h = io(cwd);
  assert.equal(await runCertCommand(['--help'], h.io), 0);
  assert.match(h.out.stdout, /usage: berth cert/);
});

test('subjectAltNames: IPs and names, brackets stripped, de-duplicated', () => {
  assert.deepEqual(subjectAltNames(['Registry.Example', '[fd00::1]', '127.0.0.1', '*.dev.test']),
    ['registry.example', 'fd00::1', '127.0.0.1', '*.dev.test', 'localhost', '::1']);
});

test('ensureDevCert creates once, then reuses; a lone key is an error', async (t) => {
  const dir = join(await tempDir(t), 'certs');
  const cap = captureLog();
  const a = await ensureDevCert(dir, ['reg.test'], cap.log);
  assert.equal(a.created, true);
  assert.equal(a.certificate, join(dir, 'domain.crt'));
  assert.ok(cap.lines.some((l) => l.level === 40 && /self-signed development certificate/.test(l.msg)));
  const pemBefore = await readFile(a.certificate, 'utf8');
  const b = await ensureDevCert(dir, ['reg.test'], cap.log);
  assert.deepEqual(b, { ...a, created: false });
  assert.equal(await readFile(a.certificate, 'utf8'), pemBefore);

  await rm(a.certificate);
  await assert.rejects(ensureDevCert(dir, [], cap.log), (e: any) => e.code === 'BERTH_CERT_EXISTS');
  await writeFile(a.certificate, pemBefore);
});
